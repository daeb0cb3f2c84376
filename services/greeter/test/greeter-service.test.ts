import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@portico/gen/grpc/health/v1/health_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { createLogger, type Database, type Identity } from "@portico/kit";
import { createTestKeys, openTestDatabase } from "@portico/kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GreeterServer, startGreeter } from "../src/start-greeter.js";

const keys = createTestKeys();
const alice: Identity = { userId: "user-alice", tier: "free", roles: [], sessionId: "s-a", clientAddress: "203.0.113.7" };
const bob: Identity = { userId: "user-bob", tier: "free", roles: [], sessionId: "s-b", clientAddress: "203.0.113.8" };

let db: Database;
let server: GreeterServer;

beforeAll(async () => {
  db = await openTestDatabase("greeter");
  server = await startGreeter({
    db,
    logger: createLogger({ service: "greeter", level: "silent" }),
    identity: keys.identity("greeter"),
  });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const client = () => createClient(GreeterService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
const as = (who: Identity, extra: Record<string, string> = {}) => ({
  headers: { "x-portico-identity": keys.assertion(who, "greeter"), ...extra },
});

describe("GreeterService", () => {
  it("greets the verified caller and keeps the greeting in their own history only", async () => {
    const res = await client().greet({ name: "Ada" }, as(alice));
    expect(res.greeting).toBe("Hello, Ada!");
    await client().greet({ name: "Bea" }, as(bob, { "x-user-id": alice.userId }));
    const aliceHistory = await client().listGreetings({}, as(alice));
    expect(aliceHistory.greetings.map((g) => g.message)).toEqual(["Hello, Ada!"]);
    const bobHistory = await client().listGreetings({}, as(bob));
    expect(bobHistory.greetings.map((g) => g.message)).toEqual(["Hello, Bea!"]);
  });

  it("pages through the history newest first", async () => {
    const carol: Identity = { ...alice, userId: "user-carol" };
    for (let i = 1; i <= 5; i++) await client().greet({ name: `n${i}` }, as(carol));
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client().listGreetings({ pageSize: 2, pageToken }, as(carol));
      expect(page.greetings.length).toBeLessThanOrEqual(2);
      seen.push(...page.greetings.map((g) => g.message));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(["Hello, n5!", "Hello, n4!", "Hello, n3!", "Hello, n2!", "Hello, n1!"]);
  });

  it("streams exactly count greetings", async () => {
    const got: number[] = [];
    for await (const msg of client().greetStream({ name: "Ada", count: 7 }, as(alice))) got.push(msg.index);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("answers unauthenticated to a direct call with a forged x-user-id and no or a forged assertion", async () => {
    const forged = createTestKeys().assertion(alice, "greeter");
    for (const headers of [
      { "x-user-id": alice.userId },
      { "x-user-id": alice.userId, "x-portico-identity": forged },
      { "x-portico-identity": "garbage.garbage.garbage" },
    ]) {
      const err = await client()
        .listGreetings({}, { headers })
        .catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    }
  });

  it("rejects bad input with invalid_argument and records nothing", async () => {
    const dave: Identity = { ...alice, userId: "user-dave" };
    for (const call of [
      () => client().greet({ name: "   " }, as(dave)),
      () => client().greet({ name: "x".repeat(101) }, as(dave)),
      () => client().listGreetings({ pageToken: "not-a-token" }, as(dave)),
      () => client().listGreetings({ pageSize: 1000 }, as(dave)),
    ]) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.InvalidArgument);
    }
    expect((await client().listGreetings({}, as(dave))).greetings).toHaveLength(0);
  });

  it("needs greeter.admin to purge", async () => {
    const err = await client()
      .purgeGreetings({}, as(alice))
      .catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    const admin: Identity = { ...alice, userId: "admin", roles: ["greeter.admin"] };
    const res = await client().purgeGreetings({}, as(admin));
    expect(res.deleted).toBeGreaterThan(0n);
  });

  it("answers health checks without an identity, as probes and load balancers call them", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const overall = await health.check({ service: "" });
    expect(overall.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const greeter = await health.check({ service: GreeterService.typeName });
    expect(greeter.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("echoes payloads over gRPC as well", async () => {
    const grpc = createClient(GreeterService, createGrpcTransport({ baseUrl: server.url }));
    const payload = randomBytes(1024);
    const res = await grpc.echo({ payload }, as(alice));
    expect(Buffer.from(res.payload).equals(payload)).toBe(true);
  });
});
