import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  type GreetRequest,
  GreetRequestSchema,
  type GreetResponse,
  GreetResponseSchema,
  type GreetStreamRequest,
  GreetStreamRequestSchema,
  type GreetStreamResponse,
  GreetStreamResponseSchema,
} from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform("gateway");
});
afterAll(async () => {
  await platform?.close();
});

const greetPath = "/portico.greeter.v1.GreeterService/Greet";

/** A @grpc/grpc-js client of GreeterService built from the generated schemas. */
function grpcGreeter() {
  const GreeterClient = grpc.makeGenericClientConstructor(
    {
      greet: {
        path: greetPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: GreetRequest) => Buffer.from(toBinary(GreetRequestSchema, create(GreetRequestSchema, m))),
        requestDeserialize: (b: Buffer) => fromBinary(GreetRequestSchema, b),
        responseSerialize: (m: GreetResponse) => Buffer.from(toBinary(GreetResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(GreetResponseSchema, b),
      },
      greetStream: {
        path: "/portico.greeter.v1.GreeterService/GreetStream",
        requestStream: false,
        responseStream: true,
        requestSerialize: (m: GreetStreamRequest) =>
          Buffer.from(toBinary(GreetStreamRequestSchema, create(GreetStreamRequestSchema, m))),
        requestDeserialize: (b: Buffer) => fromBinary(GreetStreamRequestSchema, b),
        responseSerialize: (m: GreetStreamResponse) => Buffer.from(toBinary(GreetStreamResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(GreetStreamResponseSchema, b),
      },
    },
    "GreeterService",
  );
  return new GreeterClient(new URL(platform.gateway.url).host, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    greet(
      req: GreetRequest,
      md: grpc.Metadata,
      cb: (err: grpc.ServiceError | null, res?: GreetResponse) => void,
    ): grpc.ClientUnaryCall;
    greetStream(req: GreetStreamRequest, md: grpc.Metadata): grpc.ClientReadableStream<GreetStreamResponse>;
  };
}

function grpcMetadata(headers: Record<string, string>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.add(k, v);
  return md;
}

describe("gateway: one authenticated call from sign-up to backend", () => {
  it("signs up through the gateway and greets with the token over Connect, gRPC-Web and HTTP/1.1", async () => {
    const { token } = await platform.signUp("ada");
    expect(token).not.toBe("");
    for (const transport of [platform.transports.connect, platform.transports.grpcWeb, platform.transports.connectHttp1]) {
      const res = await platform.greeterClient(transport).greet({ name: "Ada" }, { headers: bearer(token) });
      expect(res.greeting).toBe("Hello, Ada!");
    }
  });

  it("greets over gRPC from @grpc/grpc-js, and streams exactly count messages", async () => {
    const { token } = await platform.signUp("grace");
    const client = grpcGreeter();
    try {
      const res = await new Promise<GreetResponse>((resolve, reject) =>
        client.greet({ name: "Grace" } as GreetRequest, grpcMetadata(bearer(token)), (err, r) =>
          err ? reject(err) : resolve(r as GreetResponse),
        ),
      );
      expect(res.greeting).toBe("Hello, Grace!");
      const indexes: number[] = [];
      const stream = client.greetStream(
        { name: "Grace", count: 5, intervalMs: 0 } as GreetStreamRequest,
        grpcMetadata(bearer(token)),
      );
      for await (const msg of stream as AsyncIterable<GreetStreamResponse>) indexes.push(msg.index);
      expect(indexes).toEqual([0, 1, 2, 3, 4]);
    } finally {
      client.close();
    }
  });

  it("streams exactly count messages over Connect and gRPC-Web", async () => {
    const { token } = await platform.signUp("lin");
    for (const transport of [platform.transports.connect, platform.transports.grpcWeb, platform.transports.grpc]) {
      const got: number[] = [];
      for await (const msg of platform
        .greeterClient(transport)
        .greetStream({ name: "Lin", count: 12 }, { headers: bearer(token) })) {
        got.push(msg.index);
      }
      expect(got).toEqual([...Array(12).keys()]);
    }
  });

  it("passes Connect GET through for NO_SIDE_EFFECTS methods only", async () => {
    const { token } = await platform.signUp("get");
    const get = createConnectTransport({ baseUrl: platform.gateway.url, httpVersion: "1.1", useHttpGet: true });
    const echo = await platform.greeterClient(get).echo({ payload: new Uint8Array([7, 8]) }, { headers: bearer(token) });
    expect([...echo.payload]).toEqual([7, 8]);
    const post = await platform.raw({
      method: "GET",
      path: `${greetPath}?connect=v1&encoding=json&message=%7B%7D`,
      headers: bearer(token),
    });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe("POST");
  });

  it("forwards an empty request body on a token's first (uncached) call", async () => {
    const { token } = await platform.signUp("empty");
    const binary = createConnectTransport({ baseUrl: platform.gateway.url, httpVersion: "2", useBinaryFormat: true });
    const res = await platform.greeterClient(binary).listGreetings({}, { headers: bearer(token), timeoutMs: 5000 });
    expect(res.greetings).toEqual([]);
  });

  it("answers unauthenticated (HTTP 401 in Connect) without a valid token, in every protocol", async () => {
    const noToken = await platform.raw({
      path: greetPath,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    expect(noToken.status).toBe(401);
    expect(JSON.parse(noToken.body.toString()).code).toBe("unauthenticated");
    for (const transport of Object.values(platform.transports)) {
      const call = platform.greeterClient(transport).greet({ name: "x" }, { headers: bearer("not-a-token") });
      await expect(call).rejects.toMatchObject({ code: Code.Unauthenticated });
    }
    const grpcRes = await platform.raw({
      path: greetPath,
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: Buffer.from([0, 0, 0, 0, 0]),
    });
    expect(grpcRes.status).toBe(200);
    expect(grpcRes.headers["grpc-status"]).toBe(String(Code.Unauthenticated));
  });

  it("answers many first calls at once each by its own token: valid, revoked and garbled tokens side by side", async () => {
    // Sent together on one connection, their cache misses reach auth in one AuthenticateBatch.
    const users = await Promise.all(["u1", "u2", "u3", "u4", "u5"].map((name) => platform.signUp(name)));
    const revoked = await platform.signUp("gone");
    await platform.authClient.logout({ refreshToken: revoked.refreshToken });
    const tokens = [...users.map((u) => u.token), revoked.token, `${users[0]?.token}x`, "not-a-jwt"];
    const answers = await Promise.all(
      tokens.map((token) =>
        platform.authClient.getMe({}, { headers: bearer(token) }).then(
          (me) => me.user?.id,
          (error) => `${Code[error.code]}: ${error.rawMessage}`,
        ),
      ),
    );
    expect(answers.slice(0, 5)).toEqual(users.map((u) => u.userId));
    expect(answers[5]).toBe("Unauthenticated: access token has been revoked");
    expect(answers[6]).toMatch(/^Unauthenticated: /);
    expect(answers[7]).toMatch(/^Unauthenticated: /);
  });

  it("a caller's long non-ASCII tokens in the same turn do not fail another caller's token", async () => {
    // Sent together on one connection, the nine misses go to auth in batches sized in UTF-8 bytes:
    // sized by characters, the eight 8,000-byte-wide tokens would have made one batch auth refuses whole.
    const { token, userId } = await platform.signUp("neighbour");
    const wide = Array.from({ length: 8 }, (_, i) => `${i}${"é".repeat(7990)}`);
    const answers = await Promise.all(
      [...wide, token].map((t) =>
        platform.authClient.getMe({}, { headers: bearer(t) }).then(
          (me) => me.user?.id,
          (error) => `${Code[error.code]}: ${error.rawMessage}`,
        ),
      ),
    );
    expect(answers[8]).toBe(userId);
    for (const answer of answers.slice(0, 8)) expect(answer).toMatch(/^Unauthenticated: /);
  });

  it("answers unauthenticated for missing, garbled, oversized and unsigned tokens", async () => {
    const header = (alg: string) => Buffer.from(JSON.stringify({ alg, typ: "JWT" })).toString("base64url");
    const claims = Buffer.from(JSON.stringify({ sub: "someone", exp: 4_102_444_800 })).toString("base64url");
    for (const authorization of [
      "Bearer",
      "Basic dXNlcjpwYXNz",
      "Bearer not.a.jwt",
      `Bearer ${"a".repeat(16 * 1024)}`,
      `Bearer ${header("none")}.${claims}.`,
      `Bearer ${header("HS256")}.${claims}.${Buffer.from("forged").toString("base64url")}`,
    ]) {
      const res = await platform.raw({
        path: greetPath,
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify({ name: "x" }),
      });
      expect(res.status, authorization.slice(0, 40)).toBe(401);
      expect(JSON.parse(res.body.toString()).code).toBe("unauthenticated");
    }
  });

  it("never lets a client-sent x-user-id reach the backend: a spoofed greeting is recorded under the caller", async () => {
    const alice = await platform.signUp("alice");
    const bob = await platform.signUp("bob");
    const greeter = platform.greeterClient();
    await greeter.greet({ name: "from-alice" }, { headers: bearer(alice.token) });
    // Bob claims to be Alice in every spelling; the raw request also repeats the header.
    await greeter.greet(
      { name: "spoof" },
      {
        headers: {
          ...bearer(bob.token),
          "X-User-Id": alice.userId,
          "x-portico-identity": "forged",
          "X-USER-ROLES": "greeter.admin",
        },
      },
    );
    const raw = await platform.raw({
      path: greetPath,
      headers: {
        "content-type": "application/json",
        ...bearer(bob.token),
        "x-user-id": [alice.userId, alice.userId],
        "x-session-id": "forged",
      },
      body: JSON.stringify({ name: "spoof-raw" }),
    });
    expect(raw.status).toBe(200);
    const aliceHistory = await greeter.listGreetings({}, { headers: bearer(alice.token) });
    expect(aliceHistory.greetings.map((g) => g.message)).toEqual(["Hello, from-alice!"]);
    const bobHistory = await greeter.listGreetings({}, { headers: bearer(bob.token) });
    expect(bobHistory.greetings.map((g) => g.message).sort()).toEqual(["Hello, spoof!", "Hello, spoof-raw!"]);
  });

  it("does not route INTERNAL methods from outside, and says unimplemented for unknown ones", async () => {
    const internal = platform.authClient.authenticate({ accessToken: "x" });
    await expect(internal).rejects.toMatchObject({ code: Code.Unimplemented });
    for (const path of [
      "/portico.greeter.v1.GreeterService/Nope",
      "/nope.v1.Nope/Greet",
      "/portico.greeter.v1.GreeterService/Gr%65et",
      "/../etc/passwd",
      "/portico.auth.v1.AuthService/WatchRevocations",
    ]) {
      const res = await platform.raw({ path, headers: { "content-type": "application/json" }, body: "{}" });
      expect(res.status, path).toBe(501);
      expect(JSON.parse(res.body.toString()).code, path).toBe("unimplemented");
    }
  });

  it("answers bad input with clear errors and keeps serving", async () => {
    const { token } = await platform.signUp("bad");
    const malformed = await platform.raw({
      path: greetPath,
      headers: { "content-type": "application/json", ...bearer(token) },
      body: "{not json",
    });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body.toString()).code).toBe("invalid_argument");

    const wrongType = await platform.raw({
      path: greetPath,
      headers: { "content-type": "text/plain", ...bearer(token) },
      body: "hello",
    });
    expect(wrongType.status).toBe(415);
    expect(JSON.parse(wrongType.body.toString()).message).toMatch(/content-type "text\/plain" is not supported/);

    const empty = await platform.raw({ path: greetPath, headers: { "content-type": "application/proto", ...bearer(token) } });
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.body.toString()).code).toBe("invalid_argument");

    const emptyGrpc = await platform.raw({
      path: greetPath,
      headers: { "content-type": "application/grpc", te: "trailers", ...bearer(token) },
    });
    expect(emptyGrpc.trailers["grpc-status"] ?? emptyGrpc.headers["grpc-status"]).not.toBe("0");

    const hugeHeaders = await fetch(`${platform.gateway.url}${greetPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-padding": "p".repeat(70 * 1024), ...bearer(token) },
      body: "{}",
    });
    expect(hugeHeaders.status).toBe(431);

    const res = await platform.greeterClient().greet({ name: "still here" }, { headers: bearer(token) });
    expect(res.greeting).toBe("Hello, still here!");
  });

  it("serves /healthz and /readyz on the admin port", async () => {
    const health = await fetch(`${platform.gateway.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${platform.gateway.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", checks: { auth: true, routes: true } });
  });
});
