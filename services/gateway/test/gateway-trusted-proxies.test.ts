import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessLogOn } from "../src/access-log.js";
import { startTestPlatform, type TestPlatform } from "./test-platform.js";

// The gateway listens on 127.0.0.1 and trusts 127.0.0.0/30 (127.0.0.0 to 127.0.0.3) as proxies.
// A client connecting from 127.0.0.1 is inside that range; one connecting from 127.0.0.9 (also
// loopback, Linux routes all of 127/8 there) is not.
const insidePeer = "127.0.0.1";
const outsidePeer = "127.0.0.9";
const signUpPath = "/portico.auth.v1.AuthService/SignUp"; // per_ip: "20/m"

const accessLines: { method?: string; ip?: string; code?: string }[] = [];
const accessLog = accessLogOn(pino({ level: "info" }, { write: (line: string) => accessLines.push(JSON.parse(line)) }));

let platform: TestPlatform;
let port = 0;

beforeAll(async () => {
  platform = await startTestPlatform(
    "gateway_trusted_cidr",
    { trustedProxies: ["127.0.0.0/30"], accessLog },
    // The auth service refuses an address after 3 failed logins.
    { loginLimits: { ipFailures: 3 } },
  );
  port = platform.gateway.port;
});
afterAll(async () => {
  await platform?.close();
});

interface Answer {
  status: number;
  /** The client IP the gateway's access log recorded for the call. */
  ip: string | undefined;
}

/** The client IP of the first SignUp the access log recorded after line `before` (written when the call ends). */
async function loggedIp(before: number): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const line = accessLines.slice(before).find((l) => l.method === signUpPath);
    if (line) return line.ip;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** One SignUp call over HTTP/2 from `localAddress`, with the given x-forwarded-for. */
function signUpH2(localAddress: string, forwardedFor: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ host: "127.0.0.1", port, localAddress }),
    });
    session.on("error", reject);
    const before = accessLines.length;
    const stream = session.request({
      ":method": "POST",
      ":path": signUpPath,
      "content-type": "application/json",
      "x-forwarded-for": forwardedFor,
    });
    let status = 0;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("error", reject);
    stream.resume();
    stream.on("close", () => {
      session.close();
      loggedIp(before).then((ip) => resolve({ status, ip }), reject);
    });
    stream.end(JSON.stringify({ email: `xff-${randomBytes(4).toString("hex")}@example.com`, password: "x" }));
  });
}

/** The same call over HTTP/1.1. */
function signUpH1(localAddress: string, forwardedFor: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const before = accessLines.length;
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        localAddress,
        method: "POST",
        path: signUpPath,
        agent: false,
        headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor },
      },
      (res) => {
        res.resume();
        res.on("end", () => loggedIp(before).then((ip) => resolve({ status: res.statusCode ?? 0, ip }), reject));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify({ email: `xff-${randomBytes(4).toString("hex")}@example.com`, password: "x" }));
  });
}

/** A failed Login over HTTP/2 from the trusted proxy: the Connect error code and message. */
function failedLogin(headers: http2.OutgoingHttpHeaders): Promise<{ code: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ host: "127.0.0.1", port, localAddress: insidePeer }),
    });
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": "/portico.auth.v1.AuthService/Login",
      "content-type": "application/json",
      ...headers,
    });
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve(JSON.parse(Buffer.concat(chunks).toString() || "{}"));
    });
    stream.end(JSON.stringify({ email: `nobody-${randomBytes(4).toString("hex")}@example.com`, password: "wrong password" }));
  });
}

// Other loopback addresses than 127.0.0.1 need an alias on macOS: the test runs where they exist.
describe.skipIf(process.platform !== "linux")("trusted proxies as CIDR ranges", () => {
  it("takes the client IP from x-forwarded-for only when the peer is inside a trusted range (HTTP/2 and HTTP/1.1)", async () => {
    for (const [name, call] of [
      ["HTTP/2", signUpH2],
      ["HTTP/1.1", signUpH1],
    ] as const) {
      // Inside: the right-most hop that is not a trusted proxy (127.0.0.2 is one) is the client.
      const inside = await call(insidePeer, "192.0.2.66, 198.51.100.10, 127.0.0.2");
      expect(inside.status, name).not.toBe(429);
      expect(inside.ip, name).toBe("198.51.100.10");
      // Outside: the caller's x-forwarded-for is not believed, the peer is the client.
      const outside = await call(outsidePeer, "198.51.100.10");
      expect(outside.ip, name).toBe(outsidePeer);
      // Every hop trusted: the left-most one.
      const allTrusted = await call(insidePeer, "127.0.0.3, 127.0.0.2");
      expect(allTrusted.ip, name).toBe("127.0.0.3");
    }
  });

  it("applies the per-IP rate limit to the forwarded client behind a trusted proxy, and to the peer otherwise", async () => {
    // A peer of its own, so the other tests' calls are not in its bucket.
    const otherOutsidePeer = "127.0.0.10";
    // Behind the trusted proxy: 20 SignUps a minute for 198.51.100.20, whatever proxies it came through.
    for (let i = 0; i < 20; i++) {
      const res = await signUpH2(insidePeer, i % 2 === 0 ? "198.51.100.20" : "198.51.100.20, 127.0.0.2");
      expect(res.status, `call ${i}`).not.toBe(429);
    }
    expect((await signUpH2(insidePeer, "198.51.100.20")).status).toBe(429);
    expect((await signUpH1(insidePeer, "198.51.100.20, 127.0.0.3")).status).toBe(429);
    // Another client behind the same proxy has its own bucket.
    expect((await signUpH2(insidePeer, "198.51.100.21")).status).not.toBe(429);

    // From outside the trusted range, claiming to be the limited client changes nothing ...
    expect((await signUpH2(otherOutsidePeer, "198.51.100.20")).status).not.toBe(429);
    // ... and claiming to be someone new each time does not escape the peer's own bucket.
    for (let i = 1; i < 20; i++) {
      const res = await signUpH2(otherOutsidePeer, `203.0.113.${i}`);
      expect(res.status, `call ${i}`).not.toBe(429);
    }
    const limited = await signUpH2(otherOutsidePeer, "203.0.113.200");
    expect(limited.status).toBe(429);
    expect(limited.ip).toBe(otherOutsidePeer);
  });

  it("hands the client address it decided to the auth service: a client behind a trusted proxy cannot choose the IP auth's login limits see", async () => {
    // The trusted proxy appended the real client (198.51.100.40); everything left of it is the client's own.
    for (let i = 0; i < 3; i++) {
      const res = await failedLogin({
        "x-forwarded-for": `10.9.${i}.1, 198.51.100.40`,
        "x-portico-client-address": `10.8.${i}.1`,
        "X-Portico-Client-Address": `10.7.${i}.1`,
      });
      expect(res.code, `login ${i}`).toBe("unauthenticated");
    }
    const limited = await failedLogin({ "x-forwarded-for": "10.9.99.1, 198.51.100.40", "x-portico-client-address": "10.8.99.1" });
    expect(limited.code).toBe("resource_exhausted");
    expect(limited.message).not.toContain("per IP"); // the auth service's limit, not the gateway's
    // Another client behind the same proxy is not limited.
    expect((await failedLogin({ "x-forwarded-for": "10.9.0.1, 198.51.100.41" })).code).toBe("unauthenticated");
  });

  it("applies reloaded trusted proxies to new calls, and refuses a bad entry keeping the running ones", async () => {
    expect(() => platform.gateway.reload({ ...platform.gatewayOptions, trustedProxies: ["127.0.0.0/33"] })).toThrow(
      /trustedProxies\[0\]: "127\.0\.0\.0\/33" is not valid/,
    );
    expect((await signUpH2(insidePeer, "198.51.100.30")).ip).toBe("198.51.100.30");
    try {
      platform.gateway.reload({ ...platform.gatewayOptions, trustedProxies: ["10.0.0.0/8", "::1"] });
      expect((await signUpH2(insidePeer, "198.51.100.31")).ip).toBe(insidePeer);
      platform.gateway.reload({ ...platform.gatewayOptions, trustedProxies: ["127.0.0.8/29"] });
      expect((await signUpH2(outsidePeer, "198.51.100.32")).ip).toBe("198.51.100.32");
      expect((await signUpH1(insidePeer, "198.51.100.33")).ip).toBe(insidePeer);
    } finally {
      platform.gateway.reload(platform.gatewayOptions);
    }
  });
});
