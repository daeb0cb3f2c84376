import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { createLogger } from "@portico/kit";
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
