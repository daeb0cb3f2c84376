import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/free-port.js";
import { callerKey } from "../src/identity.js";
import { createLogger } from "../src/logger.js";
import { createServiceClient, type ServiceClient } from "../src/service-client.js";
import { type ServiceServer, startServiceServer } from "../src/service-server.js";
import { createTestKeys } from "../testing/index.js";

// Two real kit services: "greeter" (A) calls "lang" (B) with the service client; B answers what it saw.
const keys = createTestKeys(["gateway", "greeter", "lang"]);
const logger = createLogger({ service: "test", level: "silent" });
const text = new TextEncoder();
const servers: ServiceServer[] = [];
const clients: ServiceClient<typeof GreeterService>[] = [];
let echoFailures = 0;
let echoCalls = 0;

const lang: Partial<ServiceImpl<typeof GreeterService>> = {
  greet(_req, ctx) {
    const { assertion: _a, ...caller } = ctx.values.get(callerKey);
    const seen = {
      caller,
      requestId: ctx.requestHeader.get("x-request-id"),
      traceparent: ctx.requestHeader.get("traceparent"),
      timeoutMs: ctx.timeoutMs(),
    };
    return { greeting: JSON.stringify(seen) };
  },
  async echo(req) {
    echoCalls++;
    if (echoFailures > 0) {
      echoFailures--;
      throw new ConnectError("lang is overloaded", Code.Unavailable);
    }
    if (req.payload.length > 0 && req.payload[0] === 0x7a) await new Promise((r) => setTimeout(r, 2000));
    return { payload: req.payload };
  },
};

// An INTERNAL method (callers: gateway) that answers who called it.
const internal: Partial<ServiceImpl<typeof AuthService>> = {
  authenticate(_req, ctx) {
    const caller = ctx.values.get(callerKey);
    return { identity: { userId: caller.service ?? "", roles: [...caller.chain], tier: caller.user?.userId ?? "" } };
  },
};

async function start(name: string, impl: Partial<ServiceImpl<typeof GreeterService>>, port = 0) {
  const server = await startServiceServer({
    name,
    port,
    logger,
    identity: keys.identity(name),
    routes: (router) => {
      router.service(GreeterService, impl);
      router.service(AuthService, internal);
    },
    shutdownGraceMs: 200,
  });
  servers.push(server);
  return server;
}

function client(url: string, headers: Record<string, string>) {
  return createClient(
    GreeterService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "2",
      interceptors: [
        (next) => (req) => {
          for (const [k, v] of Object.entries(headers)) req.header.set(k, v);
          return next(req);
        },
      ],
    }),
  );
}

/** A replica of an INTERNAL service (`callers: gateway`) that notes its `id` in `served` for each call. */
function authReplica(id: string, served: string[]): Promise<ServiceServer> {
  return startServiceServer({
    name: "lang",
    port: 0,
    logger,
    identity: keys.identity("lang"),
    shutdownGraceMs: 200,
    routes: (router) =>
      router.service(AuthService, {
        authenticate() {
          served.push(id);
          return { identity: { userId: id } };
        },
        getJwks() {
          served.push(id);
          return {};
        },
      }),
  });
}

let langServer: ServiceServer;
let greeterUrl: string;
let toLang: ServiceClient<typeof GreeterService>;

beforeAll(async () => {
  langServer = await start("lang", lang);
  toLang = createServiceClient(GreeterService, {
    signer: keys.identity("greeter").signer,
    name: "lang",
    env: { LANG_URL: langServer.url },
    retry: { attempts: 2, reserve: 2, ratio: 0 },
    circuit: { failures: 3, openMs: 300 },
  });
  clients.push(toLang);
  const greeter = await start("greeter", {
    greet: (req, ctx) => toLang.for(ctx).greet(req),
    echo: (req, ctx) => toLang.for(ctx).echo(req),
  });
  greeterUrl = greeter.url;
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

describe("createServiceClient", () => {
  it("passes the user on: the callee sees the user, the calling service and the chain, with request id, trace and deadline", async () => {
    const assertion = keys.assertion({ userId: "u-ada", roles: ["reader"] }, "greeter");
    const trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const res = await client(greeterUrl, { "x-portico-identity": assertion, "x-request-id": "req-42", traceparent: trace }).greet(
      { name: "Ada" },
      { timeoutMs: 4000 },
    );
    const seen = JSON.parse(res.greeting);
    expect(seen.caller).toEqual({
      user: { userId: "u-ada", tier: "free", roles: ["reader"], sessionId: "s-test", clientAddress: "203.0.113.7" },
      service: "greeter",
      chain: ["gateway", "greeter"],
    });
    expect(seen.requestId).toBe("req-42");
    // Same trace, a new span.
    expect(seen.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[\da-f]{16}-01$/);
    expect(seen.traceparent).not.toBe(trace);
    expect(seen.timeoutMs).toBeGreaterThan(3000);
    expect(seen.timeoutMs).toBeLessThanOrEqual(4000);
  });

  it("calls on the service's own behalf with `self`: the callee sees the service and no user; policy callers decide", async () => {
    const asGateway = createServiceClient(AuthService, {
      signer: keys.identity("gateway").signer,
      name: "lang",
      url: langServer.url,
    });
    const asGreeter = createServiceClient(AuthService, {
      signer: keys.identity("greeter").signer,
      name: "lang",
      url: langServer.url,
    });
    clients.push(asGateway as never, asGreeter as never);
    const { identity } = await asGateway.self.authenticate({ accessToken: "t" });
    expect(identity).toMatchObject({ userId: "gateway", roles: ["gateway"], tier: "" });
    // Authenticate lists callers: ["gateway"]; the greeter is a valid service, but not listed.
    const denied = await asGreeter.self.authenticate({ accessToken: "t" }).catch((e: unknown) => ConnectError.from(e));
    expect((denied as ConnectError).code).toBe(Code.PermissionDenied);
    // An authenticated method needs a user, which a service's own token does not carry.
    const noUser = await toLang.self.greet({ name: "x" }).catch((e: unknown) => ConnectError.from(e));
    expect((noUser as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("retries an idempotent call that meets `unavailable`, within the budget", async () => {
    const assertion = keys.assertion({ userId: "u-1" }, "greeter");
    const a = client(greeterUrl, { "x-portico-identity": assertion });
    echoFailures = 1;
    echoCalls = 0;
    const res = await a.echo({ payload: text.encode("hi") });
    expect(new TextDecoder().decode(res.payload)).toBe("hi");
    expect(echoCalls).toBe(2);
  });

  it("does not retry an idempotent call beyond its budget", async () => {
    const a = client(greeterUrl, { "x-portico-identity": keys.assertion({ userId: "u-1" }, "greeter") });
    // reserve 2, ratio 0: two retries were available and one was spent above.
    echoFailures = 10;
    echoCalls = 0;
    for (let i = 0; i < 2; i++) await a.echo({ payload: text.encode("x") }).catch(() => {});
    expect(echoCalls).toBe(3);
    echoFailures = 0;
  });

  it("maps the caller's deadline to deadline_exceeded", async () => {
    const assertion = keys.assertion({ userId: "u-1" }, "greeter");
    const a = client(greeterUrl, { "x-portico-identity": assertion });
    const started = Date.now();
    const error = await a.echo({ payload: text.encode("z") }, { timeoutMs: 300 }).catch((e: unknown) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("opens the circuit after repeated failures and answers unavailable at once, then closes when the callee is back", async () => {
    const port = await freePort();
    const down = createServiceClient(AuthService, {
      signer: keys.identity("gateway").signer,
      name: "lang",
      url: `http://127.0.0.1:${port}`,
      retry: { attempts: 1 },
      circuit: { failures: 3, openMs: 500 },
    });
    clients.push(down as never);
    for (let i = 0; i < 3; i++) {
      const e = await down.self.authenticate({}).catch((x: unknown) => ConnectError.from(x));
      expect((e as ConnectError).code).toBe(Code.Unavailable);
    }
    const started = performance.now();
    const open = await down.self.authenticate({}).catch((x: unknown) => ConnectError.from(x));
    expect((open as ConnectError).code).toBe(Code.Unavailable);
    expect((open as ConnectError).rawMessage).toMatch(/circuit open/);
    expect(performance.now() - started).toBeLessThan(50);
    // The callee comes up on that port; after openMs one trial call goes through and closes the circuit.
    await start("lang", lang, port);
    await new Promise((r) => setTimeout(r, 550));
    const { identity } = await down.self.authenticate({});
    expect(identity?.userId).toBe("gateway");
  });

  it("spreads calls over the callee's replicas and passes over one that went away", async () => {
    const served: string[] = [];
    const replica = (id: string) => authReplica(id, served);
    const [a, b] = await Promise.all([replica("a"), replica("b")]);
    servers.push(a);
    const both = createServiceClient(AuthService, {
      signer: keys.identity("gateway").signer,
      name: "lang",
      env: { LANG_URL: `${a.url},${b.url}` },
    });
    clients.push(both as never);
    expect(both.urls).toEqual([a.url, b.url]);
    for (let i = 0; i < 4; i++) await both.self.authenticate({});
    expect(served.sort()).toEqual(["a", "a", "b", "b"]);
    // b goes away: the idempotent call that meets it is retried on a, and b is then passed over, so
    // calls that are not idempotent (Authenticate) do not meet it either.
    await b.close();
    served.length = 0;
    for (let i = 0; i < 4; i++) await both.self.getJwks({});
    for (let i = 0; i < 4; i++) await both.self.authenticate({});
    expect(served).toEqual(Array(8).fill("a"));
  });

  it("sends a call whose connection a replica refused to another one, idempotent or not", async () => {
    const served: string[] = [];
    const live = await authReplica("live", served);
    servers.push(live);
    const refusing = `http://127.0.0.1:${await freePort()}`;
    const pair = createServiceClient(AuthService, {
      signer: keys.identity("gateway").signer,
      name: "lang",
      url: [refusing, live.url],
    });
    clients.push(pair as never);
    // Authenticate has no idempotency level: only a refused connection (nothing sent) lets it go elsewhere.
    for (let i = 0; i < 4; i++) await pair.self.authenticate({});
    expect(served).toEqual(Array(4).fill("live"));
  });

  it("validates its options with messages naming the bad value", () => {
    const signer = keys.identity("greeter").signer;
    expect(() => createServiceClient(GreeterService, { signer, url: "ftp://x" })).toThrow(/url "ftp:\/\/x" is not valid/);
    expect(() => createServiceClient(GreeterService, { signer, url: "http://x", connections: 0 })).toThrow(/connections 0/);
    expect(() => createServiceClient(GreeterService, { signer, name: "Bad Name", url: "http://x" })).toThrow(/"Bad Name"/);
    expect(() => createServiceClient(GreeterService, { signer, env: { GREETER_URL: "nope" } })).toThrow(/GREETER_URL="nope"/);
  });
});
