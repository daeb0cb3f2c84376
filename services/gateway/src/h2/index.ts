// The gateway's HTTP/2 engine: frames, HPACK and sessions (server and client roles).
export { type BufferBudget, type BufferBudgetOptions, createBufferBudget, processBufferBudget } from "./buffer-budget.js";
export { CLIENT_PREFACE, FrameFlag, FrameType, frame, H2Error, SettingId, settingsFrame } from "./frame.js";
export {
  createHpackDecoder,
  createHpackEncoder,
  type HeaderList,
  type HpackDecoder,
  type HpackEncoder,
  HpackError,
} from "./hpack.js";
export { replaceFields } from "./replace-fields.js";
export {
  atTurnEnd,
  checkH2ServerOptions,
  connectH2,
  type H2ClientOptions,
  type H2ServerOptions,
  H2Session,
  type H2SessionOptions,
  type H2Settings,
  H2Stream,
  serveH2,
  toHeaderObject,
} from "./session.js";
export { TokenBucket } from "./token-bucket.js";
