// Hostile callers at the auth port, each refused with the right code and changing nothing:
// forged, replayed, expired or misaddressed assertions and service tokens, and a backend's own key
// used to claim the admin role. The auth service is real (its database too); tokens are built here.
import { createHmac, type KeyObject, sign } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { createTokenSigner, identityHeaders, type ServiceKey, tokenTypes } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { ADMIN_PERMISSION } from "../src/auth-service.js";
import { codeOf, identityOf, signUp, storedState, useTestAuth } from "./test-auth.js";

const t = useTestAuth("zero_trust");

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A compact JWS with any header and payload, signed by `key` (EdDSA) or HMAC `secret`. */
function jws(header: Record<string, unknown>, payload: Record<string, unknown>, with_: { key?: KeyObject; hmac?: string }) {
  const input = `${b64(header)}.${b64(payload)}`;
  if (with_.hmac !== undefined) return `${input}.${createHmac("sha256", with_.hmac).update(input).digest("base64url")}`;
  if (with_.key !== undefined) return `${input}.${sign(null, Buffer.from(input), with_.key).toString("base64url")}`;
  return `${input}.`;
}

function userClaims(userId: string, audience: string, roles: string[] = []) {
  return {
    iss: "gateway",
    aud: audience,
    sub: userId,
    tier: "free",
    roles,
    sid: "s",
    cip: "203.0.113.7",
    iat: now(),
    exp: now() + 60,
  };
}

/** A client sending exactly `headers` on every call. */
const raw = (headers: Record<string, string>) => t.withHeaders(headers);

/** Runs `attempt`, expects `code`, and that nothing the auth service stores changed. */
async function refusedAndUnchanged(attempt: () => Promise<unknown>, code: Code) {
  const before = await storedState(t.db);
  expect(await codeOf(attempt())).toBe(code);
  expect(await storedState(t.db)).toEqual(before);
}

describe("zero trust at the auth port", () => {
  it("control: the gateway's assertion for auth, and a legitimate delegation, are accepted", async () => {
    const { user, sessionId } = await signUp(t);
    const me = await t.as(identityOf(user, sessionId)).getMe({});
    expect(me.user?.id).toBe(user.id);
    // The greeter passes on a user who called it: its own token plus the assertion addressed to it.
    const delegated = raw({
      [identityHeaders.assertion]: t.keys.assertion({ userId: user.id, sessionId }, "greeter"),
      [identityHeaders.service]: createTokenSigner({ key: t.keys.keys.greeter as ServiceKey }).serviceToken("auth"),
    });
    expect((await delegated.getMe({})).user?.id).toBe(user.id);
  });

  it("refuses an HS256 assertion (keyed with the gateway's public key) and an alg none one", async () => {
    const { user } = await signUp(t);
    const gatewayKid = t.keys.keys.gateway?.kid;
    const publicJwk = JSON.stringify(t.keys.keys.gateway?.publicJwk);
    const claims = userClaims(user.id, "auth", [ADMIN_PERMISSION]);
    const hs256 = jws({ alg: "HS256", kid: gatewayKid, typ: tokenTypes.user }, claims, { hmac: publicJwk });
    const none = jws({ alg: "none", kid: gatewayKid, typ: tokenTypes.user }, claims, {});
    for (const assertion of [hs256, none]) {
      await refusedAndUnchanged(() => raw({ [identityHeaders.assertion]: assertion }).logoutAll({}), Code.Unauthenticated);
    }
  });

  it("refuses a valid assertion replayed to another service, and an expired one", async () => {
    const { user, sessionId } = await signUp(t);
    const forGreeter = t.keys.assertion({ userId: user.id, sessionId }, "greeter");
    await refusedAndUnchanged(() => raw({ [identityHeaders.assertion]: forGreeter }).logoutAll({}), Code.Unauthenticated);
    const expired = t.keys.assertion({ userId: user.id, sessionId }, "auth", now() - 120);
    await refusedAndUnchanged(() => raw({ [identityHeaders.assertion]: expired }).logoutAll({}), Code.Unauthenticated);
  });

  it("refuses a user assertion signed by a service's key, whatever issuer or kid it claims", async () => {
    const { user, sessionId } = await signUp(t);
    const greeterKey = t.keys.keys.greeter as ServiceKey;
    const asGreeter = createTokenSigner({ key: greeterKey }).assertion(
      { ...identityOf(user, sessionId), roles: [ADMIN_PERMISSION] },
      "auth",
    ).token;
    const claimsGateway = jws(
      { alg: "EdDSA", kid: t.keys.keys.gateway?.kid, typ: tokenTypes.user },
      userClaims(user.id, "auth", [ADMIN_PERMISSION]),
      { key: greeterKey.privateKey },
    );
    for (const assertion of [asGreeter, claimsGateway]) {
      await refusedAndUnchanged(
        () => raw({ [identityHeaders.assertion]: assertion }).setUserRoles({ userId: user.id, roles: [ADMIN_PERMISSION] }),
        Code.Unauthenticated,
      );
    }
    expect((await t.as(identityOf(user, sessionId)).getMe({})).user?.roles).toEqual([]);
  });

  it("refuses a service token addressed to another service, and one that claims a long life", async () => {
    const greeterKey = t.keys.keys.greeter as ServiceKey;
    const forLang = createTokenSigner({ key: greeterKey }).serviceToken("lang");
    const gatewayToLang = createTokenSigner({ key: t.keys.keys.gateway as ServiceKey }).serviceToken("lang");
    const longLived = jws(
      { alg: "EdDSA", kid: t.keys.keys.gateway?.kid, typ: tokenTypes.service },
      { iss: "gateway", sub: "gateway", aud: "auth", iat: now(), exp: now() + 3600 },
      { key: (t.keys.keys.gateway as ServiceKey).privateKey },
    );
    for (const token of [forLang, gatewayToLang, longLived]) {
      await refusedAndUnchanged(
        () => raw({ [identityHeaders.service]: token }).authenticate({ accessToken: "x" }),
        Code.Unauthenticated,
      );
    }
  });

  it("refuses a delegation with an assertion addressed to another service or altered to another user", async () => {
    const { user, sessionId } = await signUp(t);
    const victim = await signUp(t);
    const greeterToken = createTokenSigner({ key: t.keys.keys.greeter as ServiceKey }).serviceToken("auth");
    // The user called lang, not the greeter: the greeter cannot pass them on.
    const forLang = t.keys.assertion({ userId: user.id, sessionId }, "lang");
    // The user called the greeter, which swaps in another user's id.
    const [h, p, s] = t.keys.assertion({ userId: user.id, sessionId }, "greeter").split(".");
    const swapped = `${h}.${b64({ ...JSON.parse(Buffer.from(p as string, "base64url").toString()), sub: victim.user.id })}.${s}`;
    for (const assertion of [forLang, swapped]) {
      await refusedAndUnchanged(
        () => raw({ [identityHeaders.assertion]: assertion, [identityHeaders.service]: greeterToken }).logoutAll({}),
        Code.Unauthenticated,
      );
    }
  });

  it("a backend's own key cannot claim the admin role: SetUserRoles refuses it", async () => {
    const { user, sessionId } = await signUp(t);
    const greeterSigner = createTokenSigner({ key: t.keys.keys.greeter as ServiceKey });
    const grant = { userId: user.id, roles: [ADMIN_PERMISSION] };
    // Its own token alone: a service is nobody's user.
    await refusedAndUnchanged(
      () => raw({ [identityHeaders.service]: greeterSigner.serviceToken("auth") }).setUserRoles(grant),
      Code.Unauthenticated,
    );
    // Passing on a real (non-admin) user who called it: the user's roles, not the service's wish.
    await refusedAndUnchanged(
      () =>
        raw({
          [identityHeaders.service]: greeterSigner.serviceToken("auth"),
          [identityHeaders.assertion]: t.keys.assertion({ userId: user.id, sessionId }, "greeter"),
        }).setUserRoles(grant),
      Code.PermissionDenied,
    );
    // An assertion of an admin signed with its own key.
    const forged = greeterSigner.assertion({ ...identityOf(user, sessionId), roles: [ADMIN_PERMISSION] }, "auth").token;
    await refusedAndUnchanged(() => raw({ [identityHeaders.assertion]: forged }).setUserRoles(grant), Code.Unauthenticated);
    expect((await t.as(identityOf(user, sessionId)).getMe({})).user?.roles).toEqual([]);
  });

  it("Authenticate and WatchRevocations: unauthenticated without a service token, permission_denied from a service not listed", async () => {
    const { tokens } = await signUp(t);
    const direct = createClient(AuthService, createConnectTransport({ baseUrl: t.auth.url, httpVersion: "2" }));
    await refusedAndUnchanged(() => direct.authenticate({ accessToken: tokens.accessToken }), Code.Unauthenticated);
    await refusedAndUnchanged(
      () => t.asService("greeter").authenticate({ accessToken: tokens.accessToken }),
      Code.PermissionDenied,
    );
    const drain = async (stream: AsyncIterable<unknown>) => {
      for await (const _ of stream) return;
    };
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 3000);
    expect(await codeOf(drain(direct.watchRevocations({}, { signal: abort.signal })))).toBe(Code.Unauthenticated);
    expect(await codeOf(drain(t.asService("greeter").watchRevocations({}, { signal: abort.signal })))).toBe(
      Code.PermissionDenied,
    );
    // The gateway, listed in callers, is answered.
    expect((await t.gateway.authenticate({ accessToken: tokens.accessToken })).identity?.userId).toBeTruthy();
  });
});
