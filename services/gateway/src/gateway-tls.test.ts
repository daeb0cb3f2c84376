import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { createLogger } from "@portico/kit";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "./start-gateway.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
let gateway: Gateway;
let dir: string;
let cert: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "portico-tls-"));
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
  ]);
  cert = readFileSync(join(dir, "cert.pem"), "utf8");
  platform = await startTestPlatform("gateway_tls");
  gateway = await startGateway({
    port: 0,
    adminPort: 0,
    host: "127.0.0.1",
    identitySecret: platform.secret,
    logger: createLogger({ service: "gateway", level: "silent" }),
    shutdownGraceMs: 500,
    upstreams: platform.config.upstreams,
    tls: { cert, key: readFileSync(join(dir, "key.pem"), "utf8") },
  });
});
afterAll(async () => {
  await gateway?.close();
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
