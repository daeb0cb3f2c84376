import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../src/error-response.js";
import type { Gateway } from "../src/start-gateway.js";
import { type GrpcUpstream, startGrpcUpstream } from "./test-grpc-upstream.js";
import { bearer, rawRequest, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
let upstream: GrpcUpstream;
let gateway: Gateway;
let token = "";
let userId = "";

beforeAll(async () => {
  platform = await startTestPlatform("gateway_translate");
  upstream = await startGrpcUpstream();
  gateway = await platform.startGateway({
    // A plain gRPC server: binary protobuf over gRPC only.
    upstreams: { "portico.greeter.v1.GreeterService": { targets: [upstream.url], protocol: "grpc" } },
  });
  upstream.trustJwksAt(`${gateway.adminUrl}/.well-known/jwks.json`);
  ({ token, userId } = await platform.signUp("translate"));
});
afterAll(async () => {
  await gateway?.close();
  await upstream?.close();
  await platform?.close();
});

const transports = (): Record<string, Transport> => ({
  "Connect JSON": createConnectTransport({ baseUrl: gateway.url, httpVersion: "2" }),
  "Connect binary": createConnectTransport({ baseUrl: gateway.url, httpVersion: "2", useBinaryFormat: true }),
  "Connect JSON over HTTP/1.1": createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1" }),
  "gRPC-Web binary": createGrpcWebTransport({ baseUrl: gateway.url, httpVersion: "2" }),
  "gRPC-Web JSON": createGrpcWebTransport({ baseUrl: gateway.url, httpVersion: "1.1", useBinaryFormat: false }),
  gRPC: createGrpcTransport({ baseUrl: gateway.url }),
});

describe("a gRPC-only upstream behind the gateway", () => {
  it("answers Connect (JSON and binary), gRPC-Web and gRPC callers, with the caller's identity verified by the backend", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      const res = await createClient(GreeterService, transport).greet({ name: "Ada" }, { headers: bearer(token) });
      expect(res.greeting, name).toBe(`Hello, Ada! (user ${userId})`);
    }
    expect(upstream.seen.get("Greet")?.get("x-portico-identity")[0]).toBeTruthy();
  });

  it("hands every caller the upstream's response metadata in its headers", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      let upstreamHeader: string | null = null;
      await createClient(GreeterService, transport).greet(
        { name: "Ada" },
        { headers: bearer(token), onHeader: (h) => (upstreamHeader = h.get("x-upstream")) },
      );
      expect(upstreamHeader, name).toBe("grpc-js");
    }
  });

  it("sends the backend a request id, forwarding headers and the continued trace context", async () => {
    const trace = "0af7651916cd43dd8448eb211c80319c";
    await createClient(GreeterService, createGrpcTransport({ baseUrl: gateway.url })).greet(
      { name: "trace" },
      {
        headers: {
          ...bearer(token),
          traceparent: `00-${trace}-b7ad6b7169203331-01`,
          "x-request-id": "client-42",
          "x-forwarded-for": "203.0.113.9",
        },
      },
    );
    const md = upstream.seen.get("Greet");
    expect(md?.get("traceparent")[0]).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
    expect(md?.get("traceparent")[0]).not.toContain("b7ad6b7169203331");
    expect(md?.get("x-request-id")[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(md?.get("x-client-request-id")[0]).toBe("client-42");
    // 127.0.0.1 is not a trusted proxy here: the caller's own x-forwarded-for is not believed.
    expect(md?.get("x-forwarded-for")).toEqual(["127.0.0.1"]);
    expect(md?.get("authorization")).toEqual([]);
  });

  it("hands the backend the user only in the signed assertion, unless identityClaimHeaders asks for plain copies", async () => {
    const claimHeaders = ["x-user-id", "x-user-tier", "x-user-roles", "x-session-id"];
    const greet = (url: string, headers: Record<string, string>) =>
      createClient(GreeterService, createGrpcTransport({ baseUrl: url })).greet({ name: "copies" }, { headers });
    // A caller's own copies never pass, with or without the option.
    const forged = { ...bearer(token), "x-user-id": "someone-else", "x-user-roles": "auth.admin" };
    await greet(gateway.url, forged);
    const plain = upstream.seen.get("Greet");
    expect(plain?.get("x-portico-identity")[0]).toBeTruthy();
    for (const name of claimHeaders) expect(plain?.get(name), name).toEqual([]);

    const withCopies = await platform.startGateway({
      upstreams: { "portico.greeter.v1.GreeterService": { targets: [upstream.url], protocol: "grpc" } },
      identityClaimHeaders: true,
    });
    try {
      await greet(withCopies.url, forged);
      const copied = upstream.seen.get("Greet");
      expect(copied?.get("x-user-id")).toEqual([userId]);
      expect(copied?.get("x-user-roles")).toEqual([""]);
      expect(copied?.get("x-user-tier")[0]).toBeTruthy();
      expect(copied?.get("x-session-id")[0]).toBeTruthy();
    } finally {
      await withCopies.close();
    }
  });

  it("streams exactly count messages to Connect and gRPC-Web callers", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      const got: number[] = [];
      for await (const m of createClient(GreeterService, transport).greetStream(
        { name: "S", count: 7 },
        { headers: bearer(token) },
      )) {
        got.push(m.index);
      }
      expect(got, name).toEqual([0, 1, 2, 3, 4, 5, 6]);
    }
  });

  it("carries upstream errors to the caller with their code and message", async () => {
    for (const [name, transport] of Object.entries(transports())) {
      const call = createClient(GreeterService, transport).greet({ name: "fail" }, { headers: bearer(token) });
      await expect(call, name).rejects.toMatchObject({ code: Code.FailedPrecondition, rawMessage: "greeting refused" });
    }
  });

  it("serves Connect GET for NO_SIDE_EFFECTS methods by translating the query into a gRPC call", async () => {
    const transport = createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1", useHttpGet: true });
    const greeter = createClient(GreeterService, transport);
    const res = await greeter.listGreetings({}, { headers: bearer(token) });
    expect(res.greetings.map((g) => g.message)).toEqual(["from grpc-js"]);
    const echo = await greeter.echo({ payload: new Uint8Array([1, 2, 3]) }, { headers: bearer(token) });
    expect([...echo.payload]).toEqual([1, 2, 3]);
  });

  it("speaks gRPC-Web text (base64) to browsers", async () => {
    // GreetRequest { name: "Txt" } = field 1, length 3, "Txt"
    const message = Buffer.from([0x0a, 3, ...Buffer.from("Txt")]);
    const res = await rawRequest(gateway.url, {
      path: "/portico.greeter.v1.GreeterService/Greet",
      headers: { "content-type": "application/grpc-web-text", ...bearer(token) },
      body: envelope(0, message).toString("base64"),
    });
    expect(res.headers["content-type"]).toBe("application/grpc-web-text+proto");
    const body = Buffer.from(res.body.toString("latin1"), "base64");
    expect(body.subarray(5, 5 + body.readUInt32BE(1)).toString()).toContain("Hello, Txt!");
    expect(body.toString()).toContain("grpc-status: 0");
  });

  it("caps the caller's deadline by the policy and sets one when the caller sends none", async () => {
    const greeter = createClient(GreeterService, createGrpcTransport({ baseUrl: gateway.url }));
    await greeter.greet({ name: "d" }, { headers: bearer(token), timeoutMs: 600_000 });
    // Greet inherits the service default timeout of 10 s.
    expect(upstream.deadlines.get("Greet")).toBeLessThanOrEqual(10_000);
    expect(upstream.deadlines.get("Greet")).toBeGreaterThan(8_000);
    await greeter.greet({ name: "d" }, { headers: bearer(token) });
    expect(upstream.deadlines.get("Greet")).toBeLessThanOrEqual(10_000);
    await expect(greeter.greet({ name: "slow" }, { headers: bearer(token), timeoutMs: 300 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
  });
});
