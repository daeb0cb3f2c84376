/*
 * The gateway's own HTTP/2 engine, for the hot path on both sides of the proxy: the public
 * connections (server role) and the pooled upstream connections (client role). node:http2 costs
 * about 80 µs of CPU per proxied unary call on the 2-core dev machine before the gateway does
 * anything (a bare stream pass-through); nginx grpc_pass costs about 27 µs. Most of node's cost is
 * per-stream machinery (a Duplex per stream, C++ objects, header conversions), not the protocol,
 * so this engine parses and writes frames in JavaScript: streams are small EventEmitters, a whole
 * event-loop turn of frames goes out in one write per socket, and flow control credits are batched.
 * Streams keep the shape (events, method names) of node's, so the proxy sees no difference.
 *
 * A connection is an `H2Session` (h2-session.ts), a request on it an `H2Stream` (h2-stream.ts); the
 * server role starts with `serveH2` (serve-h2.ts, with the public port's limits and timeouts), the
 * client role with `connectH2` (connect-h2.ts). Frames are built in frame.ts, header blocks coded in
 * hpack.ts, and every session's frames of a turn leave together (turn-end.ts).
 */
export { type BufferBudget, type BufferBudgetOptions, createBufferBudget, processBufferBudget } from "./buffer-budget.js";
export { connectH2, type H2ClientOptions } from "./connect-h2.js";
export { CLIENT_PREFACE, FrameFlag, FrameType, frame, H2Error, SettingId, settingsFrame } from "./frame.js";
export { H2Session, type H2SessionOptions, type H2Settings } from "./h2-session.js";
export { H2Stream } from "./h2-stream.js";
export { toHeaderObject } from "./header-object.js";
export {
  createHpackDecoder,
  createHpackEncoder,
  type HeaderList,
  type HpackDecoder,
  type HpackEncoder,
  HpackError,
} from "./hpack.js";
export { replaceFields } from "./replace-fields.js";
export { checkH2ServerOptions, type H2ServerOptions, serveH2 } from "./serve-h2.js";
export { TokenBucket } from "./token-bucket.js";
export { atTurnEnd } from "./turn-end.js";
