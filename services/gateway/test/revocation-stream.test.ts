// The gateway's WatchRevocations stream against the real auth service: it hears a Logout, and a
// connection to auth that stops answering (a host gone without a FIN, a dropped route) is given up
// by the stream's keep-alive, so the gateway subscribes again on a new connection instead of
// waiting on a dead one at its full cache TTL.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { identityHeaders } from "@portico/kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthClient } from "../src/auth-client.js";
import { createUpstream } from "../src/upstream.js";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform("revocation_stream");
}, 60_000);
afterAll(() => platform?.close());

/** A TCP relay to `port` that can freeze: then it forwards nothing either way and closes nothing. */
async function freezableRelay(port: number) {
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, "127.0.0.1");
    inbound.on("error", () => {});
    outbound.on("error", () => {});
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    pairs.push([inbound, outbound]);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => pairs.length,
    freeze() {
      for (const [inbound, outbound] of pairs) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.pause();
      }
    },
    close() {
      for (const [inbound, outbound] of pairs) {
        inbound.destroy();
        outbound.destroy();
      }
      server.close();
    },
  };
}

describe("WatchRevocations (gateway → the real auth service)", () => {
  it("gives up a connection that stopped answering within the keep-alive, and subscribes again on a new one", async () => {
    const relay = await freezableRelay(Number(new URL(platform.urlOf("auth")).port));
    const upstream = createUpstream({ service: "portico.auth.v1.AuthService", targets: [relay.url], protocol: "connect" });
    const signer = platform.gatewayOptions.identity.signer;
    const client = createAuthClient({
      upstream: () => upstream,
      timeoutMs: 2_000,
      callHeaders: () => ({ [identityHeaders.service]: signer.serviceToken("auth") }),
      watchKeepAlive: { intervalMs: 200, timeoutMs: 300 },
    });
    const abort = new AbortController();
    try {
      const first = client.watchRevocations(abort.signal)[Symbol.asyncIterator]();
      expect((await first.next()).value?.snapshot).toBe(true);
      // Quiet but alive: the keep-alive's checks are answered, the stream stays open.
      const quiet = first.next();
      const stillOpen = await Promise.race([quiet.then(() => false), new Promise((r) => setTimeout(() => r(true), 1_000))]);
      expect(stillOpen).toBe(true);

      relay.freeze();
      const startedAt = Date.now();
      const outcome = await quiet.then(
        () => "went on",
        (error: unknown) => ConnectError.from(error).code,
      );
      expect(outcome).toBe(Code.Unavailable);
      expect(Date.now() - startedAt).toBeLessThan(2_000);

      // The next subscription runs on a new connection and hears a Logout at once.
      const again = client.watchRevocations(abort.signal)[Symbol.asyncIterator]();
      expect((await again.next()).value?.snapshot).toBe(true);
      expect(relay.connections()).toBe(2);
      const user = await platform.signUp("watch");
      const sessionId = JSON.parse(Buffer.from(user.token.split(".")[1] as string, "base64url").toString()).sid as string;
      await platform.authClient.logout({}, { headers: bearer(user.token) });
      let next = await again.next();
      while (next.done !== true && !next.value.sessionIds.includes(sessionId)) next = await again.next();
      expect(next.value?.sessionIds).toContain(sessionId);
    } finally {
      abort.abort();
      client.close();
      upstream.close();
      relay.close();
    }
  }, 20_000);
});

describe("WatchRevocations in the gateway's process", () => {
  it("subscribes without loading a fetch implementation (undici: about 4 MB resident at rest)", async () => {
    // The gateway's built auth client in a process of its own (this test runner loads undici
    // itself), subscribed to the real auth service with the gateway's service token.
    const dir = mkdtempSync(join(tmpdir(), "portico-revocation-stream-"));
    const dist = (name: string) => JSON.stringify(new URL(`../dist/${name}`, import.meta.url).href);
    const script = join(dir, "watch.mjs");
    writeFileSync(
      script,
      `import { createAuthClient } from ${dist("auth-client.js")};
import { createUpstream } from ${dist("upstream.js")};
const upstream = createUpstream({ service: "portico.auth.v1.AuthService", targets: [process.env.AUTH_URL], protocol: "connect" });
const client = createAuthClient({ upstream: () => upstream, timeoutMs: 2000, callHeaders: () => ({ [process.env.HEADER]: process.env.TOKEN }) });
const abort = new AbortController();
// Upstream connections do not keep a process alive (the gateway's servers do): this timer does.
const alive = setInterval(() => {}, 1000);
for await (const message of client.watchRevocations(abort.signal)) {
  console.log(JSON.stringify({ snapshot: message.snapshot, undici: process.moduleLoadList.filter((m) => m.includes("undici")) }));
  break;
}
abort.abort();
upstream.close();
clearInterval(alive);
`,
    );
    try {
      const signer = platform.gatewayOptions.identity.signer;
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          [fileURLToPath(new URL(`file://${script}`))],
          {
            env: {
              PATH: process.env.PATH ?? "",
              AUTH_URL: platform.urlOf("auth"),
              HEADER: identityHeaders.service,
              TOKEN: signer.serviceToken("auth"),
            },
            timeout: 10_000,
          },
          (error, stdout, stderr) =>
            error ? reject(new Error(`${error.message} (exit ${error.code}): ${stdout}\n${stderr}`)) : resolve(stdout),
        ),
      );
      expect(JSON.parse(out)).toEqual({ snapshot: true, undici: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});
