import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthenticateResponseSchema } from "@portico/gen/portico/auth/v1/auth_pb.js";
import {
  decodeAuthenticateBatchRequest,
  decodeAuthenticateRequest,
  encodeAuthenticateBatchResponse,
  encodeAuthenticateResponse,
  maxAuthenticateBatch,
} from "@portico/kit/authenticate-codec";
import { afterEach, describe, expect, it } from "vitest";
import { createAuthClient } from "../src/auth-client.js";
import { createUpstream, type Upstream } from "../src/upstream.js";

// The gateway's Authenticate client against one auth address that misbehaves on purpose (a real
// HTTP/2 server on a free port): a call the address never processed goes again once, on a new
// connection; a call it may have processed does not.

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const answer = toBinary(
  AuthenticateResponseSchema,
  create(AuthenticateResponseSchema, {
    identity: {
      userId: "user-1",
      tier: "free",
      roles: ["user"],
      sessionId: "session-1",
      expiresAt: timestampFromMs(Date.now() + 600_000),
    },
  }),
);

/** What the address does with one stream; `cut` resets the newest TCP connection, with no GOAWAY. */
type Misbehaviour = (stream: http2.ServerHttp2Stream, cut: () => void) => void;

/**
 * An h2c auth address: the n-th stream it receives (from 0) meets `misbehave[n]` if there is one,
 * every other stream a valid Authenticate answer. Counts streams and connections.
 */
async function authAddress(misbehave: Record<number, Misbehaviour>, settings: http2.Settings = {}) {
  const server = http2.createServer({ settings });
  const state = { streams: 0, connections: 0 };
  server.on("session", () => state.connections++);
  let newest: Socket | undefined;
  server.on("connection", (socket: Socket) => {
    newest = socket;
  });
  const cut = () => newest?.resetAndDestroy();
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    const n = state.streams++;
    const bad = misbehave[n];
    if (bad !== undefined) return bad(stream, cut);
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/proto" });
      stream.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions still open would keep close() waiting.
        for (const close of sessionClosers) close();
      }),
  );
  const sessionClosers: (() => void)[] = [];
  server.on("session", (session) => sessionClosers.push(() => session.destroy()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // One connection: the misbehaviours are about the streams that share it.
  const upstream = createUpstream({
    service: "portico.auth.v1.AuthService",
    targets: [url],
    protocol: "connect",
    connections: 1,
  });
  closers.push(() => upstream.close());
  const client = createAuthClient({ upstream: () => upstream, timeoutMs: 5_000 });
  closers.push(() => client.close());
  return { client, state };
}

async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code === Code.Unavailable ? "unavailable" : String(error);
  }
}

/** The next event-loop turn: a token asked then goes in a call of its own (the misses of one turn share one). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe("auth client: a call the only auth address never processed goes again", () => {
  it("REFUSED_STREAM: answered on the second try", async () => {
    const { client, state } = await authAddress({ 0: (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM) });
    const verified = await client.verify("token-a");
    expect(verified.identity).toEqual({ userId: "user-1", tier: "free", roles: ["user"], sessionId: "session-1" });
    expect(state.streams).toBe(2);
  });

  it("a stream past the last stream id of the address's GOAWAY: answered on a new connection", async () => {
    // The address takes the first call and says GOAWAY (last stream 1) when the second arrives.
    const { client, state } = await authAddress({
      1: (stream) => (stream.session as http2.ServerHttp2Session).goaway(http2.constants.NGHTTP2_NO_ERROR, 1),
    });
    const outcomes = await Promise.all([
      outcome(client.verify("token-a")),
      nextTurn().then(() => outcome(client.verify("token-b"))),
    ]);
    expect(outcomes).toEqual(["ok", "ok"]);
    expect(state.streams).toBe(3);
    expect(state.connections).toBe(2);
  });

  it("a stream that waited for a stream slot when the connection died was never sent: it goes again, the one that was sent does not", async () => {
    // One stream at a time: the second call waits on the client for a slot, and the connection is
    // cut (no GOAWAY) as soon as the first call arrives. The first may have been processed, the
    // second never left.
    const { client, state } = await authAddress({ 0: (_, cut) => cut() }, { maxConcurrentStreams: 1 });
    const [first, second] = await Promise.all([
      outcome(client.verify("token-a")),
      nextTurn().then(() => outcome(client.verify("token-b"))),
    ]);
    expect(first).toBe("unavailable");
    expect(second).toBe("ok");
    expect(state.streams).toBe(2);
  });

  it("a stream the address reset otherwise (it may have run the call): not sent again", async () => {
    const { client, state } = await authAddress({ 0: (stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR) });
    expect(await outcome(client.verify("token-a"))).toBe("unavailable");
    expect(state.streams).toBe(1);
  });
});

/**
 * An h2c auth address that answers Authenticate and AuthenticateBatch in the auth service's wire
 * format, recording each call's path and tokens: a token starting with "bad" is refused (16, "refused
 * <token>"), any other answered as the user of that name. `batch: false` answers AuthenticateBatch
 * as a server without it does (Connect's unimplemented, HTTP 404).
 */
async function recordingAuth(options: { batch: "serve" | "unimplemented" | "refuse" } = { batch: "serve" }) {
  const server = http2.createServer();
  const calls: { path: string; tokens: string[]; bytes: number }[] = [];
  const user = (token: string) => ({
    userId: token,
    tier: "free",
    roles: [],
    sessionId: `s-${token}`,
    expiresAtMs: Date.now() + 600_000,
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = String(headers[":path"]);
      if (path.endsWith("/AuthenticateBatch")) {
        const tokens = decodeAuthenticateBatchRequest(body);
        calls.push({ path: "AuthenticateBatch", tokens, bytes: body.length });
        if (options.batch !== "serve") {
          const [status, code] = options.batch === "unimplemented" ? [404, "unimplemented"] : [400, "invalid_argument"];
          stream.respond({ ":status": status, "content-type": "application/json" });
          stream.end(JSON.stringify({ code, message: "not this batch" }));
          return;
        }
        const outcomes = tokens.map((token) =>
          token.startsWith("bad") ? { code: 16, message: `refused ${token}` } : user(token),
        );
        stream.respond({ ":status": 200, "content-type": "application/proto" });
        stream.end(encodeAuthenticateBatchResponse(outcomes, false));
        return;
      }
      const token = decodeAuthenticateRequest(body);
      calls.push({ path: "Authenticate", tokens: [token], bytes: body.length });
      if (token.startsWith("bad")) {
        stream.respond({ ":status": 401, "content-type": "application/json" });
        stream.end(JSON.stringify({ code: "unauthenticated", message: `refused ${token}` }));
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/proto" });
      stream.end(encodeAuthenticateResponse(user(token), false));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const sessions: http2.ServerHttp2Session[] = [];
  server.on("session", (session) => sessions.push(session));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  );
  const upstream = createUpstream({
    service: "portico.auth.v1.AuthService",
    targets: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
    protocol: "connect",
  });
  closers.push(() => upstream.close());
  const client = createAuthClient({ upstream: () => upstream, timeoutMs: 5_000 });
  return { client, calls, upstream };
}

/** A verification's result as the cache sees it: the user it names, or the error's code and message. */
async function verdict(call: Promise<{ identity: { userId: string } }>): Promise<string> {
  try {
    return (await call).identity.userId;
  } catch (error) {
    const e = ConnectError.from(error);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
}

describe("auth client: the misses of one event-loop turn go in one call", () => {
  it("one AuthenticateBatch for the tokens of one turn, each answered alone; a lone token goes as Authenticate", async () => {
    const { client, calls } = await recordingAuth();
    const answers = await Promise.all(["ada", "bad-1", "bob", "ada"].map((token) => verdict(client.verify(token))));
    expect(answers).toEqual(["ada", "Unauthenticated: refused bad-1", "bob", "ada"]);
    expect(calls.map(({ path, tokens }) => ({ path, tokens }))).toEqual([
      { path: "AuthenticateBatch", tokens: ["ada", "bad-1", "bob", "ada"] },
    ]);
    expect(await verdict(client.verify("cy"))).toBe("cy");
    expect(await verdict(client.verify("bad-2"))).toBe("Unauthenticated: refused bad-2");
    expect(calls.slice(1).map(({ path, tokens }) => ({ path, tokens }))).toEqual([
      { path: "Authenticate", tokens: ["cy"] },
      { path: "Authenticate", tokens: ["bad-2"] },
    ]);
  });

  it(`a turn with more than ${maxAuthenticateBatch.tokens} tokens, or ${maxAuthenticateBatch.bytes} bytes of them, is split at the limits`, async () => {
    const { client, calls } = await recordingAuth();
    const many = Array.from({ length: maxAuthenticateBatch.tokens + 6 }, (_, i) => `user-${i}`);
    expect(await Promise.all(many.map((token) => verdict(client.verify(token))))).toEqual(many);
    expect(calls.map((c) => c.tokens.length)).toEqual([maxAuthenticateBatch.tokens, 6]);
    calls.length = 0;
    const long = Array.from({ length: 20 }, (_, i) => `${i}-${"x".repeat(4000)}`);
    expect(await Promise.all(long.map((token) => verdict(client.verify(token))))).toEqual(long);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every((c) => c.tokens.join("").length <= maxAuthenticateBatch.bytes)).toBe(true);
    expect(calls.flatMap((c) => c.tokens)).toEqual(long);
    // Counted in UTF-8, as they go on the wire: text above 0x7f takes two bytes a character here.
    calls.length = 0;
    const wide = Array.from({ length: 20 }, (_, i) => `${i}-${"é".repeat(4000)}`);
    expect(await Promise.all(wide.map((token) => verdict(client.verify(token))))).toEqual(wide);
    expect(calls.flatMap((c) => c.tokens)).toEqual(wide);
    for (const call of calls) {
      expect(Buffer.byteLength(call.tokens.join(""), "utf8")).toBeLessThanOrEqual(maxAuthenticateBatch.bytes);
      expect(call.bytes).toBeLessThanOrEqual(maxAuthenticateBatch.bytes + call.tokens.length * 4);
    }
  });

  for (const refusal of ["unimplemented", "refuse"] as const) {
    it(`a batch refused as a whole (${refusal === "unimplemented" ? "an auth service without the method: a rolling upgrade" : "invalid_argument"}): each token asked again with Authenticate`, async () => {
      const { client, calls } = await recordingAuth({ batch: refusal });
      const answers = await Promise.all(["ada", "bad-1", "bob"].map((token) => verdict(client.verify(token))));
      expect(answers).toEqual(["ada", "Unauthenticated: refused bad-1", "bob"]);
      expect(calls.map((c) => c.path)).toEqual(["AuthenticateBatch", "Authenticate", "Authenticate", "Authenticate"]);
    });
  }

  it("no address to ask yet (DNS): the turn's tokens are unavailable at once, and the next turn's are asked", async () => {
    const { calls, upstream } = await recordingAuth();
    let known = false;
    const noAddress: Upstream = {
      ...upstream,
      pick: () => {
        throw new Error("no address of portico.auth.v1.AuthService is known yet (DNS)");
      },
    };
    const client = createAuthClient({ upstream: () => (known ? upstream : noAddress), timeoutMs: 5_000 });
    expect(await Promise.all(["ada", "bob"].map((token) => verdict(client.verify(token))))).toEqual([
      "Unavailable: no address of portico.auth.v1.AuthService is known yet (DNS)",
      "Unavailable: no address of portico.auth.v1.AuthService is known yet (DNS)",
    ]);
    expect(await verdict(client.verify("cy"))).toBe("Unavailable: no address of portico.auth.v1.AuthService is known yet (DNS)");
    expect(calls).toEqual([]);
    known = true;
    expect(await Promise.all(["ada", "bob"].map((token) => verdict(client.verify(token))))).toEqual(["ada", "bob"]);
    expect(calls.map(({ path, tokens }) => ({ path, tokens }))).toEqual([{ path: "AuthenticateBatch", tokens: ["ada", "bob"] }]);
  });

  it("a batch the address resets (it may have run it): every token of it unavailable, nothing sent again", async () => {
    const { client, state } = await authAddress({ 0: (stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR) });
    const outcomes = await Promise.all(["a", "b", "c"].map((token) => outcome(client.verify(token))));
    expect(outcomes).toEqual(["unavailable", "unavailable", "unavailable"]);
    expect(state.streams).toBe(1);
  });
});
