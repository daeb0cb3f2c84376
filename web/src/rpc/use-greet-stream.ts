import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectQueryKey, useTransport } from "@connectrpc/connect-query";
import { GreeterService, type GreetStreamResponse } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { listGreetings } from "@portico/gen/portico/greeter/v1/greeter-GreeterService_connectquery.js";
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { useSession } from "../session/use-session.js";

export type GreetStreamStatus = "idle" | "streaming" | "done" | "stopped" | "failed";

export interface GreetStreamState {
  readonly status: GreetStreamStatus;
  /** Messages in the order they arrived. */
  readonly messages: readonly GreetStreamResponse[];
  readonly expected: number;
  readonly error?: unknown;
}

export interface GreetStreamInput {
  readonly name: string;
  readonly count: number;
  readonly intervalMs: number;
}

/**
 * GreetStream as React state: each message is appended as it arrives; stop() cancels the call.
 * connect-query has no hook for server streams, so this uses the same transport with a client.
 * The bearer interceptor cannot replay a stream, so a stream refused as `unauthenticated` before
 * its first message is restarted once here after renewing the token.
 */
export function useGreetStream() {
  const transport = useTransport();
  const queryClient = useQueryClient();
  const { session } = useSession();
  const [state, setState] = useState<GreetStreamState>({ status: "idle", messages: [], expected: 0 });
  const controller = useRef<AbortController | undefined>(undefined);

  useEffect(() => () => controller.current?.abort(), []);

  const start = useCallback(
    async (input: GreetStreamInput) => {
      controller.current?.abort();
      const abort = new AbortController();
      controller.current = abort;
      setState({ status: "streaming", messages: [], expected: input.count });
      const client = createClient(GreeterService, transport);
      let received = 0;
      for (let attempt = 0; ; attempt++) {
        try {
          for await (const message of client.greetStream(input, { signal: abort.signal })) {
            received++;
            setState((s) => ({ ...s, messages: [...s.messages, message] }));
          }
          setState((s) => ({ ...s, status: "done" }));
          break;
        } catch (err) {
          const error = ConnectError.from(err);
          if (abort.signal.aborted || error.code === Code.Canceled) {
            setState((s) => ({ ...s, status: "stopped" }));
            break;
          }
          if (
            error.code === Code.Unauthenticated &&
            attempt === 0 &&
            received === 0 &&
            (await session.refresh().catch(() => false))
          ) {
            continue;
          }
          if (error.code === Code.Unauthenticated) session.expire("Your session has ended. Please log in again.");
          setState((s) => ({ ...s, status: "failed", error }));
          break;
        }
      }
      if (controller.current === abort) controller.current = undefined;
      if (received > 0) {
        void queryClient.invalidateQueries({
          queryKey: createConnectQueryKey({ schema: listGreetings, cardinality: undefined }),
        });
      }
    },
    [transport, queryClient, session],
  );

  const stop = useCallback(() => controller.current?.abort(), []);

  return { ...state, start, stop };
}
