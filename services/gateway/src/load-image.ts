import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createFileRegistry, type FileRegistry, fromBinary } from "@bufbuild/protobuf";
import { type FileDescriptorSet, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ConfigError } from "@portico/kit";

/** The buf image the workspace generates: `gen/portico.binpb` as `@portico/gen` resolves it. */
export function defaultImagePath(): string {
  return createRequire(import.meta.url).resolve("@portico/gen/portico.binpb");
}

export interface Image {
  readonly path: string;
  readonly registry: FileRegistry;
  /** The FileDescriptorSet as read, for server reflection. */
  readonly set: FileDescriptorSet;
}

/** Reads a binary FileDescriptorSet (with imports) and builds a registry of its descriptors. */
export function loadImage(path: string): Image {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ConfigError(`descriptor image: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const set = fromBinary(FileDescriptorSetSchema, bytes);
    return { path, set, registry: createFileRegistry(set) };
  } catch (error) {
    throw new ConfigError(
      `descriptor image: ${path} is not a FileDescriptorSet with all imports (buf build --as-file-descriptor-set): ${(error as Error).message}`,
    );
  }
}
