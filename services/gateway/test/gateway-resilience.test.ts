import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "@portico/gen/grpc/health/v1/health_pb.js";
import { GatewayService } from "@portico/gen/portico/gateway/v1/gateway_pb.js";
import { EchoStreamRequestSchema, GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../src/error-response.js";
import type { UpstreamConfig } from "../src/gateway-config.js";
import { connectH2 } from "../src/h2/index.js";
import type { Gateway, GatewayOptions } from "../src/start-gateway.js";
import { closeAll, engineServer } from "./h2/test-peers.js";
import { type GrpcUpstream, startGrpcUpstream } from "./test-grpc-upstream.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
let token = "";
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  platform = await startTestPlatform("gateway_resilience");
  ({ token } = await platform.signUp("resilience"));
});
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  await platform?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gateway whose GreeterService goes to `greeter` (over gRPC unless said otherwise). */
async function gatewayFor(greeter: UpstreamConfig, extra: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const gateway = await platform.startGateway({
    shutdownGraceMs: 2000,
    healthCheckIntervalMs: 200,
    ...extra,
    upstreams: { "portico.greeter.v1.GreeterService": greeter },
  });
  // Closed before the upstreams it is connected to (they wait for their connections to go).
  cleanup.push(() => gateway.close());
  return gateway;
}

async function grpcUpstream(port = 0): Promise<GrpcUpstream> {
  const upstream = await startGrpcUpstream(port);
  cleanup.push(() => upstream.close());
  return upstream;
}

const greeterVia = (gateway: Gateway, transport?: Transport) =>
  createClient(GreeterService, transport ?? createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }));

/** Listens on a free loopback port until the file's cleanup; its URL. */
async function listenForTest(server: http2.Http2Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An address that passes its health check but answers every call 503, as an overloaded proxy would. */
async function overloadedUpstream(): Promise<{ url: string; readonly refused: number }> {
  let refused = 0;
  const server = http2.createServer((req, res) => {
    if (req.url?.startsWith("/grpc.health.v1.Health/")) {
      res.writeHead(200, { "content-type": "application/grpc", "grpc-status": "12" });
      res.end();
      return;
    }
    refused++;
    res.writeHead(503, { "content-type": "text/plain" });
    res.end("overloaded");
  });
  return {
    url: await listenForTest(server),
    get refused() {
      return refused;
    },
  };
}

const notServing = toBinary(
  HealthCheckResponseSchema,
  create(HealthCheckResponseSchema, { status: HealthCheckResponse_ServingStatus.NOT_SERVING }),
);

/**
 * An address that serves every call (an empty message, grpc-status 0) but answers its health check
 * NOT_SERVING, as a replica too busy to answer its checks in time looks to the gateway.
 */
async function notServingUpstream(): Promise<{ url: string; readonly served: number }> {
  let served = 0;
  const server = http2.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const health = req.url?.startsWith("/grpc.health.v1.Health/") === true;
      if (!health) served++;
      res.writeHead(200, { "content-type": "application/grpc" });
      res.addTrailers({ "grpc-status": "0" });
      res.end(envelope(0, health ? notServing : new Uint8Array(0)));
    });
  });
  return {
    url: await listenForTest(server),
    get served() {
      return served;
    },
  };
}

/**
 * A port whose every connection is reset at once: a down address that stays ours for the test. (A
 * port closed after finding it free can be taken by a server of another test file running at the
 * same time, which then answers the gateway's calls: seen as `unimplemented` in CI.)
 */
async function deadPort(): Promise<number> {
  const server = net.createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

describe("upstreams with several addresses", () => {
  it("balances calls over every address", async () => {
    const a = await grpcUpstream();
    const b = await grpcUpstream();
    const gateway = await gatewayFor({ targets: [a.url, b.url], protocol: "grpc" });
    const greeter = greeterVia(gateway);
    await Promise.all(Array.from({ length: 20 }, (_, i) => greeter.greet({ name: `n${i}` }, { headers: bearer(token) })));
    expect(a.calls.get("Greet")).toBeGreaterThanOrEqual(5);
    expect(b.calls.get("Greet")).toBeGreaterThanOrEqual(5);
  });

  it("takes a dead address out of rotation (health checks) and retries idempotent calls before that", async () => {
    const live = await grpcUpstream();
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const gateway = await gatewayFor({ targets: [dead, live.url], protocol: "grpc" });
    const greeter = greeterVia(gateway);
    // Idempotent (NO_SIDE_EFFECTS) calls that land on the dead address are retried on the live one.
    for (let i = 0; i < 6; i++) {
      const res = await greeter.listGreetings({}, { headers: bearer(token) });
      expect(res.greetings[0]?.message).toBe("from grpc-js");
    }
    // Once the health checks noticed, even non-idempotent calls only go to the live address.
    await sleep(600);
    for (let i = 0; i < 6; i++) await greeter.greet({ name: "ok" }, { headers: bearer(token) });
    const health = await createClient(
      (await import("@portico/gen/portico/gateway/v1/gateway_pb.js")).GatewayService,
      createConnectTransport({ baseUrl: gateway.adminUrl, httpVersion: "1.1" }),
    ).getUpstreamHealth({}, { headers: bearer(await platform.adminToken()) });
    const targets = health.upstreams.find((u) => u.service === "portico.greeter.v1.GreeterService")?.targets ?? [];
    expect(targets.find((t) => t.address === dead)).toMatchObject({ healthy: false });
    expect(targets.find((t) => t.address === live.url)).toMatchObject({ healthy: true });
  });

  it("retries idempotent calls once on another address, translated or passed through, and no other calls", async () => {
    const flaky = await overloadedUpstream();
    const flakyUrl = flaky.url;
    const live = await grpcUpstream();
    // Health checks see both addresses healthy; only the retry saves the calls that land on the flaky one.
    const config = { targets: [flakyUrl, live.url], protocol: "grpc" as const };
    for (const transport of ["connect", "grpc"] as const) {
      const gateway = await gatewayFor(config, { healthCheckIntervalMs: 60_000 });
      const greeter = greeterVia(
        gateway,
        transport === "connect"
          ? createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" })
          : createGrpcTransport({ baseUrl: gateway.url }),
      );
      const before = flaky.refused;
      for (let i = 0; i < 4; i++) {
        const res = await greeter.listGreetings({}, { headers: bearer(token) });
        expect(res.greetings[0]?.message).toBe("from grpc-js");
      }
      expect(flaky.refused - before).toBeGreaterThanOrEqual(2);
      // Greet is not idempotent: a call that lands on the flaky address fails, and is not tried twice.
      const beforeGreet = flaky.refused;
      const outcomes: (string | Code)[] = [];
      for (let i = 0; i < 4; i++) {
        outcomes.push(
          await greeter.greet({ name: "once" }, { headers: bearer(token) }).then(
            () => "ok",
            (e: unknown) => ConnectError.from(e).code,
          ),
        );
      }
      expect(outcomes.filter((o) => o === Code.Unavailable)).toHaveLength(flaky.refused - beforeGreet);
      expect(outcomes).toContain("ok");
      expect(outcomes).toContain(Code.Unavailable);
    }
  });

  it("keeps a retry budget per upstream: one upstream that spent its own leaves another's retries intact", async () => {
    // GreeterService: both addresses overloaded, so every idempotent call spends a retry.
    const a = await overloadedUpstream();
    const b = await overloadedUpstream();
    // GatewayService (routed here like any service): one overloaded address and one that works.
    const c = await overloadedUpstream();
    const working = http2.createServer(
      connectNodeAdapter({
        routes: (router) =>
          router.service(GatewayService, {
            listRoutes: () => ({ routes: [{ path: "/from.the/Stub" }] }),
            getUpstreamHealth: () => ({}),
          }),
      }),
    );
    await new Promise<void>((r) => working.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise((r) => working.close(() => r())));
    const workingUrl = `http://127.0.0.1:${(working.address() as AddressInfo).port}`;
    const gateway = await platform.startGateway({
      healthCheckIntervalMs: 60_000,
      upstreams: {
        "portico.greeter.v1.GreeterService": { targets: [a.url, b.url], protocol: "grpc" },
        "portico.gateway.v1.GatewayService": { targets: [c.url, workingUrl], protocol: "connect" },
      },
    });
    cleanup.push(() => gateway.close());
    const greeter = greeterVia(gateway);
    const failed = async () => {
      const before = a.refused + b.refused;
      await expect(greeter.listGreetings({}, { headers: bearer(token) })).rejects.toMatchObject({ code: Code.Unavailable });
      return a.refused + b.refused - before;
    };
    // Retried (two attempts) while the greeter's budget lasts, then tried once.
    expect(await failed()).toBe(2);
    for (let i = 0; i < 12; i++) await failed();
    expect(await failed()).toBe(1);
    // GatewayService's calls that land on its overloaded address are still retried on the other one.
    const admin = createClient(GatewayService, createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }));
    const headers = bearer(await platform.adminToken());
    const before = c.refused;
    for (let i = 0; i < 4; i++) {
      const res = await admin.listRoutes({}, { headers });
      expect(res.routes[0]?.path).toBe("/from.the/Stub");
    }
    expect(c.refused - before).toBeGreaterThanOrEqual(1);
  });

  it("routes to every address when all of them fail their health checks (panic mode), as Envoy does", async () => {
    const a = await notServingUpstream();
    const b = await notServingUpstream();
    const gateway = await gatewayFor({ targets: [a.url, b.url], protocol: "grpc" });
    const admin = createClient(GatewayService, createConnectTransport({ baseUrl: gateway.adminUrl, httpVersion: "1.1" }));
    const headers = bearer(await platform.adminToken());
    const greeterHealth = async () =>
      (await admin.getUpstreamHealth({}, { headers })).upstreams.find((u) => u.service === "portico.greeter.v1.GreeterService")
        ?.targets ?? [];
    for (let i = 0; i < 50 && (await greeterHealth()).some((t) => t.healthy); i++) await sleep(100);
    expect(await greeterHealth()).toMatchObject([{ healthy: false }, { healthy: false }]);
    // Both replicas are out of rotation, yet both serve: calls, non-idempotent ones too, still go through.
    const greeter = greeterVia(gateway);
    for (let i = 0; i < 6; i++) await greeter.greet({ name: "busy" }, { headers: bearer(token) });
    expect(a.served + b.served).toBe(6);
    expect(a.served).toBeGreaterThan(0);
    expect(b.served).toBeGreaterThan(0);
  });

  it("answers unavailable fast when the only address is down", async () => {
    const gateway = await gatewayFor({ targets: [`http://127.0.0.1:${await deadPort()}`], protocol: "grpc" });
    const started = Date.now();
    await expect(greeterVia(gateway).greet({ name: "x" }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.Unavailable,
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("auth service with several addresses", () => {
  const authService = "portico.auth.v1.AuthService";

  it("fails over cache misses from an auth address that cannot answer to one that can", async () => {
    // One address passes its health checks but answers every call 503; the other is the auth service.
    const overloaded = await overloadedUpstream();
    const gateway = await platform.startGateway({
      healthCheckIntervalMs: 60_000,
      authCacheTtlMs: 1,
      upstreams: { [authService]: { targets: [overloaded.url, platform.urlOf("auth")], protocol: "connect" } },
    });
    cleanup.push(() => gateway.close());
    const greeter = greeterVia(gateway);
    for (let i = 0; i < 12; i++) {
      // A token nobody has seen: a cache miss, answered by the auth service, never `unavailable`.
      await expect(greeter.greet({ name: "x" }, { headers: bearer(`unknown-token-${i}`) })).rejects.toMatchObject({
        code: Code.Unauthenticated,
      });
      const res = await greeter.greet({ name: `miss ${i}` }, { headers: bearer(token) });
      expect(res.greeting).toContain(`miss ${i}`);
    }
    expect(overloaded.refused).toBeGreaterThanOrEqual(1);
  });

  it("is ready when one auth address of two answers, and follows a reload to new auth addresses", async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const both = await platform.startGateway({
      upstreams: { [authService]: { targets: [dead, platform.urlOf("auth")], protocol: "connect" } },
    });
    cleanup.push(() => both.close());
    expect((await fetch(`${both.adminUrl}/readyz`)).status).toBe(200);

    const config = {
      ...platform.gatewayOptions,
      upstreams: { ...platform.gatewayOptions.upstreams, [authService]: { targets: [dead], protocol: "connect" as const } },
    };
    const gateway = await platform.startGateway(config);
    cleanup.push(() => gateway.close());
    const greeter = greeterVia(gateway);
    await expect(greeter.greet({ name: "x" }, { headers: bearer(token) })).rejects.toMatchObject({ code: Code.Unavailable });
    expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(503);
    gateway.reload({
      ...config,
      upstreams: { ...config.upstreams, [authService]: { targets: [platform.urlOf("auth")], protocol: "connect" } },
    });
    expect((await greeter.greet({ name: "reloaded" }, { headers: bearer(token) })).greeting).toContain("reloaded");
    expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(200);
  });
});

describe("faults", () => {
  it("maps an upstream's HTML 502 to unavailable without leaking it", async () => {
    const html = http2.createServer((_req, res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html><body>nginx internal secret stack trace</body></html>");
    });
    await new Promise<void>((r) => html.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise((r) => html.close(() => r())));
    const url = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
    for (const protocol of ["connect", "grpc"] as const) {
      const gateway = await gatewayFor({ targets: [url], protocol });
      for (const transport of [
        createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }),
        createGrpcTransport({ baseUrl: gateway.url }),
      ]) {
        const error = await greeterVia(gateway, transport)
          .greet({ name: "x" }, { headers: bearer(token) })
          .catch((e: unknown) => ConnectError.from(e));
        expect(error).toMatchObject({ code: Code.Unavailable });
        expect((error as ConnectError).message).not.toContain("secret");
      }
    }
  });

  it("answers an upstream response with a line break in a header value unavailable at once, and forwards none of it", async () => {
    // The gateway's own engine as the upstream: unlike node:http2 it sends whatever it is given.
    const upstream = await engineServer({}, (stream, headers) => {
      if (String(headers[":path"]).startsWith("/grpc.health.v1.Health/")) {
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
        return;
      }
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/json", "x-injected": "a\r\nset-cookie: session=stolen" });
        stream.end(Buffer.from('{"payload":"aGk="}'));
      });
    });
    cleanup.push(async () => closeAll());
    const gateway = await gatewayFor({ targets: [`http://127.0.0.1:${upstream.port}`], protocol: "connect" });
    for (const httpVersion of ["2", "1.1"] as const) {
      const headers: string[] = [];
      const started = Date.now();
      const json = greeterVia(gateway, createConnectTransport({ baseUrl: gateway.url, httpVersion, useBinaryFormat: false }));
      await expect(
        json.echo(
          { payload: Buffer.from("x") },
          {
            headers: bearer(token),
            onHeader: (h) => {
              for (const k of h.keys()) headers.push(k);
            },
          },
        ),
      ).rejects.toMatchObject({ code: Code.Unavailable });
      // At once: not at the call's 10 s deadline.
      expect(Date.now() - started, httpVersion).toBeLessThan(5_000);
      expect(headers).not.toContain("x-injected");
      expect(headers).not.toContain("set-cookie");
    }
  });

  it("resets the upstream stream when the client cancels", async () => {
    const upstream = await grpcUpstream();
    const gateway = await gatewayFor({ targets: [upstream.url], protocol: "grpc" });
    const abort = new AbortController();
    const got: number[] = [];
    const call = (async () => {
      for await (const m of greeterVia(gateway).greetStream(
        { name: "c", count: 100, intervalMs: 50 },
        { headers: bearer(token), signal: abort.signal },
      )) {
        got.push(m.index);
        if (got.length === 3) abort.abort();
      }
    })();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
    for (let i = 0; i < 40 && !upstream.cancelled.includes("GreetStream"); i++) await sleep(25);
    expect(upstream.cancelled).toContain("GreetStream");
  });

  it("ends a stream unavailable when its upstream dies mid-way, and serves again once it is back", async () => {
    let upstream = await grpcUpstream();
    const port = Number(new URL(upstream.url).port);
    const gateway = await gatewayFor({ targets: [upstream.url], protocol: "grpc" });
    for (const transport of [
      createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }),
      createGrpcTransport({ baseUrl: gateway.url }),
    ]) {
      const got: number[] = [];
      const call = (async () => {
        for await (const m of greeterVia(gateway, transport).greetStream(
          { name: "k", count: 100, intervalMs: 30 },
          { headers: bearer(token) },
        )) {
          got.push(m.index);
          if (got.length === 3) upstream.kill();
        }
      })();
      await expect(call).rejects.toMatchObject({ code: Code.Unavailable });
      expect(got.slice(0, 3)).toEqual([0, 1, 2]);
      upstream = await grpcUpstream(port);
      const res = await greeterVia(gateway, transport).greet({ name: "back" }, { headers: bearer(token) });
      expect(res.greeting).toContain("Hello, back!");
    }
  });

  it("cuts off a slow-loris client without slowing others", async () => {
    const upstream = await grpcUpstream();
    const gateway = await gatewayFor({ targets: [upstream.url], protocol: "grpc" }, { headersTimeoutMs: 500 });
    const { port } = new URL(gateway.url);
    const socket = net.connect(Number(port), "127.0.0.1");
    socket.on("error", () => {});
    socket.resume();
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      socket.on("close", () => resolve(Date.now() - started));
    });
    socket.write("POST /portico.greeter.v1.GreeterService/Greet HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => socket.writable && socket.write("x-slow: 1\r\n"), 100);
    try {
      // Meanwhile others are served.
      const res = await greeterVia(gateway).greet({ name: "fast" }, { headers: bearer(token) });
      expect(res.greeting).toContain("Hello, fast!");
      expect(await closed).toBeLessThan(3000);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  });
});

describe("operations", () => {
  it("applies a reloaded config to new calls without dropping calls in flight", async () => {
    const first = await grpcUpstream();
    const second = await grpcUpstream();
    const gateway = await gatewayFor({ targets: [first.url], protocol: "grpc" });
    const got: number[] = [];
    const inFlight = (async () => {
      for await (const m of greeterVia(gateway).greetStream(
        { name: "r", count: 10, intervalMs: 40 },
        { headers: bearer(token) },
      )) {
        got.push(m.index);
      }
    })();
    await sleep(120);
    gateway.reload({
      upstreams: {
        ...platform.gatewayOptions.upstreams,
        "portico.greeter.v1.GreeterService": { targets: [second.url], protocol: "grpc" },
      },
    });
    await greeterVia(gateway).greet({ name: "after reload" }, { headers: bearer(token) });
    await inFlight;
    expect(got).toEqual([...Array(10).keys()]);
    expect(first.calls.get("Greet")).toBeUndefined();
    expect(second.calls.get("Greet")).toBe(1);
  });

  it("shuts down gracefully: calls in flight finish, new connections are refused", async () => {
    const upstream = await grpcUpstream();
    const gateway = await gatewayFor({ targets: [upstream.url], protocol: "grpc" });
    const got: number[] = [];
    const inFlight = (async () => {
      for await (const m of greeterVia(gateway).greetStream(
        { name: "g", count: 8, intervalMs: 50 },
        { headers: bearer(token) },
      )) {
        got.push(m.index);
      }
    })();
    await sleep(100);
    const closing = gateway.close();
    await inFlight;
    await closing;
    expect(got).toEqual([...Array(8).keys()]);
    await expect(greeterVia(gateway).greet({ name: "late" }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.Unavailable,
    });
  });

  it("shuts down within its grace period even when a client stopped reading", { timeout: 20_000 }, async () => {
    const gateway = await gatewayFor(platform.gatewayOptions.upstreams["portico.greeter.v1.GreeterService"] as UpstreamConfig, {
      shutdownGraceMs: 300,
    });
    // A client that grants the gateway huge windows, then stops reading its socket mid-stream.
    const client = connectH2({ url: gateway.url, settings: { initialWindowSize: 2 ** 31 - 1 }, connectionWindowSize: 2 ** 30 });
    const request = create(EchoStreamRequestSchema, { payload: new Uint8Array(60 * 1024), count: 10_000 });
    const stream = client.request({
      ":method": "POST",
      ":path": "/portico.greeter.v1.GreeterService/EchoStream",
      "content-type": "application/grpc",
      te: "trailers",
      ...bearer(token),
    });
    stream.on("error", () => {});
    client.on("error", () => {});
    stream.end(envelope(0, Buffer.from(toBinary(EchoStreamRequestSchema, request))));
    let received = 0;
    await new Promise<void>((resolve) =>
      stream.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > 1 << 20) {
          client.socket.pause();
          resolve();
        }
      }),
    );
    // The gateway keeps writing until the socket buffers on both sides are full.
    await sleep(500);
    const started = Date.now();
    await gateway.close();
    expect(Date.now() - started).toBeLessThan(5000);
    client.destroy();
  });

  it("keeps serving cached tokens while auth is down, answers unavailable for new ones", async () => {
    const gateway = await gatewayFor(platform.gatewayOptions.upstreams["portico.greeter.v1.GreeterService"] as UpstreamConfig);
    const known = await platform.signUp("cached");
    const fresh = await platform.signUp("fresh");
    const greeter = greeterVia(gateway);
    await greeter.greet({ name: "warm" }, { headers: bearer(known.token) });
    await platform.stop("auth");
    const res = await greeter.greet({ name: "cached" }, { headers: bearer(known.token) });
    expect(res.greeting).toBe("Hello, cached!");
    await expect(greeter.greet({ name: "miss" }, { headers: bearer(fresh.token) })).rejects.toMatchObject({
      code: Code.Unavailable,
    });
  });
});
