import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AuthenticateRequestSchema, AuthenticateResponseSchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { describe, expect, it } from "vitest";
import { signUp, useTestAuth } from "./test-auth.js";

// Authenticate's raw-stream path (authenticate-fast-path.ts) takes uncompressed binary gRPC and
// Connect; the same call compressed goes to connect-node's router. Both must answer alike.
const t = useTestAuth("authenticate_raw_stream");

interface Answer {
  code: string;
  message: string;
  identity?: unknown;
  contentType?: string;
}

function call(url: string, headers: http2.OutgoingHttpHeaders, body: Buffer) {
  const session = http2.connect(url);
  return new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/portico.auth.v1.AuthService/Authenticate", ...headers });
      let head: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => (head = h));
      req.on("trailers", (h) => (trailers = h));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("close", () => {
        session.close();
        resolve({ headers: head, trailers, body: Buffer.concat(chunks) });
      });
      req.on("error", reject);
      req.end(body);
    },
  );
}

function envelope(flags: number, message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

async function grpc(token: string | undefined, compressed: boolean, gateway = true): Promise<Answer> {
  const message =
    token === undefined
      ? new Uint8Array()
      : toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: token }));
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc", te: "trailers" };
  if (compressed) headers["grpc-encoding"] = "gzip";
  const r = await call(
    t.auth.url,
    { ...headers, ...(gateway ? t.gatewayHeaders() : {}) },
    compressed ? envelope(1, gzipSync(message)) : envelope(0, message),
  );
  const status = r.trailers["grpc-status"] ?? r.headers["grpc-status"];
  const text = r.trailers["grpc-message"] ?? r.headers["grpc-message"] ?? "";
  expect(r.headers[":status"]).toBe(200);
  const answer: Answer = {
    code: String(status),
    message: decodeURIComponent(String(text)),
    contentType: r.headers["content-type"],
  };
  if (status === "0") {
    expect(r.body[0]).toBe(0);
    answer.identity = fromBinary(AuthenticateResponseSchema, r.body.subarray(5)).identity;
  }
  return answer;
}

async function connect(token: string | undefined, compressed: boolean, gateway = true): Promise<Answer & { status: unknown }> {
  const message =
    token === undefined
      ? new Uint8Array()
      : toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: token }));
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/proto" };
  if (compressed) headers["content-encoding"] = "gzip";
  const r = await call(
    t.auth.url,
    { ...headers, ...(gateway ? t.gatewayHeaders() : {}) },
    compressed ? gzipSync(message) : Buffer.from(message),
  );
  const status = Number(r.headers[":status"]);
  if (status === 200) {
    return {
      status,
      code: "ok",
      message: "",
      contentType: r.headers["content-type"],
      identity: fromBinary(AuthenticateResponseSchema, r.body).identity,
    };
  }
  const error = JSON.parse(r.body.toString()) as { code: string; message?: string };
  return { status, code: error.code, message: error.message ?? "", contentType: r.headers["content-type"] };
}

// A good token, a bad one, none, and a good one from a caller that is not the gateway.
function cases(token: string): [string | undefined, boolean][] {
  return [
    [token, true],
    ["garbage", true],
    [undefined, true],
    [token, false],
  ];
}

describe("Authenticate on the raw stream path answers as the router does", () => {
  it("gRPC: identity, bad, empty and revoked tokens, and a caller that is not the gateway", async () => {
    const { tokens } = await signUp(t);
    for (const [token, gateway] of cases(tokens.accessToken)) {
      const raw = await grpc(token, false, gateway);
      const routed = await grpc(token, true, gateway);
      expect(raw).toEqual(routed);
    }
    expect((await grpc(tokens.accessToken, false)).code).toBe("0");
    expect((await grpc(tokens.accessToken, false, false)).code).not.toBe("0");
    await t.client.logout({ refreshToken: tokens.refreshToken });
    const revoked = await grpc(tokens.accessToken, false);
    expect(revoked.code).toBe("16");
    expect(revoked).toEqual(await grpc(tokens.accessToken, true));
  });

  it("Connect: identity, bad, empty and revoked tokens, and a caller that is not the gateway", async () => {
    const { user, tokens } = await signUp(t);
    for (const [token, gateway] of cases(tokens.accessToken)) {
      const raw = await connect(token, false, gateway);
      const routed = await connect(token, true, gateway);
      expect(raw).toEqual(routed);
    }
    expect((await connect(tokens.accessToken, false)).identity).toMatchObject({ userId: user.id });
    expect((await connect("garbage", false)).status).toBe(401);
    await t.client.logout({ refreshToken: tokens.refreshToken });
    const revoked = await connect(tokens.accessToken, false);
    expect(revoked.code).toBe("unauthenticated");
    expect(revoked).toEqual(await connect(tokens.accessToken, true));
  });

  it("a client that resets its stream before the answer leaves the server serving", async () => {
    const { tokens } = await signUp(t);
    const session = http2.connect(t.auth.url);
    const req = session.request({
      ":method": "POST",
      ":path": "/portico.auth.v1.AuthService/Authenticate",
      "content-type": "application/proto",
      ...t.gatewayHeaders(),
    });
    req.on("error", () => undefined);
    req.write(
      Buffer.from(toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, { accessToken: tokens.accessToken }))),
    );
    req.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((resolve) => req.on("close", resolve));
    session.close();
    expect((await connect(tokens.accessToken, false)).code).toBe("ok");
  });
});
