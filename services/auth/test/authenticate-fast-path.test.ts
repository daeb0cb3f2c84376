import * as http2 from "node:http2";
import { Code, createClient } from "@connectrpc/connect";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { describe, expect, it } from "vitest";
import { codeOf, gatewayTransports, signUp, useTestAuth } from "./test-auth.js";

const t = useTestAuth("authenticate_fast_path");

function rawGrpc(url: string, body: Buffer): Promise<{ status?: string; message?: string }> {
  const session = http2.connect(url);
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/portico.auth.v1.AuthService/Authenticate",
      "content-type": "application/grpc",
      te: "trailers",
      ...t.gatewayHeaders(),
    });
    const result: { status?: string; message?: string } = {};
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        result.status = String(h["grpc-status"]);
        result.message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      }
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", () => undefined);
    req.on("close", () => {
      session.close();
      resolve(result);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("Authenticate in every protocol", () => {
  for (const [name, make] of Object.entries(gatewayTransports(t))) {
    it(`${name}: answers the identity, and unauthenticated for a bad or revoked token`, async () => {
      const client = createClient(AuthService, make());
      const { user, tokens, sessionId } = await signUp(t);
      const { identity } = await client.authenticate({ accessToken: tokens.accessToken });
      expect(identity).toMatchObject({ userId: user.id, sessionId, tier: "free", roles: [] });
      expect(await codeOf(client.authenticate({ accessToken: "garbage" }))).toBe(Code.Unauthenticated);
      await t.client.logout({ refreshToken: tokens.refreshToken });
      expect(await codeOf(client.authenticate({ accessToken: tokens.accessToken }))).toBe(Code.Unauthenticated);
    });
  }

  it("a malformed gRPC body gets invalid_argument, and the server keeps serving", async () => {
    expect((await rawGrpc(t.auth.url, Buffer.from([0, 0, 0, 0, 9, 1]))).status).toBe(String(Code.InvalidArgument));
    expect((await rawGrpc(t.auth.url, Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff]))).status).toBe(String(Code.InvalidArgument));
    const empty = await rawGrpc(t.auth.url, Buffer.from([0, 0, 0, 0, 0]));
    expect(empty.status).toBe(String(Code.Unauthenticated));
    const { tokens } = await signUp(t);
    expect(await codeOf(t.gateway.authenticate({ accessToken: tokens.accessToken }))).toBe("ok");
  });
});
