import { randomFillSync } from "node:crypto";

const pool = Buffer.allocUnsafe(4096);
let poolPos = pool.length;

/** Random lowercase hex from a refilled entropy pool (cheap per call). */
function randomHex(bytes: number): string {
  if (poolPos + bytes > pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const hex = pool.toString("hex", poolPos, poolPos + bytes);
  poolPos += bytes;
  return hex;
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const zeroTrace = "0".repeat(32);

/** W3C trace context: continues a valid `traceparent` with a new span id, or starts a trace. */
export function nextTraceparent(incoming: string | string[] | undefined): string {
  if (typeof incoming === "string") {
    const match = traceparentPattern.exec(incoming);
    if (match && match[1] !== zeroTrace && match[2] !== "0000000000000000") {
      return `00-${match[1]}-${randomHex(8)}-${match[3]}`;
    }
  }
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}
