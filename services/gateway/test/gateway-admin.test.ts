import { execFile } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ServerReflection, ServerReflectionRequestSchema } from "@portico/gen/grpc/reflection/v1/reflection_pb.js";
import { GatewayService } from "@portico/gen/portico/gateway/v1/gateway_pb.js";
import { Access } from "@portico/gen/portico/gateway/v1/options_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessLogOn } from "../src/access-log.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

const accessLines: Record<string, unknown>[] = [];
const accessLog = accessLogOn(pino({ level: "info" }, { write: (line: string) => accessLines.push(JSON.parse(line)) }));
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform("gateway_admin", {
    accessLog,
    corsOrigins: ["https://app.example.com"],
  });
});
afterAll(async () => {
  await platform?.close();
});

const adminClient = () =>
  createClient(GatewayService, createConnectTransport({ baseUrl: platform.gateway.adminUrl, httpVersion: "1.1" }));
/** GatewayService as a caller with the gateway.admin role. */
const admin = () => {
  const client = adminClient();
  return {
    listRoutes: async () => client.listRoutes({}, { headers: bearer(await platform.adminToken()) }),
    getUpstreamHealth: async () => client.getUpstreamHealth({}, { headers: bearer(await platform.adminToken()) }),
  };
};

describe("GatewayService on the admin port", () => {
  it("lists every route with its upstream and effective policy; INTERNAL methods unrouted", async () => {
    const { routes } = await admin().listRoutes();
    const greet = routes.find((r) => r.path === "/portico.greeter.v1.GreeterService/Greet");
    expect(greet).toMatchObject({ upstream: "portico.greeter.v1.GreeterService", kind: "unary", idempotent: false });
    expect(greet?.policy?.access).toBe(Access.AUTHENTICATED);
    expect(greet?.policy?.rateLimit?.perUser).toBe("600/m");
    expect(greet?.policy?.maxRequestBytes).toBe(4096);
    expect(greet?.policy?.timeout?.seconds).toBe(10n);
    const authenticate = routes.find((r) => r.path === "/portico.auth.v1.AuthService/Authenticate");
    expect(authenticate).toMatchObject({ upstream: "" });
    expect(authenticate?.policy?.access).toBe(Access.INTERNAL);
    expect(routes.find((r) => r.path === "/portico.auth.v1.AuthService/SignUp")?.policy?.access).toBe(Access.PUBLIC);
  });

  it("reports the health of every upstream address", async () => {
    const { upstreams } = await admin().getUpstreamHealth();
    const greeter = upstreams.find((u) => u.service === "portico.greeter.v1.GreeterService");
    expect(greeter?.targets).toEqual([
      expect.objectContaining({ address: platform.urlOf("greeter"), protocol: "connect", healthy: true }),
    ]);
  });
});

describe("who may use the admin port", () => {
  it("refuses GatewayService without a token, with a bad one, and without the gateway.admin role", async () => {
    const client = adminClient();
    await expect(client.listRoutes({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(client.getUpstreamHealth({}, { headers: bearer("not-a-token") })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    const { token } = await platform.signUp("not-admin");
    await expect(client.getUpstreamHealth({}, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    const other = await platform.tokenWithRoles(["greeter.admin"]);
    await expect(client.listRoutes({}, { headers: bearer(other) })).rejects.toMatchObject({ code: Code.PermissionDenied });
    // Health checks stay open.
    expect((await fetch(`${platform.gateway.adminUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${platform.gateway.adminUrl}/readyz`)).status).toBe(200);
  });

  it("binds 127.0.0.1 by default even when the public port binds every address", async () => {
    const gateway = await platform.startGateway({ host: "0.0.0.0", adminHost: undefined });
    const reach = (host: string, port: number) =>
      new Promise<boolean>((resolve) => {
        const socket = connect({ host, port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    // 127.0.0.2 is loopback too, but not the address the admin port is bound to.
    expect(await reach("127.0.0.2", gateway.port)).toBe(true);
    expect(await reach("127.0.0.1", gateway.adminPort)).toBe(true);
    expect(await reach("127.0.0.2", gateway.adminPort)).toBe(false);
  });
});

describe("the admin port's /metrics token", () => {
  const token = "metrics-token-0123456789abcdef";
  const scrape = (url: string, authorization?: string) =>
    fetch(`${url}/metrics`, { headers: authorization === undefined ? {} : { authorization } });

  it("answers /metrics only with the bearer token when one is set; health checks stay open", async () => {
    const gateway = await platform.startGateway({ metricsToken: token });
    const none = await scrape(gateway.adminUrl);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
    expect(await none.text()).toContain("missing metrics token");
    const wrong = await scrape(gateway.adminUrl, `Bearer ${token}x`);
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("wrong metrics token");
    const right = await scrape(gateway.adminUrl, `Bearer ${token}`);
    expect(right.status).toBe(200);
    expect(await right.text()).toContain("portico_gateway_calls_in_flight");
    expect((await fetch(`${gateway.adminUrl}/healthz`)).status).toBe(200);
  });

  it("refuses to start with the admin port on a non-loopback address and no token, in one line", async () => {
    await expect(platform.startGateway({ adminHost: "0.0.0.0" })).rejects.toThrow(
      /^ADMIN_HOST 0\.0\.0\.0 is not a loopback address: set ADMIN_METRICS_TOKEN so \/metrics is not open to the network$/,
    );
    await expect(platform.startGateway({ adminHost: "::" })).rejects.toThrow(/ADMIN_HOST :: is not a loopback address/);
    await expect(platform.startGateway({ metricsToken: "short" })).rejects.toThrow(
      /ADMIN_METRICS_TOKEN must be at least 16 characters/,
    );
  });

  it("serves every address with a token, and another host's scrape needs it", async () => {
    const gateway = await platform.startGateway({ adminHost: "0.0.0.0", metricsToken: token });
    // 127.0.0.2 stands for another host: the port is reachable there, /metrics only with the token.
    const other = `http://127.0.0.2:${gateway.adminPort}`;
    expect((await scrape(other)).status).toBe(401);
    expect((await scrape(other, `bearer ${token}`)).status).toBe(200);
  });
});

describe("observability", () => {
  it("exports Prometheus metrics and writes one access-log line per call", async () => {
    const { token, userId } = await platform.signUp("metrics");
    await platform.greeterClient().greet({ name: "m" }, { headers: { ...bearer(token), "x-request-id": "client-id-1" } });
    await platform
      .greeterClient()
      .greet({ name: "m" }, { headers: bearer("bad") })
      .catch(() => {});
    const text = await (await fetch(`${platform.gateway.adminUrl}/metrics`)).text();
    expect(text).toMatch(/portico_gateway_calls_total\{service="portico.greeter.v1.GreeterService",method="Greet",code="ok"\} 1/);
    expect(text).toMatch(
      /portico_gateway_calls_total\{service="portico.greeter.v1.GreeterService",method="Greet",code="unauthenticated"\} 1/,
    );
    expect(text).toContain("portico_gateway_call_duration_seconds_bucket");
    // The process's own metrics, event-loop delay among them (sampled every 100 ms).
    expect(text).toMatch(/portico_gateway_process_nodejs_eventloop_lag_p99_seconds \d/);
    expect(text).toMatch(/portico_gateway_auth_cache_misses_total \d+/);
    expect(text).toMatch(/portico_gateway_upstream_healthy\{service="portico.greeter.v1.GreeterService",address="[^"]+"\} 1/);
    // An upstream error inside a gRPC-Web body (its trailer frame) is counted by its code too.
    const grpcWeb = createGrpcWebTransport({ baseUrl: platform.gateway.url, httpVersion: "2" });
    await expect(createClient(GreeterService, grpcWeb).greet({ name: "" }, { headers: bearer(token) })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    const after = await (await fetch(`${platform.gateway.adminUrl}/metrics`)).text();
    expect(after).toMatch(
      /portico_gateway_calls_total\{service="portico.greeter.v1.GreeterService",method="Greet",code="invalid_argument"\} 1/,
    );
    const greets = accessLines.filter((l) => l.method === "/portico.greeter.v1.GreeterService/Greet");
    expect(greets).toHaveLength(3);
    expect(greets[2]).toMatchObject({ code: "invalid_argument", protocol: "grpc-web" });
    expect(greets[0]).toMatchObject({ code: "ok", userId, protocol: "connect" });
    expect(greets[0]?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(greets[1]).toMatchObject({ code: "unauthenticated" });
  });
});

describe("server reflection from the image", () => {
  const reflect = async (requests: MessageInitShape<typeof ServerReflectionRequestSchema>[]) => {
    const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: platform.gateway.url }));
    async function* input() {
      for (const r of requests) yield create(ServerReflectionRequestSchema, r);
    }
    const out = [];
    for await (const res of client.serverReflectionInfo(input())) out.push(res);
    return out;
  };

  it("lists routed services and serves their files without INTERNAL methods", async () => {
    const [list, file, hidden] = await reflect([
      { messageRequest: { case: "listServices", value: "" } },
      { messageRequest: { case: "fileContainingSymbol", value: "portico.auth.v1.AuthService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "portico.auth.v1.AuthService.Authenticate" } },
    ]);
    const names =
      list?.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((s) => s.name) : [];
    expect(names).toContain("portico.greeter.v1.GreeterService");
    expect(names).toContain("portico.auth.v1.AuthService");
    expect(names).not.toContain("portico.gateway.v1.GatewayService");
    expect(file?.messageResponse.case).toBe("fileDescriptorResponse");
    const protos =
      file?.messageResponse.case === "fileDescriptorResponse"
        ? file.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b))
        : [];
    expect(protos[0]?.name).toBe("portico/auth/v1/auth.proto");
    expect(protos.map((p) => p.name)).toContain("portico/gateway/v1/options.proto");
    const methods = protos[0]?.service[0]?.method.map((m) => m.name) ?? [];
    expect(methods).toContain("Login");
    expect(methods).not.toContain("Authenticate");
    expect(methods).not.toContain("WatchRevocations");
    expect(hidden?.messageResponse.case).toBe("errorResponse");
  });

  it("lets buf curl list the methods without local protos", async () => {
    const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
    const { stdout } = await promisify(execFile)(buf, [
      "curl",
      "--http2-prior-knowledge",
      "--list-methods",
      platform.gateway.url,
    ]);
    expect(stdout).toContain("portico.greeter.v1.GreeterService/Greet");
    expect(stdout).toContain("portico.auth.v1.AuthService/Login");
    expect(stdout).not.toContain("Authenticate");
    expect(stdout).not.toContain("GatewayService");
  });
});

describe("CORS", () => {
  it("answers preflights for configured origins and exposes the protocol headers", async () => {
    const preflight = await fetch(`${platform.gateway.url}/portico.greeter.v1.GreeterService/Greet`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,authorization",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("connect-protocol-version");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("x-grpc-web");

    const { token } = await platform.signUp("cors");
    const res = await fetch(`${platform.gateway.url}/portico.greeter.v1.GreeterService/Greet`, {
      method: "POST",
      headers: { origin: "https://app.example.com", "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify({ name: "c" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("access-control-expose-headers")).toContain("grpc-status");

    const evil = await fetch(`${platform.gateway.url}/portico.greeter.v1.GreeterService/Greet`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.com", "access-control-request-method": "POST" },
    });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });
});
