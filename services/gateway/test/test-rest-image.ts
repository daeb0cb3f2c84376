// Test helper (not a test): a buf image of a test-only .proto with google.api.http bindings, built
// with the workspace's buf next to the real google/api and portico.gateway.v1 options.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const imported = ["google/api/annotations.proto", "google/api/http.proto", "portico/gateway/v1/options.proto"];

/** Writes `proto` as `<file>` beside the protos it imports, builds it with buf and answers the image's path. */
export function buildTestImage(file: string, proto: string): string {
  const dir = mkdtempSync(join(tmpdir(), "portico-rest-image-"));
  for (const path of imported) {
    mkdirSync(dirname(join(dir, "proto", path)), { recursive: true });
    copyFileSync(join(root, "proto", path), join(dir, "proto", path));
  }
  mkdirSync(dirname(join(dir, "proto", file)), { recursive: true });
  writeFileSync(join(dir, "proto", file), proto);
  const image = join(dir, "image.binpb");
  execFileSync(join(root, "node_modules/.bin/buf"), ["build", "proto", "--as-file-descriptor-set", "-o", image], {
    cwd: dir,
    stdio: "pipe",
  });
  return image;
}

/** The repository root, for scripts the tests run. */
export const repoRoot = root;
