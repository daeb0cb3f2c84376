import {
  clone,
  create,
  type DescFile,
  fromBinary,
  fromJsonString,
  type MessageInitShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { type FileDescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";
import {
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "@portico/gen/grpc/reflection/v1/reflection_pb.js";
import { createCallerWriter } from "./caller-writer.js";
import { connectError } from "./connect-error.js";
import type { Downstream, IncomingHttpHeaders } from "./downstream.js";
import { createEnvelopeReader } from "./envelope-reader.js";
import { sendError } from "./error-response.js";
import type { Image } from "./load-image.js";
import type { RouteTable } from "./route-table.js";
import { type CallProtocol, protocolFromContentType } from "./rpc-protocol.js";

/** The `:path`s of server reflection (v1 and v1alpha share the wire format). */
export const reflectionPaths = new Set([
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]);

export type ServerReflection = (down: Downstream, headers: IncomingHttpHeaders) => void;

type ResponseInit = MessageInitShape<typeof ServerReflectionResponseSchema>;

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/**
 * `grpc.reflection.v1` and `v1alpha` served from the image: the routed services and their files
 * (with INTERNAL methods removed), so grpcurl and `buf curl --list-methods` work without protos.
 * Speaks gRPC, gRPC-Web and Connect streaming.
 */
export function createServerReflection(image: Image, table: RouteTable): ServerReflection {
  // Files as served: every method that is not routed from outside (INTERNAL) is removed.
  const hidden = new Set(table.all.filter((r) => r.policy.access === "internal").map((r) => r.path));
  const files = new Map<string, Uint8Array>();
  for (const proto of image.set.file) {
    let served: FileDescriptorProto = proto;
    if (proto.service.some((s) => s.method.some((m) => hidden.has(`/${proto.package}.${s.name}/${m.name}`)))) {
      served = clone(FileDescriptorProtoSchema, proto);
      for (const s of served.service) s.method = s.method.filter((m) => !hidden.has(`/${proto.package}.${s.name}/${m.name}`));
    }
    files.set(proto.name, toBinary(FileDescriptorProtoSchema, served));
  }
  const routedServices = [...new Set(table.all.filter((r) => r.upstream !== undefined).map((r) => r.service.typeName))];
  const services = [...routedServices, "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"].sort();
  const { registry } = image;

  /** The file and its transitive imports, the file first. */
  const withDependencies = (file: DescFile): Uint8Array[] => {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (f: DescFile) => {
      if (seen.has(f.proto.name)) return;
      seen.add(f.proto.name);
      const bytes = files.get(f.proto.name);
      if (bytes) out.push(bytes);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return out;
  };
  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const type = registry.get(symbol);
    if (type)
      return type.kind === "service" && !routedServices.includes(type.typeName) && !symbol.startsWith("grpc.reflection.")
        ? undefined
        : type.file;
    // A method or field: look up its parent.
    const dot = symbol.lastIndexOf(".");
    const parent = dot > 0 ? registry.get(symbol.slice(0, dot)) : undefined;
    if (parent?.kind === "service") {
      const method = parent.methods.find((m) => m.name === symbol.slice(dot + 1));
      return method && !hidden.has(`/${parent.typeName}/${method.name}`) && routedServices.includes(parent.typeName)
        ? parent.file
        : undefined;
    }
    if (parent?.kind === "message") return parent.fields.some((f) => f.name === symbol.slice(dot + 1)) ? parent.file : undefined;
    return undefined;
  };

  const answer = (req: ServerReflectionRequest): ServerReflectionResponse => {
    const reply = (messageResponse: ResponseInit["messageResponse"]) =>
      create(ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse });
    const notFound = (what: string) =>
      reply({ case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } });
    const filesOf = (file: DescFile | undefined, what: string) =>
      file ? reply({ case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } }) : notFound(what);
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return reply({ case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } });
      case "fileContainingSymbol":
        return filesOf(fileOfSymbol(r.value), `symbol ${r.value}`);
      case "fileByFilename": {
        const file = [...registry.files].find((f) => f.proto.name === r.value);
        return filesOf(file, `file ${r.value}`);
      }
      case "fileContainingExtension": {
        const message = registry.getMessage(r.value.containingType);
        const extension = message ? registry.getExtensionFor(message, r.value.extensionNumber) : undefined;
        return filesOf(extension?.file, `extension ${r.value.containingType}(${r.value.extensionNumber})`);
      }
      case "allExtensionNumbersOfType": {
        const message = registry.getMessage(r.value);
        if (!message) return notFound(`type ${r.value}`);
        const numbers: number[] = [];
        for (const type of registry)
          if (type.kind === "extension" && type.extendee.typeName === r.value) numbers.push(type.number);
        return reply({ case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } });
      }
      default:
        return reply({ case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "no message_request set" } });
    }
  };

  return (down, headers) => {
    down.on("error", () => {});
    const protocol: CallProtocol | undefined = protocolFromContentType(headers["content-type"]);
    if (protocol === undefined || !protocol.enveloped || protocol.text) {
      const fallback = protocol ?? protocolFromContentType("application/json");
      sendError(
        down,
        fallback as CallProtocol,
        connectError("server reflection is a streaming call: use gRPC, gRPC-Web or Connect streaming", Code.Unimplemented),
      );
      down.resume();
      return;
    }
    let failure: ConnectError | undefined;
    const writer = createCallerWriter(down, protocol, {
      get failure() {
        return failure;
      },
    });
    const json = protocol.codec === "json";
    const reader = createEnvelopeReader(1 << 20, (_flags, data) => {
      if (failure) return;
      try {
        const req = json
          ? fromJsonString(ServerReflectionRequestSchema, data.toString("utf8"))
          : fromBinary(ServerReflectionRequestSchema, data);
        const res = answer(req);
        writer.message(
          json
            ? Buffer.from(toJsonString(ServerReflectionResponseSchema, res))
            : Buffer.from(toBinary(ServerReflectionResponseSchema, res)),
        );
      } catch (error) {
        failure = connectError(`bad reflection request: ${(error as Error).message}`, Code.InvalidArgument);
        writer.end(failure, {});
      }
    });
    down.on("data", (chunk: Buffer) => {
      if (!failure && !reader.push(chunk)) {
        failure = connectError("reflection request too large", Code.ResourceExhausted);
        writer.end(failure, {});
      }
    });
    const onEnd = () => {
      if (!failure && !down.writableEnded) writer.end(undefined, {});
    };
    if (down.readableEnded) onEnd();
    else down.on("end", onEnd);
  };
}
