import { randomBytes } from "node:crypto";
import * as http2 from "node:http2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../src/start-gateway.js";
import { bearer, rawRequest, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;

beforeAll(async () => {
  // Trust 127.0.0.1 as a proxy, so each test can be its own client IP through x-forwarded-for.
  platform = await startTestPlatform("gateway_policy", { trustedProxies: ["127.0.0.1"] });
});
afterAll(async () => {
  await platform?.close();
});

let ipCounter = 0;
/** A client IP of its own for every test, so per-IP buckets do not leak between tests. */
const freshIp = () => `198.51.100.${++ipCounter}`;
const greetPath = "/portico.greeter.v1.GreeterService/Greet";

describe("gateway policy from the .proto", () => {
  it("checks permissions against the caller's roles", async () => {
    const user = await platform.signUp("perm");
    const greeter = platform.greeterClient();
    const denied = greeter.purgeGreetings({}, { headers: bearer(user.token) });
    await expect(denied).rejects.toMatchObject({ code: Code.PermissionDenied });

    await platform.db("auth").query("update users set roles = $2::text[] where id = $1", [user.userId, ["greeter.admin"]]);
    const email = (
      (await platform.db("auth").query("select email from users where id = $1", [user.userId])) as { rows: { email: string }[] }
    ).rows[0]?.email as string;
    const login = await platform.authClient.login({ email, password: "correct horse battery staple" });
    const res = await greeter.purgeGreetings({}, { headers: bearer(login.tokens?.accessToken ?? "") });
    expect(res.deleted).toBeGreaterThanOrEqual(0n);
  });

  it("refuses a token within a second after Logout (revocation stream)", async () => {
    const user = await platform.signUp("logout");
    const greeter = platform.greeterClient();
    await greeter.greet({ name: "before" }, { headers: bearer(user.token) });
    await platform.authClient.logout({}, { headers: bearer(user.token) });
    const deadline = Date.now() + 1000;
    let code: Code | undefined;
    while (Date.now() < deadline) {
      code = await greeter.greet({ name: "after" }, { headers: bearer(user.token) }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e).code,
      );
      if (code !== undefined) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(code).toBe(Code.Unauthenticated);
  });

  it("rejects a message over max_request_bytes from its length prefix, also one declaring 2 GiB", async () => {
    const user = await platform.signUp("size");
    // Connect unary: Greet allows 4 KiB.
    const big = await platform.raw({
      path: greetPath,
      headers: { "content-type": "application/json", ...bearer(user.token) },
      body: JSON.stringify({ name: "x".repeat(5000) }),
    });
    expect(big.status).toBe(429);
    expect(JSON.parse(big.body.toString())).toMatchObject({ code: "resource_exhausted" });

    // gRPC: an envelope declaring 2 GiB, followed by a little data and no end of stream. The answer
    // comes anyway, so the gateway decided from the prefix without waiting for (or buffering) the body.
    const huge = await new Promise<{ status?: string }>((resolve, reject) => {
      const session = http2.connect(platform.gateway.url);
      session.on("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": greetPath,
        "content-type": "application/grpc",
        te: "trailers",
        ...bearer(user.token),
      });
      stream.on("response", (h) => {
        resolve({ status: h["grpc-status"] as string | undefined });
        session.destroy();
      });
      stream.on("error", () => {});
      const prefix = Buffer.from([0, 0x80, 0, 0, 0]);
      stream.write(Buffer.concat([prefix, randomBytes(1024)]));
    });
    expect(huge.status).toBe(String(Code.ResourceExhausted));

    // The same user keeps working.
    const ok = await platform.greeterClient().greet({ name: "small" }, { headers: bearer(user.token) });
    expect(ok.greeting).toBe("Hello, small!");
  });

  it("applies the deadline the caller asked for", async () => {
    const user = await platform.signUp("deadline");
    const got: number[] = [];
    const call = (async () => {
      for await (const m of platform
        .greeterClient()
        .greetStream({ name: "slow", count: 5, intervalMs: 400 }, { headers: bearer(user.token), timeoutMs: 600 })) {
        got.push(m.index);
      }
    })();
    await expect(call).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(got.length).toBeLessThan(5);
  });
});

describe("rate limits", () => {
  it("limits SignUp per IP (20/m) with resource_exhausted, RetryInfo and retry-after", async () => {
    const ip = freshIp();
    const signUp = (i: number) =>
      platform.raw({
        path: "/portico.auth.v1.AuthService/SignUp",
        headers: { "content-type": "application/json", "x-forwarded-for": ip },
        body: JSON.stringify({ email: `rl-${i}-${randomBytes(3).toString("hex")}@example.com`, password: "x" }),
      });
    // The auth service refuses the weak password, but every call still spends a token at the gateway.
    for (let i = 0; i < 20; i++) expect((await signUp(i)).status).not.toBe(429);
    const limited = await signUp(20);
    expect(limited.status).toBe(429);
    const error = JSON.parse(limited.body.toString());
    expect(error.code).toBe("resource_exhausted");
    expect(error.details[0].type).toBe("google.rpc.RetryInfo");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // Another client IP is not affected.
    const other = await platform.raw({
      path: "/portico.auth.v1.AuthService/SignUp",
      headers: { "content-type": "application/json", "x-forwarded-for": freshIp() },
      body: "{}",
    });
    expect(other.status).not.toBe(429);
  });

  it("shares the buckets of two gateways through Redis, and fails open or closed as configured", async () => {
    const prefix = `portico-test:${randomBytes(4).toString("hex")}:`;
    const start = (extra: { redisUrl: string; rateLimitFailure?: "open" | "closed" }): Promise<Gateway> =>
      platform.startGateway({ rateLimitKeyPrefix: prefix, ...extra });
    const a = await start({ redisUrl: "redis://127.0.0.1:6379" });
    const b = await start({ redisUrl: "redis://127.0.0.1:6379" });
    const open = await start({ redisUrl: "redis://127.0.0.1:1", rateLimitFailure: "open" });
    const closed = await start({ redisUrl: "redis://127.0.0.1:1", rateLimitFailure: "closed" });
    try {
      const ip = freshIp();
      const call = (gateway: Gateway) =>
        rawRequest(gateway.url, {
          path: "/portico.auth.v1.AuthService/SignUp",
          headers: { "content-type": "application/json", "x-forwarded-for": ip },
          body: "{}",
        });
      const statuses: number[] = [];
      const started = Date.now();
      for (let i = 0; i < 26; i++) statuses.push((await call(i % 2 === 0 ? a : b)).status);
      // 20 per minute in total, whichever replica the calls reach (plus one token per 3 s that passed).
      const allowed = statuses.filter((s) => s !== 429).length;
      expect(allowed).toBeGreaterThanOrEqual(20);
      expect(allowed).toBeLessThanOrEqual(20 + Math.floor((Date.now() - started) / 3000));
      expect(statuses.slice(-2)).toEqual([429, 429]);

      expect((await call(open)).status).not.toBe(429);
      const refused = await call(closed);
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body.toString()).code).toBe("unavailable");
    } finally {
      await Promise.all([a.close(), b.close(), open.close(), closed.close()]);
    }
  });

  it("does not rate-limit methods without a rate in their policy", async () => {
    const user = await platform.signUp("norate");
    const greeter = createClient(GreeterService, createConnectTransport({ baseUrl: platform.gateway.url, httpVersion: "2" }));
    for (let i = 0; i < 30; i++) await greeter.listGreetings({}, { headers: bearer(user.token) });
  });
});
