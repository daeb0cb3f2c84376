// Upstream discovery by DNS: a real DNS server on loopback (dns2) whose records the test changes
// while a client keeps calling through the gateway; the addresses are loopback IPs (127.0.0.x)
// that share one port, as the pods behind a headless Kubernetes Service do.
import * as http2 from "node:http2";
import { createServer, type DnsServer, Packet } from "dns2";
import { afterEach, describe, expect, it } from "vitest";
import { createHostResolver } from "../src/dns-discovery.js";
import type { Gateway } from "../src/start-gateway.js";
import { freePort, startLoneGateway } from "./test-platform.js";

const closers: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A DNS server on 127.0.0.1 answering A queries from `records` (name → IPv4 addresses), as they are now. */
async function startDns(records: Map<string, string[]>): Promise<{ server: string; queries: () => number }> {
  let queries = 0;
  const dns: DnsServer = createServer({
    udp: true,
    handle: (request, send) => {
      queries++;
      const response = Packet.createResponseFromRequest(request);
      const question = request.questions[0];
      const known = question === undefined ? undefined : records.get(question.name.toLowerCase());
      if (question !== undefined && question.type === Packet.TYPE.A) {
        for (const address of known ?? []) {
          response.answers.push(Packet.createResourceFromQuestion(question, { ttl: 1, address }));
        }
      }
      // NXDOMAIN (RFC 1035 §4.1.1; dns2 3.0.0, the last for node 20, has no Packet.RCODE in its types).
      if (known === undefined) response.header.rcode = 3;
      send(response);
    },
  });
  const addresses = await dns.listen({ udp: { port: 0, address: "127.0.0.1" } });
  closers.push(() => dns.close());
  return { server: `127.0.0.1:${addresses.udp?.port}`, queries: () => queries };
}

interface Backend {
  /** Calls answered (health checks not counted). */
  calls: number;
  /** Open HTTP/2 connections from the gateway. */
  connections: number;
  close(): Promise<void>;
}

const grpcEnvelope = (message: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);

/**
 * A gRPC backend on `host:port` that answers every call after `delayMs` and its health check
 * SERVING (or NOT_SERVING when `serving` is false).
 */
async function startBackend(host: string, port: number, serving = true, delayMs = 5): Promise<Backend> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const backend: Backend = {
    calls: 0,
    get connections() {
      return sessions.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    stream.resume();
    const health = headers[":path"] === "/grpc.health.v1.Health/Check";
    if (!health) backend.calls++;
    // HealthCheckResponse { status: SERVING (1) | NOT_SERVING (2) }; a call's answer is an empty message.
    const body = health ? Buffer.from([0x08, serving ? 1 : 2]) : Buffer.alloc(0);
    setTimeout(
      () => {
        if (stream.closed) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(grpcEnvelope(body));
      },
      health ? 0 : delayMs,
    );
  });
  await new Promise<void>((resolve) => server.listen(port, host, () => resolve()));
  closers.push(() => backend.close());
  return backend;
}

/** Clients calling ListLanguages (PUBLIC) through the gateway over gRPC, back to back, until stopped. */
function startLoad(gateway: Gateway, clients: number) {
  const session = http2.connect(gateway.url);
  session.on("error", () => {});
  const failures: string[] = [];
  let ok = 0;
  let stopped = false;
  const call = () =>
    new Promise<void>((resolve) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/portico.lang.v1.LanguageService/ListLanguages",
        "content-type": "application/grpc",
        te: "trailers",
      });
      let status: string | undefined;
      let message = "";
      stream.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
        message = String(h["grpc-message"] ?? "");
      });
      stream.on("trailers", (t) => {
        status = String(t["grpc-status"]);
        message = String(t["grpc-message"] ?? "");
      });
      stream.resume();
      stream.on("close", () => {
        if (status === "0") ok++;
        else failures.push(`grpc-status ${status}: ${decodeURIComponent(message)}`);
        resolve();
      });
      stream.end(grpcEnvelope(Buffer.alloc(0)));
    });
  const loops = Array.from({ length: clients }, async () => {
    while (!stopped) await call();
  });
  return {
    failures,
    get ok() {
      return ok;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      session.close();
    },
  };
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("upstream discovery by DNS", () => {
  it("the resolver asks the configured DNS server for every A record, and answers none for an unknown name", async () => {
    const dns = await startDns(new Map([["svc.test", ["127.0.0.2", "127.0.0.3"]]]));
    const resolve = createHostResolver([dns.server]);
    expect((await resolve("svc.test")).sort()).toEqual(["127.0.0.2", "127.0.0.3"]);
    expect(await resolve("gone.test")).toEqual([]);
  });

  it("follows records added and removed under load with no failed call; an address takes calls only after a passing health check", async () => {
    const port = await freePort();
    const first = await startBackend("127.0.0.2", port);
    const second = await startBackend("127.0.0.3", port);
    // Listening, but its health check says NOT_SERVING: it must never get a call.
    const notServing = await startBackend("127.0.0.4", port, false);
    // 127.0.0.5: nothing listens there (a pod that is gone, a stale record).
    const records = new Map([["lang.portico.test", ["127.0.0.2", "127.0.0.4", "127.0.0.5"]]]);
    const dns = await startDns(records);

    const gateway = await startLoneGateway({
      upstreams: { "portico.lang.v1.LanguageService": { targets: [`http://lang.portico.test:${port}`], protocol: "grpc" } },
      dns: { servers: [dns.server], refreshMs: 100 },
      healthCheckIntervalMs: 200,
    });
    closers.push(() => gateway.close());
    const metrics = async () => (await fetch(`${gateway.adminUrl}/metrics`)).text();
    const listed = (text: string, ip: string) => text.includes(`address="http://${ip}:${port}"`);

    const load = startLoad(gateway, 4);
    closers.push(() => load.stop());
    await until("calls on the first address", () => first.calls >= 50);

    // A new record joins: the address gets calls once its health check passes.
    records.set("lang.portico.test", ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    await until("calls on the added address", () => second.calls >= 50);

    // A record goes away while calls are in flight on it: they finish, no new call goes there, its connection closes.
    records.set("lang.portico.test", ["127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    await until("the removed address out of the gateway's list", async () => !listed(await metrics(), "127.0.0.2"));
    await until("the removed address's connection closed", () => first.connections === 0);
    const firstCalls = first.calls;
    const secondCalls = second.calls;
    await until("more calls on the remaining address", () => second.calls >= secondCalls + 50);
    expect(first.calls).toBe(firstCalls);

    await load.stop();
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThanOrEqual(150);
    expect(notServing.calls).toBe(0);
    const text = await metrics();
    expect(listed(text, "127.0.0.3")).toBe(true);
    expect(text).toContain(
      `portico_gateway_upstream_healthy{service="portico.lang.v1.LanguageService",address="http://127.0.0.4:${port}"} 0`,
    );
    expect(dns.queries()).toBeGreaterThan(3);
  });

  it("resolves again at once when a connection fails, long before the refresh period", async () => {
    const port = await freePort();
    const old = await startBackend("127.0.0.2", port);
    const replacement = await startBackend("127.0.0.3", port);
    const records = new Map([["moved.portico.test", ["127.0.0.2"]]]);
    const dns = await startDns(records);
    const gateway = await startLoneGateway({
      upstreams: { "portico.lang.v1.LanguageService": { targets: [`http://moved.portico.test:${port}`], protocol: "grpc" } },
      // No periodic resolution within the test: only a failure makes the gateway ask again.
      dns: { servers: [dns.server], refreshMs: 600_000 },
    });
    closers.push(() => gateway.close());
    const load = startLoad(gateway, 2);
    closers.push(() => load.stop());
    await until("calls on the old address", () => old.calls >= 20);
    const queries = dns.queries();
    // The pod moves: its record changes and the old process dies with its connections.
    records.set("moved.portico.test", ["127.0.0.3"]);
    await old.close();
    await until("calls on the new address", () => replacement.calls >= 20);
    expect(dns.queries()).toBeGreaterThan(queries);
    await load.stop();
  });

  it("a host name that does not resolve yet answers unavailable, then serves once DNS has the record", async () => {
    const port = await freePort();
    const backend = await startBackend("127.0.0.2", port);
    const records = new Map<string, string[]>();
    const dns = await startDns(records);
    const gateway = await startLoneGateway({
      upstreams: { "portico.lang.v1.LanguageService": { targets: [`http://late.portico.test:${port}`], protocol: "grpc" } },
      dns: { servers: [dns.server], refreshMs: 100 },
    });
    closers.push(() => gateway.close());
    const once = async () => {
      const load = startLoad(gateway, 1);
      await until("one call", () => load.ok + load.failures.length > 0);
      await load.stop();
      return load;
    };
    const before = await once();
    expect(before.failures[0]).toMatch(/^grpc-status 14: upstream unavailable: no address of portico.lang.v1.LanguageService/);
    records.set("late.portico.test", ["127.0.0.2"]);
    await until("a call served", async () => (await once()).ok > 0);
    expect(backend.calls).toBeGreaterThan(0);
  });
});
