import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectError } from "../connect-error.js";
import { reject } from "../pipeline/call.js";
import { admit } from "../pipeline/route.js";
import type { RestStage } from "../proxy.js";
import { protocols } from "../rpc-protocol.js";
import type { ApiDocs } from "./api-docs.js";
import { requestFromPathAndQuery, restRequestBinary } from "./rest-request.js";
import type { RestRoutes } from "./rest-routes.js";
import { createRestWriter, endRestStream, streamFormatOf } from "./rest-writer.js";

export interface RestStageOptions {
  /** The REST routes of the current route table (rebuilt on reload). */
  routes: () => RestRoutes;
  /** `/openapi.json` and `/docs`. */
  docs?: ApiDocs;
  /** Answer field names as the .proto writes them (current config; protojson's lowerCamelCase otherwise). */
  useProtoNames?: () => boolean;
}

/** REST callers speak JSON; the errors the gateway answers are Connect's JSON errors with the HTTP status of the code. */
const restProtocol = protocols.connectUnaryJson;

function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const bare = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return bare === "application/json" || bare.endsWith("+json");
}

/**
 * The REST stage, asked by `route` for a path that is no RPC: matches the method and path against
 * the bindings (one walk of a trie built at start-up), checks the path variables and query
 * parameters, and admits the call as the rpc it maps to: the same authentication, policy, limits
 * and upstream. The body is read after the policy, merged and sent upstream in binary; the answer
 * comes back as proto3 JSON. Paths under the bindings' prefixes never fall through to the web app.
 */
export function createRestStage(options: RestStageOptions): RestStage {
  return (ctx, down, headers, peer, method, rawPath) => {
    const q = rawPath.indexOf("?");
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    if ((method === "GET" || method === "HEAD") && options.docs?.(down, headers, path)) return true;
    const rest = options.routes();
    const match = rest.matcher.match(method, path);
    switch (match.kind) {
      case "none":
        if (!rest.matcher.owns(path)) return false;
        reject(down, restProtocol, connectError(`no REST route ${method} ${path.slice(0, 200)}`, Code.NotFound));
        return true;
      case "bad":
        reject(down, restProtocol, connectError(match.message, Code.InvalidArgument));
        return true;
      case "method":
        reject(
          down,
          restProtocol,
          connectError(`${method} is not allowed on ${path.slice(0, 200)}: use ${match.allow.join(" or ")}`, Code.Unimplemented),
          { ":status": 405, allow: match.allow.join(", ") },
        );
        return true;
    }
    const { binding, values } = match;
    const contentType = headers["content-type"];
    if (binding.body !== undefined && !isJson(contentType)) {
      reject(
        down,
        restProtocol,
        connectError(
          `content-type "${String(contentType).slice(0, 100)}" is not supported: send the body as application/json`,
          Code.InvalidArgument,
        ),
        { ":status": 415, "accept-post": "application/json" },
      );
      return true;
    }
    const route = rest.routeOf(binding);
    const registry = ctx.options.routes().registry;
    let fromUrl: JsonObject;
    try {
      fromUrl = requestFromPathAndQuery(binding, values, q < 0 ? "" : rawPath.slice(q + 1), registry);
    } catch (error) {
      reject(down, restProtocol, ConnectError.from(error));
      return true;
    }
    const format = binding.method.methodKind === "server_streaming" ? streamFormatOf(headers.accept) : undefined;
    admit(ctx, down, headers, peer, route, restProtocol, route.path, route.path, {
      request: (body) => restRequestBinary(binding, fromUrl, body, registry),
      writer: (d) => createRestWriter(d, binding, registry, format, options.useProtoNames?.() === true),
      endWithError: (d, error) => endRestStream(d, format, error),
    });
    return true;
  };
}
