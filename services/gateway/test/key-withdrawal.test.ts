// A signing key deleted from the auth database (a leaked key) stops its tokens at the gateway within
// a second, although the gateway had cached them as valid for a minute (authCacheTtlMs): the auth
// service announces the withdrawal on WatchRevocations and the gateway evicts them.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";

// Its own platform: this deletes the key every token of it is signed with.
let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform("key_withdrawal", { authCacheTtlMs: 60_000 });
}, 60_000);
afterAll(() => platform?.close());

/** The gateway's count of auth decisions answered from its cache (admin /metrics). */
const cacheHits = async () => {
  const text = await (await fetch(`${platform.gateway.adminUrl}/metrics`)).text();
  return Number(/^portico_gateway_auth_cache_hits_total (\d+)$/m.exec(text)?.[1]);
};

const kidOf = (token: string) =>
  (JSON.parse(Buffer.from(token.split(".")[0] as string, "base64url").toString()) as { kid: string }).kid;

describe("withdrawing a signing key", () => {
  it("refuses its cached tokens at the gateway within a second; a new login works at once", async () => {
    const greeter = platform.greeterClient();
    const user = await platform.signUp("withdrawn");
    await greeter.greet({ name: "before" }, { headers: bearer(user.token) });
    const hits = await cacheHits();
    await greeter.greet({ name: "cached" }, { headers: bearer(user.token) });
    expect(await cacheHits()).toBe(hits + 1);

    await platform.db("auth").query("delete from signing_keys where kid = $1", [kidOf(user.token)]);
    const deadline = Date.now() + 1_000;
    let error: ConnectError | undefined;
    while (Date.now() < deadline) {
      error = await greeter.greet({ name: "after" }, { headers: bearer(user.token) }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      if (error !== undefined) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(error?.code).toBe(Code.Unauthenticated);

    const again = await platform.signUp("after-withdrawal");
    expect(kidOf(again.token)).not.toBe(kidOf(user.token));
    expect((await greeter.greet({ name: "Ada" }, { headers: bearer(again.token) })).greeting).toBe("Hello, Ada!");
  });
});
