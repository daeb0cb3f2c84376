import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GatewayService } from "@portico/gen/portico/gateway/v1/gateway_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../src/start-gateway.js";
import { createTestCertificate } from "./test-certificate.js";
import { startGrpcUpstream } from "./test-grpc-upstream.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
let gateway: Gateway;
let dir: string;
let cert: string;
let key: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "portico-tls-"));
  ({ cert, key } = await createTestCertificate(dir));
  platform = await startTestPlatform("gateway_tls");
  gateway = await platform.startGateway({ tls: { cert, key } });
});
afterAll(async () => {
  await platform?.close();
  rmSync(dir, { recursive: true, force: true });
});

const alpn = (protocols: string[]) =>
  new Promise<string | false>((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: gateway.port, ca: cert, ALPNProtocols: protocols }, () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.on("error", reject);
  });

describe("TLS on the public port", () => {
  it("negotiates h2 or http/1.1 with ALPN", async () => {
    expect(gateway.url).toMatch(/^https:/);
    expect(await alpn(["h2", "http/1.1"])).toBe("h2");
    expect(await alpn(["http/1.1"])).toBe("http/1.1");
  });

  it("serves Connect over HTTP/1.1 and HTTP/2 and gRPC over TLS", async () => {
    const { token } = await platform.signUp("tls");
    for (const transport of [
      createConnectTransport({ baseUrl: gateway.url, httpVersion: "2", nodeOptions: { ca: cert } }),
      createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1", nodeOptions: { ca: cert } }),
      createGrpcTransport({ baseUrl: gateway.url, nodeOptions: { ca: cert } }),
    ]) {
      const res = await createClient(GreeterService, transport).greet({ name: "TLS" }, { headers: bearer(token) });
      expect(res.greeting).toBe("Hello, TLS!");
    }
  });
});

describe("TLS to upstreams", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  /** A plaintext gateway whose GreeterService is at `target`, and a Connect client of it. */
  async function gatewayTo(target: string, protocol: "connect" | "grpc", upstreamCa: string | undefined) {
    const plain = await platform.startGateway({
      upstreams: { "portico.greeter.v1.GreeterService": { targets: [target], protocol } },
      upstreamCa,
    });
    // Closed before the upstreams it is connected to.
    cleanup.push(() => plain.close());
    const greeter = createClient(GreeterService, createConnectTransport({ baseUrl: plain.url, httpVersion: "2" }));
    /** Why the gateway last found the greeter's address failing (GetUpstreamHealth). */
    const lastError = async () => {
      const admin = createClient(GatewayService, createConnectTransport({ baseUrl: plain.adminUrl, httpVersion: "1.1" }));
      const health = await admin.getUpstreamHealth({}, { headers: bearer(await platform.adminToken()) });
      const entry = health.upstreams.find((u) => u.service === "portico.greeter.v1.GreeterService")?.targets[0];
      expect(entry?.address).toBe(target);
      return entry?.lastError;
    };
    return { greeter, lastError };
  }

  /** A gRPC-only GreeterService over TLS with the test certificate. */
  async function tlsUpstream() {
    const upstream = await startGrpcUpstream(0, { cert, key });
    cleanup.push(() => upstream.close());
    expect(upstream.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
    return upstream;
  }

  it("calls an https:// upstream over HTTP/2 with TLS, its certificate checked against the configured CA", async () => {
    const { token } = await platform.signUp("tls-upstream");
    const upstream = await tlsUpstream();
    const { greeter } = await gatewayTo(upstream.url, "grpc", cert);
    const res = await greeter.greet({ name: "over TLS" }, { headers: bearer(token) });
    expect(res.greeting).toContain("Hello, over TLS!");
    expect(upstream.calls.get("Greet")).toBe(1);
    // The identity the gateway asserted reached the upstream through the TLS connection.
    expect(upstream.seen.get("Greet")?.get("x-portico-identity")).toHaveLength(1);
  });

  it("answers unavailable when a TLS upstream does not agree to h2 in ALPN", async () => {
    const { token } = await platform.signUp("tls-http1");
    // A TLS server that negotiates no application protocol (an HTTP/1.1-only server would refuse the handshake).
    const http1 = tls.createServer({ cert, key }, (socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await new Promise<void>((r) => http1.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise((r) => http1.close(() => r())));
    const { greeter, lastError } = await gatewayTo(`https://127.0.0.1:${(http1.address() as AddressInfo).port}`, "connect", cert);
    await expect(greeter.greet({ name: "x" }, { headers: bearer(token) })).rejects.toMatchObject({ code: Code.Unavailable });
    expect(await lastError()).toMatch(/did not agree to HTTP\/2/);
  });

  it("refuses an upstream whose certificate it cannot verify: unavailable, and the reason in upstream health", async () => {
    const { token } = await platform.signUp("tls-untrusted");
    const upstream = await tlsUpstream();
    // No CA configured: Node's bundled roots do not know the test certificate.
    const { greeter, lastError } = await gatewayTo(upstream.url, "grpc", undefined);
    await expect(greeter.greet({ name: "x" }, { headers: bearer(token) })).rejects.toMatchObject({ code: Code.Unavailable });
    expect(upstream.calls.get("Greet")).toBeUndefined();
    expect(await lastError()).toMatch(/certificate/i);
  });
});

// A browser speaks HTTP/2 only over TLS: this is where the gateway's HTTP/2 engine meets Chromium's
// (its SETTINGS, PRIORITY, HPACK and flow control). CI requires the browser (PORTICO_REQUIRE_BROWSER=1).
const chromiumPath = process.env.PORTICO_CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(chromiumPath) && process.env.PORTICO_REQUIRE_BROWSER === "1") {
  throw new Error(`PORTICO_REQUIRE_BROWSER=1 but there is no Chromium at ${chromiumPath}`);
}

describe.skipIf(!existsSync(chromiumPath))("a browser over TLS", () => {
  it("calls unary and server-streaming methods over HTTP/2 with Connect", { timeout: 60_000 }, async () => {
    const { token } = await platform.signUp("browser-h2");
    const context = await chromium.launchPersistentContext(mkdtempSync(join(dir, "profile-")), {
      executablePath: chromiumPath,
      headless: true,
      ignoreHTTPSErrors: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      // Any page of the gateway's origin, so the calls are same-origin.
      await page.goto(`${gateway.url}/not-a-page`);
      const result = await page.evaluate(async (token) => {
        const headers = { authorization: `Bearer ${token}` };
        const unary = await fetch("/portico.greeter.v1.GreeterService/Greet", {
          method: "POST",
          headers: { ...headers, "content-type": "application/json", "connect-protocol-version": "1" },
          body: JSON.stringify({ name: "Chromium" }),
        });
        const { greeting } = (await unary.json()) as { greeting: string };
        const request = new TextEncoder().encode(JSON.stringify({ name: "stream", count: 3 }));
        const envelope = new Uint8Array(5 + request.length);
        new DataView(envelope.buffer).setUint32(1, request.length);
        envelope.set(request, 5);
        const stream = await fetch("/portico.greeter.v1.GreeterService/GreetStream", {
          method: "POST",
          headers: { ...headers, "content-type": "application/connect+json", "connect-protocol-version": "1" },
          body: envelope,
        });
        const body = new Uint8Array(await stream.arrayBuffer());
        const messages: unknown[] = [];
        let end: unknown;
        for (let at = 0; at + 5 <= body.length; ) {
          const length = new DataView(body.buffer, at + 1, 4).getUint32(0);
          const json = JSON.parse(new TextDecoder().decode(body.subarray(at + 5, at + 5 + length)));
          if ((body[at] as number) & 0x02) end = json;
          else messages.push(json);
          at += 5 + length;
        }
        const protocols = performance
          .getEntriesByType("resource")
          .map((entry) => (entry as unknown as { nextHopProtocol: string }).nextHopProtocol);
        return { status: unary.status, greeting, messages: messages.length, end, protocols };
      }, token);
      expect(result.status).toBe(200);
      expect(result.greeting).toBe("Hello, Chromium!");
      expect(result.messages).toBe(3);
      expect(result.end).toEqual({});
      // The two calls (and anything else the page fetched, such as a favicon) went over HTTP/2.
      expect(result.protocols.length).toBeGreaterThanOrEqual(2);
      expect(new Set(result.protocols)).toEqual(new Set(["h2"]));
    } finally {
      await context.close();
    }
  });
});
