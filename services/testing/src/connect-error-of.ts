import { ConnectError } from "@connectrpc/connect";

/** The ConnectError a call ends with, or undefined when it succeeds: `expect((await connectErrorOf(call))?.code)`. */
export function connectErrorOf(call: Promise<unknown>): Promise<ConnectError | undefined> {
  return call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
}
