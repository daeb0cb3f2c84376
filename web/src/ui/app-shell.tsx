import type { ReactNode } from "react";
import { useState } from "react";
import { type PorticoProtocol, protocols } from "../config/web-config.js";
import { Link } from "../router/router.js";
import { useProtocol } from "../rpc/use-protocol.js";
import { useSession } from "../session/use-session.js";
import { ErrorNotice } from "./error-notice.js";

const navigation = [
  { to: "/", label: "Greet" },
  { to: "/stream", label: "Live stream" },
  { to: "/history", label: "History" },
  { to: "/profile", label: "Profile" },
];

const protocolLabels: Record<PorticoProtocol, string> = { connect: "Connect", "grpc-web": "gRPC-Web" };

/** Header with navigation, the signed-in user, the protocol switch and Log out; the screen below. */
export function AppShell({ children }: { children: ReactNode }) {
  const { session, state } = useSession();
  const { protocol, setProtocol } = useProtocol();
  const [logoutError, setLogoutError] = useState<unknown>();
  const [loggingOut, setLoggingOut] = useState(false);

  const logOut = async () => {
    setLoggingOut(true);
    try {
      await session.signOut();
    } catch (err) {
      setLogoutError(err);
    } finally {
      setLoggingOut(false);
    }
  };

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <Link to="/" className="brand" aria-label="Portico home">
            <span className="brand-mark" aria-hidden="true">
              ◆
            </span>{" "}
            Portico
          </Link>
          <nav aria-label="Main">
            <ul>
              {navigation.map((item) => (
                <li key={item.to}>
                  <Link to={item.to}>{item.label}</Link>
                </li>
              ))}
            </ul>
          </nav>
          <div className="topbar-tools">
            <label className="protocol-select">
              <span>Protocol</span>
              <select value={protocol} onChange={(e) => setProtocol(e.target.value as PorticoProtocol)}>
                {protocols.map((p) => (
                  <option key={p} value={p}>
                    {protocolLabels[p]}
                  </option>
                ))}
              </select>
            </label>
            <span className="user-chip" title={state.user?.email}>
              {state.user?.displayName || state.user?.email}
            </span>
            <button type="button" className="button button-secondary" onClick={() => void logOut()} disabled={loggingOut}>
              {loggingOut ? "Logging out…" : "Log out"}
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="content" tabIndex={-1}>
        {logoutError !== undefined && <ErrorNotice error={logoutError} />}
        {children}
      </main>
    </>
  );
}
