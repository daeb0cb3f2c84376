// The benchmark's nginx `auth_request` target: a small HTTP/1.1 server that verifies the caller's
// access token with jose against the auth service's JWKS on every call (no cache, as a
// ForwardAuth endpoint does) and answers the identity assertion for nginx to forward.
//
//   BENCH_AUTH_URL=http://127.0.0.1:<auth port> PORTICO_DATA_DIR=.data BENCH_VERIFIER_PORT=0 \
//     node --import tsx scripts/bench-auth-endpoint.ts
//
// It plays the gateway's part for nginx: the assertion is signed with the gateway's key (from the
// data dir's keys/), addressed to the greeter, and kept per token for 30 s, as the gateway does.
//
// Prints `listening <port>` once ready. 200 + x-portico-identity for a valid token, 401 otherwise.
import { createServer } from "node:http";
import * as http2 from "node:http2";
import { loadServiceIdentity, serviceUrls } from "@portico/kit";
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";

const authUrl = process.env.BENCH_AUTH_URL ?? (serviceUrls("auth")[0] as string);
// What the auth service pins (services/auth/src/access-tokens.ts): issuer, audience, RFC 9068 typ, ES256.
const verifyOptions = {
  issuer: process.env.AUTH_ISSUER || "portico-auth",
  audience: process.env.AUTH_AUDIENCE || "portico",
  typ: "at+jwt",
  algorithms: ["ES256"],
  requiredClaims: ["sub", "exp", "nbf", "iat", "sid"],
};
const signer = loadServiceIdentity("gateway", process.env.PORTICO_DATA_DIR ?? ".data", {}).signer;
const assertions = new Map<string, { assertion: string; until: number }>();

/** The auth service's /.well-known/jwks.json over h2c (it speaks HTTP/2 only). */
function fetchJwks(): Promise<JSONWebKeySet> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(authUrl);
    session.on("error", reject);
    const req = session.request({ ":method": "GET", ":path": "/.well-known/jwks.json" });
    let status = 0;
    let body = "";
    req.setEncoding("utf8");
    req.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("error", reject);
    req.on("end", () => {
      session.close();
      if (status !== 200) reject(new Error(`/.well-known/jwks.json answered HTTP ${status}: ${body.slice(0, 200)}`));
      else resolve(JSON.parse(body) as JSONWebKeySet);
    });
    req.end();
  });
}

let keys = createLocalJWKSet(await fetchJwks());
let lastRefresh = Date.now();

async function verify(token: string): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys, verifyOptions)).payload;
  } catch (error) {
    // A rotated key: fetch the JWKS again, at most every 10 s.
    if ((error as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY" || Date.now() - lastRefresh < 10_000) throw error;
    keys = createLocalJWKSet(await fetchJwks());
    lastRefresh = Date.now();
    return (await jwtVerify(token, keys, verifyOptions)).payload;
  }
}

const server = createServer((req, res) => {
  const header = req.headers.authorization ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : "";
  verify(token).then(
    (claims) => {
      const roles = claims.roles;
      const now = Date.now();
      let cached = assertions.get(token);
      if (cached === undefined || cached.until <= now) {
        const user = {
          userId: String(claims.sub ?? ""),
          tier: String(claims.tier ?? ""),
          roles: Array.isArray(roles) ? roles.map(String) : [],
          sessionId: String(claims.sid ?? ""),
          clientAddress: req.socket.remoteAddress ?? "",
        };
        cached = { assertion: signer.assertion(user, "greeter").token, until: now + 30_000 };
        if (assertions.size >= 10_000) assertions.clear();
        assertions.set(token, cached);
      }
      const { assertion } = cached;
      res.writeHead(200, { "x-portico-identity": assertion, "content-length": "0" });
      res.end();
    },
    () => {
      res.writeHead(401, { "content-length": "0" });
      res.end();
    },
  );
});
server.keepAliveTimeout = 120_000;
server.listen(Number(process.env.BENCH_VERIFIER_PORT ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening ${port}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
