import { constants as h2 } from "node:http2";
import { Code, type ConnectError } from "@connectrpc/connect";
import { connectError } from "../connect-error.js";
import type { Downstream } from "../downstream.js";
import { endWithError } from "../error-response.js";
import type { H2Stream } from "../h2/index.js";
import type { CallProtocol } from "../rpc-protocol.js";
import type { CallLife, CustomCaller } from "../translate.js";
import type { UpstreamTarget } from "../upstream.js";
import { type CallRecord, codeString, type ProxyContext, reject } from "./call.js";

/** The bookkeeping of one forwarded call, shared by pass-through and translation. */
export interface Life extends CallLife {
  done: boolean;
  failure: ConnectError | undefined;
  /** The upstream stream ended normally (a later close is not a failure). */
  upEnded: boolean;
  /** The current attempt (a retry replaces it). */
  attempt: Attempt;
  switchTo(next: Attempt): void;
}

/** One upstream stream of a call, on one address. */
export interface Attempt {
  readonly target: UpstreamTarget;
  readonly up: H2Stream;
}

/** The bookkeeping of one forwarded call: deadline, in-flight counts, cancel and failure handling. */
export function startLife(
  ctx: ProxyContext,
  down: Downstream,
  attempt: Attempt,
  protocol: CallProtocol,
  timeoutMs: number,
  record: CallRecord,
  custom?: CustomCaller,
): Life {
  ctx.inFlight++;
  attempt.target.outstanding++;
  const timer = setTimeout(
    () => life.fail(connectError(`deadline of ${timeoutMs} ms exceeded`, Code.DeadlineExceeded)),
    timeoutMs,
  );
  const life: Life = {
    done: false,
    failure: undefined,
    upEnded: false,
    attempt,
    finish(code) {
      if (life.done) return;
      life.done = true;
      ctx.inFlight--;
      life.attempt.target.outstanding--;
      clearTimeout(timer);
      record.code = code;
      ctx.options.onCallEnd?.(record);
    },
    fail(error) {
      if (life.done) return;
      life.failure = error;
      const up = life.attempt.up;
      if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
      life.finish(codeString(error.code));
      if (!down.headersSent) reject(down, protocol, error);
      else if (custom !== undefined) custom.endWithError(down, error);
      else endWithError(down, protocol, error);
    },
    reached: () => life.attempt.target.succeeded(),
    upstreamFailed: (reason) => life.attempt.target.failed(reason),
    switchTo(next) {
      life.attempt.target.outstanding--;
      next.target.outstanding++;
      life.attempt = next;
      life.upEnded = false;
    },
  };
  // The caller went away (cancel, reset, disconnect): cancel the upstream stream.
  down.on("close", () => {
    if (life.done) return;
    const up = life.attempt.up;
    if (!up.closed) up.close(h2.NGHTTP2_CANCEL);
    life.finish("canceled");
  });
  return life;
}

/** Calls `broken` when the upstream stream closes before it ended normally (reset, connection lost). */
export function watchUpstream(life: Life, up: H2Stream, broken: () => void): void {
  // A stream that ends with its connection says why (e.g. a TLS certificate that failed to verify).
  let lost: string | undefined;
  up.on("error", (error: Error) => {
    lost = error.message;
  });
  up.on("end", () => {
    if (life.attempt.up === up) life.upEnded = true;
  });
  up.on("close", () => {
    if (life.done || life.upEnded || life.attempt.up !== up) return;
    life.attempt.target.failed(lost ?? `stream reset (${up.rstCode})`);
    broken();
  });
}
