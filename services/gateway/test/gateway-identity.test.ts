import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

const part = (jwt: string, i: number) => JSON.parse(Buffer.from(jwt.split(".")[i] as string, "base64url").toString());

// A stand-in greeter that records the headers the gateway sends it and answers an empty Greet.
let seen: http2.IncomingHttpHeaders[] = [];
const upstream = http2.createServer((req, res) => {
  seen.push(req.headers);
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  });
});
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform("gateway_identity", { trustedProxies: ["127.0.0.1"] });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
});
afterAll(async () => {
  await platform?.close();
  upstream.close();
});

describe("the gateway's identity assertions", () => {
  it("are addressed to the target service, carry the client address it decided, live ≤ 60 s and are reused, not signed per call", async () => {
    const { port } = upstream.address() as AddressInfo;
    const gateway = await platform.startGateway({
      trustedProxies: ["127.0.0.1"],
      upstreams: { "portico.greeter.v1.GreeterService": { targets: [`http://127.0.0.1:${port}`], protocol: "connect" } },
    });
    const { token, userId } = await platform.signUp("ada");
    seen = [];
    for (let i = 0; i < 3; i++) {
      const res = await platform.raw({
        url: gateway.url,
        path: "/portico.greeter.v1.GreeterService/Greet",
        headers: {
          "content-type": "application/json",
          ...bearer(token),
          "x-forwarded-for": "198.51.100.23",
          "x-portico-service": "forged",
        },
        body: '{"name":"Ada"}',
      });
      expect(res.status).toBe(200);
    }
    expect(seen).toHaveLength(3);
    const assertions = seen.map((h) => h["x-portico-identity"] as string);
    expect(new Set(assertions).size).toBe(1);
    const claims = part(assertions[0] as string, 1);
    expect(part(assertions[0] as string, 0)).toMatchObject({ alg: "EdDSA", typ: "portico-user+jwt" });
    expect(claims).toMatchObject({ iss: "gateway", aud: "greeter", sub: userId, cip: "198.51.100.23" });
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(60);
    // Neither the access token nor a client's claim to be a service reaches the backend.
    expect(seen[0]?.authorization).toBeUndefined();
    expect(seen[0]?.["x-portico-service"]).toBeUndefined();
  });

  it("serves the trust bundle (public keys only) on the admin port", async () => {
    const res = await fetch(`${platform.gateway.adminUrl}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.map((k) => String(k.kid).split(".")[0]).sort()).toEqual(["auth", "gateway", "greeter", "lang"]);
    expect(keys.every((k) => !("d" in k))).toBe(true);
  });
});
