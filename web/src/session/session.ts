import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { AuthService, type Tokens, type User } from "@portico/gen/portico/auth/v1/auth_pb.js";

export type SessionStatus = "restoring" | "signed-out" | "signed-in";

export interface SessionState {
  readonly status: SessionStatus;
  /** The signed-in user, from SignUp / Login / Refresh. */
  readonly user?: User;
  /** Why the user was signed out, in plain words, when it was not their own doing. */
  readonly notice?: string;
}

export interface SessionOptions {
  /**
   * Returns the transport for AuthService Refresh and Logout. It must not carry the session's
   * own auth interceptor (Refresh is public and rides on the httpOnly cookie).
   */
  readonly transport: () => Transport;
  /** Refresh this long before the access token expires, at most; default 60 s (or a fifth of a short token's life). */
  readonly refreshMarginMs?: number;
  /** Cross-tab coordination (BroadcastChannel + Web Locks); default on when the browser has them. */
  readonly crossTab?: boolean;
}

export interface Session {
  getState(): SessionState;
  subscribe(listener: () => void): () => void;
  /** Starts listening to other tabs and restores the session from the refresh cookie (once per page). */
  start(): void;
  /** Stops listening to other tabs and cancels the scheduled renewal (the token stays until it expires). */
  stop(): void;
  /** Settles when the restore started by start() is done. */
  restore(): Promise<void>;
  /** Adopts the answer of SignUp or Login. Only the access token is kept, in memory. */
  signIn(user: User | undefined, tokens: Tokens | undefined): void;
  /** Ends the session on the server (clears the cookie) and forgets the token. */
  signOut(): Promise<void>;
  /** Forgets the session after the server refused it; `notice` tells the user why. */
  expire(notice: string): void;
  /** The current access token, renewed first when it is about to expire; undefined when signed out. */
  accessToken(): Promise<string | undefined>;
  /** Exchanges the refresh cookie for a new access token (one call in flight at a time). True on success. */
  refresh(): Promise<boolean>;
}

const channelName = "portico-session";
const lockName = "portico-refresh";
/** A token this close to its expiry is renewed before it is sent. */
const sendSkewMs = 5_000;

/**
 * The browser's session: the access token lives only in this closure (never in localStorage or a
 * readable cookie); the refresh token lives in the httpOnly `portico_refresh` cookie that the auth
 * service sets and clears through the gateway.
 */
export function createSession(options: SessionOptions): Session {
  if (typeof options.transport !== "function") {
    throw new Error("createSession: transport must be a function returning a Transport");
  }
  const maxMarginMs = options.refreshMarginMs ?? 60_000;
  if (!Number.isFinite(maxMarginMs) || maxMarginMs < 0) {
    throw new Error(`createSession: refreshMarginMs ${String(options.refreshMarginMs)} must be a number of milliseconds >= 0`);
  }
  const crossTab = options.crossTab ?? true;
  let channel: BroadcastChannel | undefined;

  let state: SessionState = { status: "restoring" };
  let token: { value: string; expiresAt: number; issuedAt: number } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<boolean> | undefined;
  let restoring: Promise<void> | undefined;
  const listeners = new Set<() => void>();

  const client = () => createClient(AuthService, options.transport());

  function setState(next: SessionState) {
    state = next;
    for (const listener of listeners) listener();
  }

  function clearToken() {
    token = undefined;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  }

  /** Renews the token a fifth of its life (at most refreshMarginMs) before it expires. */
  function schedule() {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (!token) return;
    const margin = Math.min(maxMarginMs, (token.expiresAt - token.issuedAt) / 5);
    timer = setTimeout(() => void refresh().catch(() => undefined), Math.max(0, token.expiresAt - margin - Date.now()));
  }

  function adopt(user: User | undefined, tokens: Tokens | undefined) {
    if (!tokens?.accessToken) {
      throw new ConnectError("the auth service answered without an access token", Code.Internal);
    }
    const now = Date.now();
    const expiresAt = tokens.accessTokenExpiresAt ? timestampMs(tokens.accessTokenExpiresAt) : jwtExpiry(tokens.accessToken);
    token = { value: tokens.accessToken, expiresAt: expiresAt ?? now + 5 * 60_000, issuedAt: now };
    schedule();
    setState({ status: "signed-in", user: user ?? state.user });
  }

  async function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
    // Two tabs refreshing at once would present the same rotated cookie twice, which the auth
    // service treats as token theft; Web Locks serialise them so the second sends the new cookie.
    const locks = crossTab && typeof navigator !== "undefined" ? navigator.locks : undefined;
    return locks ? locks.request(lockName, fn) : fn();
  }

  function refresh(): Promise<boolean> {
    inFlight ??= withRefreshLock(async () => {
      try {
        const res = await client().refresh({ refreshToken: "" });
        adopt(res.user, res.tokens);
        return true;
      } catch (err) {
        const code = ConnectError.from(err).code;
        if (code === Code.Unauthenticated || code === Code.PermissionDenied || code === Code.InvalidArgument) {
          const wasSignedIn = state.status === "signed-in";
          clearToken();
          setState({ status: "signed-out", notice: wasSignedIn ? "Your session has ended. Please log in again." : undefined });
          return false;
        }
        // The platform is unreachable: keep the user signed in and let the caller show a retry.
        if (state.status === "restoring") setState({ status: "signed-out" });
        throw err;
      }
    }).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function restore(): Promise<void> {
    restoring ??= refresh().then(
      () => undefined,
      () => undefined,
    );
    return restoring;
  }

  function onMessage(event: MessageEvent<unknown>) {
    const kind = (event.data as { kind?: string } | null)?.kind;
    if (kind === "signed-out" && state.status === "signed-in") {
      clearToken();
      setState({ status: "signed-out", notice: "You logged out in another tab." });
    } else if (kind === "signed-in" && state.status !== "signed-in") {
      void refresh().catch(() => undefined);
    }
  }

  return {
    getState: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start() {
      if (crossTab && typeof BroadcastChannel === "function" && channel === undefined) {
        channel = new BroadcastChannel(channelName);
        channel.addEventListener("message", onMessage);
      }
      if (token && timer === undefined) schedule();
      void restore();
    },
    stop() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      channel?.close();
      channel = undefined;
    },
    restore,
    signIn(user, tokens) {
      adopt(user, tokens);
      channel?.postMessage({ kind: "signed-in" });
    },
    async signOut() {
      clearToken();
      try {
        // Logout reads the session from the cookie and answers a Set-Cookie that clears it.
        await client().logout({ refreshToken: "" });
      } finally {
        setState({ status: "signed-out" });
        channel?.postMessage({ kind: "signed-out" });
      }
    },
    expire(notice) {
      clearToken();
      setState({ status: "signed-out", notice });
    },
    async accessToken() {
      if (token && token.expiresAt - Date.now() <= sendSkewMs) {
        await refresh().catch(() => undefined);
      }
      return token?.value;
    },
    refresh,
  };
}

/** The `exp` claim of a compact JWS, in ms; undefined when it has none. Not a verification. */
function jwtExpiry(jwt: string): number | undefined {
  try {
    const payload = jwt.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
