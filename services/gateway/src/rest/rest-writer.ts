import { fromBinary, type JsonObject, type JsonValue, type Registry, toJson } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";
import type { CallerWriter } from "../caller-writer.js";
import type { Downstream, OutgoingHttpHeaders } from "../downstream.js";
import type { HttpBinding } from "./http-rule.js";

/** How a server-streaming REST call streams: newline-delimited JSON, or server-sent events when the client asks for them. */
export type RestStreamFormat = "ndjson" | "sse";

/** `text/event-stream` when the Accept header asks for it, NDJSON otherwise. */
export function streamFormatOf(accept: string | string[] | undefined): RestStreamFormat {
  const value = Array.isArray(accept) ? accept.join(",") : (accept ?? "");
  return value.toLowerCase().includes("text/event-stream") ? "sse" : "ndjson";
}

export const streamContentTypes: Record<RestStreamFormat, string> = {
  ndjson: "application/x-ndjson",
  sse: "text/event-stream",
};

/** The proto3 JSON of a REST response: the message, or its `response_body` field; names as protojson writes them unless `useProtoNames`. */
export function responseJson(binding: HttpBinding, binary: Uint8Array, registry: Registry, useProtoNames: boolean): JsonValue {
  const output = binding.method.output;
  const message = fromBinary(output, binary);
  const field = binding.responseBody;
  const options = { registry, useProtoFieldName: useProtoNames };
  if (field === undefined) return toJson(output, message, options);
  const key = useProtoNames ? field.name : field.jsonName;
  const json = toJson(output, message, options) as JsonObject;
  if (key in json) return json[key] as JsonValue;
  // An unset field: its default, as protojson writes defaults.
  const full = toJson(output, message, { ...options, alwaysEmitImplicit: true }) as JsonObject;
  return full[key] ?? (field.fieldKind === "message" ? {} : null);
}

/** The REST error body: `{code, message, details}` as Connect writes it. */
export function restErrorJson(error: ConnectError): JsonValue {
  return errorToJson(error, undefined) as JsonValue;
}

/** Ends a REST stream whose first message went out: a last `{"error": …}` line, or an `event: error`. */
export function endRestStream(down: Downstream, format: RestStreamFormat | undefined, error: ConnectError): void {
  if (down.destroyed || down.writableEnded) return;
  const json = JSON.stringify(restErrorJson(error));
  if (format === undefined) down.close(0x2 /* INTERNAL_ERROR: a unary body cannot carry an error after it began */);
  else down.end(Buffer.from(format === "sse" ? `event: error\ndata: ${json}\n\n` : `{"error":${json}}\n`));
}

/**
 * Writes an upstream's answer to a REST caller. Unary: the message (or its `response_body`) as
 * JSON with 200, or the error as JSON with the HTTP status of its code. Server streaming: one
 * `{"result": …}` line per message (NDJSON) or one `data:` event (SSE); an error after the first
 * message is a last `{"error": …}` line or an `event: error`. Response metadata becomes headers.
 */
export function createRestWriter(
  down: Downstream,
  binding: HttpBinding,
  registry: Registry,
  format: RestStreamFormat | undefined,
  useProtoNames: boolean,
): CallerWriter {
  let metadata: Record<string, string | string[]> = {};
  let body: JsonValue | undefined;
  let started = false;
  const respondError = (error: ConnectError, extra: Record<string, string | string[]>) => {
    down.respond({ ...metadata, ...extra, ":status": codeToHttpStatus(error.code), "content-type": "application/json" });
    down.end(Buffer.from(JSON.stringify(restErrorJson(error))));
  };
  return {
    metadata(m) {
      metadata = m;
    },
    message(data) {
      const json = responseJson(binding, data, registry, useProtoNames);
      if (format === undefined) {
        body = json;
        return true;
      }
      if (!started) {
        started = true;
        if (down.destroyed) return true;
        down.respond({
          ...metadata,
          ":status": 200,
          "content-type": streamContentTypes[format],
          "cache-control": "no-cache",
          "x-accel-buffering": "no",
        });
      }
      const text = format === "sse" ? `data: ${JSON.stringify(json)}\n\n` : `${JSON.stringify({ result: json })}\n`;
      return down.write(Buffer.from(text));
    },
    end(error, trailers) {
      if (down.destroyed) return;
      const extra: OutgoingHttpHeaders = {};
      for (const name in trailers) extra[`trailer-${name}`] = trailers[name];
      if (format !== undefined && started) {
        if (error === undefined) down.end();
        else endRestStream(down, format, error);
        return;
      }
      if (error !== undefined) {
        respondError(error, extra as Record<string, string>);
        return;
      }
      if (format !== undefined) {
        down.respond({
          ...metadata,
          ...extra,
          ":status": 200,
          "content-type": streamContentTypes[format],
          "cache-control": "no-cache",
        });
        down.end();
        return;
      }
      down.respond({ ...metadata, ...extra, ":status": 200, "content-type": "application/json" });
      down.end(Buffer.from(JSON.stringify(body ?? {})));
    },
  };
}
