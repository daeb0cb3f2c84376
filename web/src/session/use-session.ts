import { createContext, useContext, useSyncExternalStore } from "react";
import type { Session, SessionState } from "./session.js";

export const SessionContext = createContext<Session | undefined>(undefined);

/** The app's session and its current state; re-renders when the user signs in or out. */
export function useSession(): { session: Session; state: SessionState } {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession must be used inside <PorticoProvider>");
  const state = useSyncExternalStore(session.subscribe, session.getState, session.getState);
  return { session, state };
}
