// The benchmark's user: signed up through the gateway, with as many fresh access tokens as W6 needs.
import { randomBytes } from "node:crypto";
import { callOnce, connect } from "./bench-probe.js";

export interface BenchUser {
  email: string;
  password: string;
  userId: string;
  tier: string;
  roles: string[];
  accessToken: string;
  refreshToken: string;
}

interface TokensJson {
  accessToken?: string;
  refreshToken?: string;
}

interface AccountJson {
  user?: { id?: string; tier?: string; roles?: string[] };
  tokens?: TokensJson;
}

/** A failure worth retrying: the gateway is not listening yet, or answers that auth is not reachable yet. */
export class NotReadyError extends Error {}

/**
 * SignUp through the gateway's public port with Connect JSON over HTTP/1.1. Node's fetch sends
 * `sec-fetch-mode`, so the auth service treats it as a browser and puts the refresh token only in
 * the `portico_refresh` cookie: it is read from there when the body has none.
 */
export async function signUp(gatewayUrl: string): Promise<BenchUser> {
  const email = `bench-${Date.now()}-${randomBytes(4).toString("hex")}@example.com`;
  const password = `bench-${randomBytes(12).toString("base64url")}`;
  let res: Response;
  try {
    res = await fetch(`${gatewayUrl}/portico.auth.v1.AuthService/SignUp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password, displayName: "Bench" }),
    });
  } catch (error) {
    throw new NotReadyError(`SignUp through the gateway: ${(error as Error).message}`);
  }
  const text = await res.text();
  if (res.status !== 200) {
    const message = `SignUp through the gateway answered HTTP ${res.status}: ${text.slice(0, 300)}`;
    throw res.status >= 502 && res.status <= 504 ? new NotReadyError(message) : new Error(message);
  }
  const body = JSON.parse(text) as AccountJson;
  const cookie = res.headers
    .getSetCookie()
    .map((c) => /^portico_refresh=([^;]+)/.exec(c)?.[1])
    .find(Boolean);
  const refreshToken = body.tokens?.refreshToken || (cookie ? decodeURIComponent(cookie) : undefined);
  if (!body.user?.id || !body.tokens?.accessToken || !refreshToken) {
    throw new Error(
      `SignUp answered no user, access token or refresh token (body or portico_refresh cookie): ${text.slice(0, 300)}`,
    );
  }
  return {
    email,
    password,
    userId: body.user.id,
    tier: body.user.tier ?? "",
    roles: body.user.roles ?? [],
    accessToken: body.tokens.accessToken,
    refreshToken,
  };
}

/** A unary Connect JSON call over h2c (internal services speak HTTP/2 only). */
export async function connectJson<T>(
  origin: string,
  path: string,
  message: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const session = await connect(origin);
  try {
    const body = Buffer.from(JSON.stringify(message));
    const outcome = await callOnce(session, {
      origin,
      path,
      protocol: "connect",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
    if (!outcome.ok) throw new Error(`${path}: ${outcome.problem}`);
    return JSON.parse(outcome.body.toString("utf8")) as T;
  } finally {
    session.close();
  }
}

/**
 * `count` distinct access tokens of the user, from chains of Refresh calls straight to the auth
 * service (each Refresh answers a new access token and spends the refresh token). The chains
 * start from fresh Logins so that they are independent sessions.
 */
export async function mintAccessTokens(authOrigin: string, user: BenchUser, count: number, chains = 4): Promise<string[]> {
  const tokens = new Set<string>();
  const session = await connect(authOrigin);
  const call = async (path: string, message: unknown) => {
    const body = Buffer.from(JSON.stringify(message));
    const outcome = await callOnce(session, {
      origin: authOrigin,
      path,
      protocol: "connect",
      headers: { "content-type": "application/json" },
      body,
    });
    if (!outcome.ok) throw new Error(`${path}: ${outcome.problem}`);
    return JSON.parse(outcome.body.toString("utf8")) as AccountJson;
  };
  try {
    const chain = async () => {
      const login = await call("/portico.auth.v1.AuthService/Login", { email: user.email, password: user.password });
      let refresh = login.tokens?.refreshToken ?? "";
      while (tokens.size < count) {
        const next = await call("/portico.auth.v1.AuthService/Refresh", { refreshToken: refresh });
        if (!next.tokens?.accessToken || !next.tokens.refreshToken) throw new Error("Refresh answered no tokens");
        tokens.add(next.tokens.accessToken);
        refresh = next.tokens.refreshToken;
      }
    };
    await Promise.all(Array.from({ length: chains }, chain));
  } finally {
    session.close();
  }
  return [...tokens].slice(0, count);
}
