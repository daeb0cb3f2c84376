import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** What the user is offered next to the message. */
export type ErrorAction = "log-in" | "retry" | "wait" | "none";

export interface ErrorDescription {
  readonly code: Code;
  /** A short headline in plain words. */
  readonly title: string;
  /** One sentence saying what happened and what to do. */
  readonly message: string;
  readonly action: ErrorAction;
  /** For `resource_exhausted`: when the call may be tried again, if the server said. */
  readonly retryAfterSeconds?: number;
}

/** Turns any failure of a call into words a user understands, chosen by the error's code. */
export function describeError(err: unknown): ErrorDescription {
  const error = ConnectError.from(err);
  // A request that never got an answer (connection refused, offline, DNS) surfaces from fetch as a
  // TypeError, which connect-web reports as `unknown`: to the user that is "unreachable".
  const code = isNetworkFailure(error) ? Code.Unavailable : error.code;
  const server = error.rawMessage.trim();
  switch (code) {
    case Code.Unauthenticated:
      return { code, title: "Please log in", message: "You are not signed in, or your session has ended.", action: "log-in" };
    case Code.PermissionDenied:
      return { code, title: "Not allowed", message: "Your account does not have permission to do that.", action: "none" };
    case Code.ResourceExhausted: {
      const retryAfterSeconds = retryAfter(error);
      const when = retryAfterSeconds === undefined ? "in a little while" : `in ${formatSeconds(retryAfterSeconds)}`;
      return {
        code,
        title: "Slow down",
        message: `Too many requests right now. Try again ${when}.`,
        action: "wait",
        retryAfterSeconds,
      };
    }
    case Code.Unavailable:
      return {
        code,
        title: "Can't reach Portico",
        message: "The service is not reachable right now. Check your connection and try again.",
        action: "retry",
      };
    case Code.DeadlineExceeded:
      return { code, title: "Took too long", message: "The server did not answer in time. Try again.", action: "retry" };
    case Code.InvalidArgument:
      return { code, title: "Check your input", message: server || "Some of what you entered is not valid.", action: "none" };
    case Code.AlreadyExists:
      return { code, title: "Already taken", message: server || "That already exists.", action: "none" };
    case Code.NotFound:
      return { code, title: "Not found", message: server || "What you asked for does not exist.", action: "none" };
    case Code.FailedPrecondition:
      return {
        code,
        title: "Not possible right now",
        message: server || "The request can't be done in the current state.",
        action: "none",
      };
    case Code.Canceled:
      return { code, title: "Stopped", message: "The request was stopped.", action: "none" };
    default:
      return {
        code,
        title: "Something went wrong",
        message: "The server hit an unexpected problem. Try again in a moment.",
        action: "retry",
      };
  }
}

function isNetworkFailure(error: ConnectError): boolean {
  return (
    error.code === Code.Unknown &&
    (error.cause instanceof TypeError || /fetch failed|failed to fetch|networkerror|load failed/i.test(error.rawMessage))
  );
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/** Seconds until a retry, from the `retry-after` header or a google.rpc.RetryInfo detail. */
function retryAfter(error: ConnectError): number | undefined {
  const header = error.metadata.get("retry-after");
  if (header !== null) {
    const seconds = Number(header);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
    const date = Date.parse(header);
    if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000));
  }
  for (const detail of error.details) {
    if ("type" in detail && detail.type === "google.rpc.RetryInfo") {
      const seconds = decodeRetryDelay(detail.value);
      if (seconds !== undefined) return seconds;
    }
  }
  return undefined;
}

// google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }  Duration { int64 seconds = 1; int32 nanos = 2; }
function decodeRetryDelay(bytes: Uint8Array): number | undefined {
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      if (fieldNo !== 1 || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, fieldNo);
        continue;
      }
      const duration = new BinaryReader(reader.bytes());
      let seconds = 0;
      let nanos = 0;
      while (duration.pos < duration.len) {
        const [no, type] = duration.tag();
        if (no === 1 && type === WireType.Varint) seconds = Number(duration.int64());
        else if (no === 2 && type === WireType.Varint) nanos = duration.int32();
        else duration.skip(type, no);
      }
      return Math.ceil(seconds + nanos / 1e9);
    }
  } catch {
    // Unreadable detail: fall through to "in a little while".
  }
  return undefined;
}
