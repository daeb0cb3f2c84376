import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClientProvider } from "@tanstack/react-query";
import { type ReactNode, useEffect, useMemo, useRef, useState } from "react";
import type { PorticoProtocol, WebConfig } from "./config/web-config.js";
import { createPorticoTransport } from "./rpc/portico-transport.js";
import { initialProtocol, rememberProtocol } from "./rpc/protocol-preference.js";
import { createPorticoQueryClient } from "./rpc/query-client.js";
import { ProtocolContext } from "./rpc/use-protocol.js";
import { createSession, type Session } from "./session/session.js";
import { SessionContext } from "./session/use-session.js";

export interface PorticoProviderProps {
  readonly config: WebConfig;
  /** For tests outside a browser: a fetch with a cookie jar. Defaults to the browser's fetch. */
  readonly fetch?: typeof globalThis.fetch;
  /** Refresh margin for short-lived tokens in tests; see SessionOptions. */
  readonly refreshMarginMs?: number;
  /** Tell other tabs about sign-in and sign-out (default true); tests turn it off. */
  readonly crossTab?: boolean;
  readonly children: ReactNode;
}

/**
 * Everything the generated hooks need: one session, one QueryClient, and the transport for the
 * chosen protocol with the session's bearer interceptor. Switching protocol swaps the transport;
 * the session (and so the signed-in user) stays.
 */
export function PorticoProvider({ config, fetch, refreshMarginMs, crossTab, children }: PorticoProviderProps) {
  const [protocol, setProtocolState] = useState<PorticoProtocol>(() => initialProtocol(config.protocol));
  const protocolRef = useRef(protocol);
  protocolRef.current = protocol;

  const [session] = useState<Session>(() =>
    createSession({
      transport: () => createPorticoTransport({ baseUrl: config.baseUrl, protocol: protocolRef.current, fetch }),
      refreshMarginMs,
      crossTab,
    }),
  );
  const [queryClient] = useState(createPorticoQueryClient);

  const transport = useMemo(
    () => createPorticoTransport({ baseUrl: config.baseUrl, protocol, session, fetch }),
    [config.baseUrl, protocol, session, fetch],
  );

  useEffect(() => {
    session.start();
    return () => session.stop();
  }, [session]);

  useEffect(
    () =>
      session.subscribe(() => {
        // Nothing cached for one user may show for the next one.
        if (session.getState().status === "signed-out") queryClient.clear();
      }),
    [session, queryClient],
  );

  const protocolChoice = useMemo(
    () => ({
      protocol,
      setProtocol(next: PorticoProtocol) {
        rememberProtocol(next);
        setProtocolState(next);
      },
    }),
    [protocol],
  );

  return (
    <SessionContext.Provider value={session}>
      <ProtocolContext.Provider value={protocolChoice}>
        <TransportProvider transport={transport}>
          <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
        </TransportProvider>
      </ProtocolContext.Provider>
    </SessionContext.Provider>
  );
}
