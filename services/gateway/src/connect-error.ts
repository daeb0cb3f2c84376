import { type Code, ConnectError } from "@connectrpc/connect";
import { codeFromString, codeToString } from "@connectrpc/connect/protocol-connect";

/** The metadata an error made here was given, and the `Headers` made of it once something read `metadata`. */
const given = Symbol("metadata given");
const made = Symbol("metadata made");
interface Lazy {
  [given]: Readonly<Record<string, string>>;
  [made]?: Headers;
}
const noMetadata: Readonly<Record<string, string>> = Object.freeze({});

/**
 * ConnectError's prototype with `metadata` as an accessor, defined once: errors made here are
 * ConnectErrors by connect's own test (`instanceof` checks their fields when the prototype is not its).
 */
const lazyPrototype = Object.create(ConnectError.prototype, {
  metadata: {
    configurable: true,
    get(this: Lazy): Headers {
      this[made] ??= new Headers(this[given]);
      return this[made];
    },
    set(this: Lazy, value: Headers) {
      this[made] = value;
    },
  },
}) as ConnectError;

/**
 * A ConnectError, as `new ConnectError(message, code, metadata, undefined, cause)` makes it, but
 * with its `metadata` made on first read. ConnectError's constructor makes a fetch `Headers` on
 * every call, and in node 20 the first `Headers` loads undici (all of fetch): +3.4 MB resident for
 * the rest of the process in a gateway that has refused one call (bench/README.md, session 14).
 * The gateway writes its errors' metadata with `metadataOf`, which never makes one.
 */
export function connectError(
  message: string,
  code: Code,
  metadata?: Readonly<Record<string, string>>,
  cause?: unknown,
): ConnectError {
  // What ConnectError's constructor does: an Error with the code in its message, then the prototype.
  const error = new Error(message.length > 0 ? `[${codeToString(code)}] ${message}` : `[${codeToString(code)}]`);
  Object.setPrototypeOf(error, lazyPrototype);
  const fields = error as Error & { -readonly [K in keyof ConnectError]: ConnectError[K] } & Lazy;
  fields.name = "ConnectError";
  fields.rawMessage = message;
  fields.code = code;
  fields[given] = metadata ?? noMetadata;
  fields.details = [];
  fields.cause = cause;
  return fields;
}

/** An error's metadata as name/value pairs, without making `Headers` for an error `connectError` made. */
export function metadataOf(error: ConnectError): Readonly<Record<string, string>> {
  const lazy = error as ConnectError & Partial<Lazy>;
  if (lazy[given] !== undefined && lazy[made] === undefined) return lazy[given];
  const out: Record<string, string> = {};
  error.metadata.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/**
 * A Connect error body (`{"code": …, "message": …}`) as `connectError` makes errors, where
 * connect's `errorFromJsonBytes` would make `Headers`; `fallback` when the body is not one.
 * Its details are not kept (the gateway reads an upstream error's code and message only).
 */
export function connectErrorFromJson(bytes: Uint8Array, fallback: ConnectError): ConnectError {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    return fallback;
  }
  if (typeof body !== "object" || body === null) return fallback;
  const { code, message } = body as { code?: unknown; message?: unknown };
  const parsed = typeof code === "string" ? codeFromString(code) : undefined;
  if (parsed === undefined) return fallback;
  return connectError(typeof message === "string" ? message : "", parsed);
}
