import type { DescEnum, DescField, DescFile, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";

// Field numbers of descriptor.proto that lead to an element's source location.
const fileMessage = 4;
const fileEnum = 5;
const fileService = 6;
const messageField = 2;
const messageNested = 3;
const messageEnum = 4;
const serviceMethod = 2;

type Described = DescMessage | DescField | DescService | DescMethod | DescEnum;

function locate(desc: Described): { file: DescFile; path: number[] } {
  switch (desc.kind) {
    case "message":
    case "enum": {
      const list = desc.kind === "message" ? "messageType" : "enumType";
      if (desc.parent === undefined) {
        const index = (desc.file.proto[list] as unknown[]).indexOf(desc.proto);
        return { file: desc.file, path: [desc.kind === "message" ? fileMessage : fileEnum, index] };
      }
      const parent = locate(desc.parent);
      const nested = desc.kind === "message" ? desc.parent.proto.nestedType : desc.parent.proto.enumType;
      const index = (nested as unknown[]).indexOf(desc.proto);
      return { file: parent.file, path: [...parent.path, desc.kind === "message" ? messageNested : messageEnum, index] };
    }
    case "field": {
      const parent = locate(desc.parent);
      return { file: parent.file, path: [...parent.path, messageField, desc.parent.proto.field.indexOf(desc.proto)] };
    }
    case "service":
      return { file: desc.file, path: [fileService, desc.file.proto.service.indexOf(desc.proto)] };
    case "rpc": {
      const parent = locate(desc.parent);
      return { file: parent.file, path: [...parent.path, serviceMethod, desc.parent.proto.method.indexOf(desc.proto)] };
    }
  }
}

/** The leading comment of an element in its .proto file (the image keeps source info), trimmed; "" when none. */
export function commentOf(desc: Described): string {
  const { file, path } = locate(desc);
  const location = file.proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === path.length && l.path.every((n, i) => n === path[i]),
  );
  const text = location?.leadingComments ?? "";
  return text
    .split("\n")
    .map((line) => line.replace(/^ /, ""))
    .join("\n")
    .trim();
}
