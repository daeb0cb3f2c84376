import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { createCallVerifier } from "../src/call-verifier.js";
import { ensureLocalKeys, localKeyPaths } from "../src/local-keys.js";
import { loadServiceIdentity } from "../src/service-identity.js";
import { generateServiceKey } from "../src/service-key.js";
import { createTokenSigner } from "../src/token-signer.js";
import { createTrustBundle } from "../src/trust-bundle.js";

const dir = mkdtempSync(join(tmpdir(), "portico-trust-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const user = { userId: "u1", tier: "free", roles: [], sessionId: "s1", clientAddress: "198.51.100.1" };
const header = (assertion: string) => ({ get: (name: string) => (name === "x-portico-identity" ? assertion : null) });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: unknown) => ConnectError.from(e).code,
  );

describe("trust bundle", () => {
  it("rotation drops no call: old and new gateway keys both verify during the overlap, then the old one is gone", async () => {
    const file = join(dir, "bundle.json");
    const oldKey = generateServiceKey("gateway");
    const newKey = generateServiceKey("gateway");
    writeFileSync(file, JSON.stringify({ keys: [oldKey.publicJwk] }));
    const trust = createTrustBundle({ file, refreshMs: 100 });
    const verifier = createCallVerifier({ service: "greeter", trust, cacheSize: 0 });
    const signedBy = (key: typeof oldKey) => createTokenSigner({ key }).assertion(user, "greeter").token;
    expect((await verifier.verify(header(signedBy(oldKey)))).user?.userId).toBe("u1");

    // 1. The new public key joins the bundle; 2. the gateway switches keys: both verify.
    writeFileSync(file, JSON.stringify({ keys: [oldKey.publicJwk, newKey.publicJwk] }));
    await new Promise((r) => setTimeout(r, 150));
    expect((await verifier.verify(header(signedBy(newKey)))).user?.userId).toBe("u1");
    expect((await verifier.verify(header(signedBy(oldKey)))).user?.userId).toBe("u1");

    // 3. After the old key's last assertion expired, it leaves the bundle.
    writeFileSync(file, JSON.stringify({ keys: [newKey.publicJwk] }));
    await new Promise((r) => setTimeout(r, 300));
    expect(await codeOf(verifier.verify(header(signedBy(oldKey))))).toBe(Code.Unauthenticated);
    expect((await verifier.verify(header(signedBy(newKey)))).user?.userId).toBe("u1");
    trust.close();
  });

  it("fetches the bundle from a JWKS URL (the gateway's admin endpoint) and looks again for an unknown kid", async () => {
    const key = generateServiceKey("gateway");
    let served = [generateServiceKey("gateway").publicJwk];
    const server = createServer((_req, res) => res.end(JSON.stringify({ keys: served })));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as { port: number };
    const trust = createTrustBundle({ url: `http://127.0.0.1:${port}/.well-known/jwks.json` });
    const verifier = createCallVerifier({ service: "greeter", trust });
    const assertion = createTokenSigner({ key }).assertion(user, "greeter").token;
    expect(await codeOf(verifier.verify(header(assertion)))).toBe(Code.Unauthenticated);
    served = [key.publicJwk];
    await new Promise((r) => setTimeout(r, 1100));
    expect((await verifier.verify(header(assertion))).user?.clientAddress).toBe("198.51.100.1");
    trust.close();
    server.close();
  });

  it("refuses a bundle holding private keys, or keys of another kind, naming the key", () => {
    const key = generateServiceKey("gateway");
    expect(() => createTrustBundle({ jwks: { keys: [key.privateJwk] } })).toThrow(/holds private key material/);
    expect(() => createTrustBundle({ jwks: { keys: [{ kty: "oct", k: "c2VjcmV0", kid: "gateway.x" }] } })).toThrow(
      /gateway\.x is oct/,
    );
    expect(() => createTrustBundle({ jwks: { keys: [{ ...key.publicJwk, kid: "nokid" }] } })).toThrow(/"nokid"/);
  });

  it("npm start's local keys: one key pair per service, readable by its owner only, and one bundle of public keys", async () => {
    const root = join(dir, "data");
    ensureLocalKeys(root, ["gateway", "auth", "greeter"]);
    const bundle = JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(localKeyPaths(root).bundle, "utf8")));
    expect(bundle.keys.map((k: { kid: string }) => k.kid.split(".")[0]).sort()).toEqual(["auth", "gateway", "greeter"]);
    expect(bundle.keys.every((k: Record<string, unknown>) => !("d" in k))).toBe(true);
    const { statSync } = await import("node:fs");
    expect(statSync(localKeyPaths(root, "auth").key).mode & 0o777).toBe(0o600);
    // A second run keeps them.
    ensureLocalKeys(root, ["gateway", "auth", "greeter"]);
    const again = JSON.parse((await import("node:fs")).readFileSync(localKeyPaths(root).bundle, "utf8"));
    expect(again).toEqual(bundle);
    const greeter = loadServiceIdentity("greeter", root, {});
    const gateway = loadServiceIdentity("gateway", root, {});
    const assertion = gateway.signer.assertion(user, "greeter").token;
    expect((await greeter.verifier.verify(header(assertion))).chain).toEqual(["gateway"]);
    // From the environment instead (production): the key itself and an inline bundle.
    const env = {
      PORTICO_SERVICE_KEY: JSON.stringify(generateServiceKey("lang").privateJwk),
      PORTICO_TRUST_BUNDLE: JSON.stringify(bundle),
    };
    expect(loadServiceIdentity("lang", join(dir, "unused"), env).key.service).toBe("lang");
    expect(() => loadServiceIdentity("auth", join(dir, "unused"), env)).toThrow(/belongs to lang/);
    expect(() => loadServiceIdentity("auth", root, { PORTICO_TRUST_BUNDLE: "{" })).toThrow(/PORTICO_TRUST_BUNDLE is not JSON/);
  });
});
