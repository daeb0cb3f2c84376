/** The web app's refresh token travels in this httpOnly cookie, scoped to the auth service's paths. */
export const REFRESH_COOKIE = "portico_refresh";
const COOKIE_PATH = "/portico.auth.v1.AuthService";

/** The refresh token in a `cookie` request header, if any. */
export function readRefreshCookie(cookieHeader: string | null): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== REFRESH_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return value === "" ? undefined : value;
  }
  return undefined;
}

/** `Set-Cookie` value that stores `token` for `maxAgeSeconds`; Secure when the client came over HTTPS. */
export function refreshCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${REFRESH_COOKIE}=${token}; Path=${COOKIE_PATH}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** `Set-Cookie` value that removes the cookie. */
export function clearedRefreshCookie(secure: boolean): string {
  return `${REFRESH_COOKIE}=; Path=${COOKIE_PATH}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** Whether the original client used HTTPS, as the gateway reports in `x-forwarded-proto`. */
export function cameOverHttps(headers: Headers): boolean {
  return (headers.get("x-forwarded-proto") ?? "").split(",")[0]?.trim().toLowerCase() === "https";
}

/**
 * Whether the caller is a browser: browsers send `Origin` with every POST, and a page's scripts
 * can neither forge nor drop it (non-browser clients such as curl, Node's fetch or connect-node
 * send none). Browsers get the refresh token only in the httpOnly cookie, so script injected into
 * a page cannot read it from a response body.
 */
export function isBrowserRequest(headers: Headers): boolean {
  return headers.has("origin");
}
