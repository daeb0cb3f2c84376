/** The wire protocol of one call, read from its content type (and method, for Connect GET). */
export interface CallProtocol {
  readonly protocol: "connect" | "grpc" | "grpc-web";
  readonly codec: "proto" | "json";
  /** Messages are enveloped (gRPC, gRPC-Web, Connect streaming); false for Connect unary. */
  readonly enveloped: boolean;
  /** gRPC-Web text: the body is base64. */
  readonly text: boolean;
  /** Connect unary GET: the message is in the query string. */
  readonly get: boolean;
  /** The content type the gateway answers with. */
  readonly contentType: string;
}

function make(
  protocol: CallProtocol["protocol"],
  codec: CallProtocol["codec"],
  enveloped: boolean,
  contentType: string,
  text = false,
  get = false,
): CallProtocol {
  return Object.freeze({ protocol, codec, enveloped, text, get, contentType });
}

export const protocols = {
  connectUnaryProto: make("connect", "proto", false, "application/proto"),
  connectUnaryJson: make("connect", "json", false, "application/json"),
  connectStreamProto: make("connect", "proto", true, "application/connect+proto"),
  connectStreamJson: make("connect", "json", true, "application/connect+json"),
  connectGetProto: make("connect", "proto", false, "application/proto", false, true),
  connectGetJson: make("connect", "json", false, "application/json", false, true),
  grpcProto: make("grpc", "proto", true, "application/grpc"),
  grpcJson: make("grpc", "json", true, "application/grpc+json"),
  grpcWebProto: make("grpc-web", "proto", true, "application/grpc-web+proto"),
  grpcWebJson: make("grpc-web", "json", true, "application/grpc-web+json"),
  grpcWebTextProto: make("grpc-web", "proto", true, "application/grpc-web-text+proto", true),
} as const;

const byContentType = new Map<string, CallProtocol>([
  ["application/proto", protocols.connectUnaryProto],
  ["application/json", protocols.connectUnaryJson],
  ["application/connect+proto", protocols.connectStreamProto],
  ["application/connect+json", protocols.connectStreamJson],
  ["application/grpc", protocols.grpcProto],
  ["application/grpc+proto", protocols.grpcProto],
  ["application/grpc+json", protocols.grpcJson],
  ["application/grpc-web", protocols.grpcWebProto],
  ["application/grpc-web+proto", protocols.grpcWebProto],
  ["application/grpc-web+json", protocols.grpcWebJson],
  ["application/grpc-web-text", protocols.grpcWebTextProto],
  ["application/grpc-web-text+proto", protocols.grpcWebTextProto],
]);

/** The protocol of a POST by its content type; undefined when it is none of Connect, gRPC or gRPC-Web. */
export function protocolFromContentType(contentType: string | undefined): CallProtocol | undefined {
  if (contentType === undefined) return undefined;
  const exact = byContentType.get(contentType);
  if (exact !== undefined) return exact;
  const semi = contentType.indexOf(";");
  const bare = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return byContentType.get(bare);
}

/** The protocol of a Connect GET from its query string (`encoding=json|proto`). */
export function protocolFromGetQuery(query: string): CallProtocol {
  return /(?:^|&)encoding=json(?:&|$)/.test(query) ? protocols.connectGetJson : protocols.connectGetProto;
}

/** A best guess for answering a request whose protocol is unknown or unsupported. */
export function guessProtocol(contentType: string | undefined): CallProtocol {
  if (contentType?.startsWith("application/grpc-web-text")) return protocols.grpcWebTextProto;
  if (contentType?.startsWith("application/grpc-web")) return protocols.grpcWebProto;
  if (contentType?.startsWith("application/grpc")) return protocols.grpcProto;
  if (contentType?.startsWith("application/connect+")) return protocols.connectStreamJson;
  return protocols.connectUnaryJson;
}

/** The content types a POST may use, for error messages and `accept-post`. */
export const supportedContentTypes = [...byContentType.keys()];
