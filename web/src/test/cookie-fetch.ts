/**
 * A fetch with a cookie jar, standing in for the browser's in Node-hosted component tests:
 * it keeps what `Set-Cookie` says (name, value, Path, Max-Age/Expires) and sends back the cookies
 * whose path matches, which is all the refresh-cookie contract needs. One jar is one browser.
 */
export interface CookieFetch {
  readonly fetch: typeof globalThis.fetch;
  /** The cookies the jar holds now, by name (for assertions). */
  cookies(): Record<string, { value: string; path: string; attributes: string }>;
}

interface Cookie {
  value: string;
  path: string;
  expires: number;
  attributes: string;
}

let browsers = 0;

/**
 * `clientIp` is sent as `x-forwarded-for` (the test gateway trusts 127.0.0.1 as a proxy), so each
 * simulated browser has its own address for per-IP rate limits, as real users do. By default each
 * jar gets its own address from TEST-NET-1 (192.0.2.0/24, reserved for documentation).
 */
export function createCookieFetch(options: { clientIp?: string } = {}): CookieFetch {
  const clientIp = options.clientIp ?? `192.0.2.${(browsers++ % 254) + 1}`;
  const jar = new Map<string, Cookie>();
  const live = () => {
    const now = Date.now();
    for (const [name, c] of jar) if (c.expires <= now) jar.delete(name);
    return jar;
  };
  const fetchWithJar: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers);
    const cookie = [...live()]
      .filter(([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
    if (cookie) headers.set("cookie", cookie);
    headers.set("x-forwarded-for", clientIp);
    const res = await globalThis.fetch(input, { ...init, headers });
    for (const line of res.headers.getSetCookie()) store(line);
    return res;
  };
  function store(line: string) {
    const [pair = "", ...attrs] = line.split(";").map((s) => s.trim());
    const eq = pair.indexOf("=");
    if (eq <= 0) return;
    const name = pair.slice(0, eq);
    const cookie: Cookie = {
      value: pair.slice(eq + 1),
      path: "/",
      expires: Number.POSITIVE_INFINITY,
      attributes: attrs.join("; "),
    };
    for (const attr of attrs) {
      const [key = "", val = ""] = attr.split("=", 2).map((s) => s.trim());
      if (key.toLowerCase() === "path") cookie.path = val;
      else if (key.toLowerCase() === "max-age") cookie.expires = Date.now() + Number(val) * 1000;
      else if (key.toLowerCase() === "expires" && cookie.expires === Number.POSITIVE_INFINITY) cookie.expires = Date.parse(val);
    }
    if (cookie.expires <= Date.now()) jar.delete(name);
    else jar.set(name, cookie);
  }
  return {
    fetch: fetchWithJar,
    cookies: () =>
      Object.fromEntries([...live()].map(([name, c]) => [name, { value: c.value, path: c.path, attributes: c.attributes }])),
  };
}
