import { type KeyObject, verify } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AccessClaims } from "./access-tokens.js";

export interface AccessTokenVerifierOptions {
  /**
   * The public key of `kid` (a string the token names); throws `unauthenticated` for a key that is
   * not known (its other errors, such as a key store that cannot be read, pass through). Called
   * only for a token whose header passed every other check.
   */
  keyFor(kid: string): KeyObject | Promise<KeyObject>;
  issuer: string;
  audience: string;
  /** Clock skew tolerated for `exp` and `nbf` (seconds, 0 to 30). */
  skewSeconds: number;
}

/** The claims of a valid token; rejects with `unauthenticated` for any other string (or with `keyFor`'s error). */
export type AccessTokenVerifier = (token: string) => Promise<AccessClaims>;

/** The one algorithm accepted: ECDSA P-256 with SHA-256, its signature r‖s, 32 bytes each. */
const ALG = "ES256";
const SIGNATURE_LENGTH = 64;
/** RFC 9068's media type, as jose compares it (`typ` lowercased, `application/` added when it has no `/`). */
const TYP = "application/at+jwt";
/** Header fields that would make a verifier fetch or trust a key named by the token itself. */
const KEY_REFERENCE_HEADERS = ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"];
/** Claims a token must carry (besides `iss` and `aud`, compared below). */
const REQUIRED_CLAIMS = ["sub", "exp", "nbf", "iat", "jti", "sid"];
/** Canonical unpadded base64url: no `=`, no whitespace, no other alphabet, no length ≡ 1 (mod 4). */
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const checkedKeys = new WeakSet<KeyObject>();

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(`access token ${reason}`, Code.Unauthenticated);
}

/**
 * The bytes of a canonical base64url segment, or undefined. Buffer's own decoder skips characters
 * outside the alphabet and ignores stray trailing bits, so the text is checked first and the
 * decoded bytes must encode back to exactly the same text.
 */
function decodeSegment(text: string): Buffer | undefined {
  if (text.length % 4 === 1 || !BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  // Unused low bits of the last character must be zero (one encoding per byte string).
  if (text.length % 4 !== 0 && bytes.toString("base64url") !== text) return undefined;
  return bytes;
}

/** A JSON object from a base64url segment (strict UTF-8, as jose decodes it), or undefined. */
function jsonObject(text: string): Record<string, unknown> | undefined {
  const bytes = decodeSegment(text);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A claim that fails its check, in the words the auth service has always used (nbf: not valid yet). */
function unacceptable(claim: string): ConnectError {
  return unauthenticated(claim === "nbf" ? "is not valid yet" : `has an unacceptable "${claim}" claim`);
}

/** A numeric date claim: absent is fine here (presence is checked before), anything but a number is not. */
function numericDate(claims: Record<string, unknown>, claim: string): number {
  const value = claims[claim];
  if (typeof value !== "number") throw unacceptable(claim);
  return value;
}

/**
 * Verifies ES256 access tokens (compact JWS) with node:crypto on the calling thread: what jose's
 * `jwtVerify` checks for the auth service's options, in the same order and with the same answers,
 * without its WebCrypto promise jobs, key imports and copies, which cost about twice the
 * signature check itself. Stricter than jose where a token of this issuer never goes: only
 * canonical unpadded base64url, and no `crit` or `b64` header (jose accepts `crit: ["b64"]`).
 *
 * Checks: exactly three dot-separated segments; a header that is a JSON object with
 * `alg` exactly ES256, no header naming a key (`jku`, `jwk`, `x5u`, `x5c`, `x5t`, `x5t#S256`), a
 * known non-empty `kid`; a 64-byte signature that verifies with that P-256 key over the first two
 * segments as sent; a payload that is a JSON object; `typ` at+jwt; `sub`, `exp`, `nbf`, `iat`,
 * `jti`, `sid`, `iss` and `aud` present; `iss` the issuer; `aud` the audience or a list holding it;
 * `iat`, `nbf` and `exp` numbers, `nbf` ≤ now + skew, `exp` > now − skew (whole seconds, as jose);
 * `sub`, `sid` and `tier` strings and `roles` a list.
 */
export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const { keyFor, issuer, audience, skewSeconds } = options;
  if (typeof keyFor !== "function") throw new Error("access token verifier: keyFor must be a function");
  if (typeof issuer !== "string" || issuer === "" || typeof audience !== "string" || audience === "") {
    throw new Error("access token verifier: issuer and audience must be non-empty strings");
  }
  if (!(skewSeconds >= 0 && skewSeconds <= 30)) {
    throw new Error(`access token verifier: skewSeconds ${skewSeconds} is not valid; expected 0 to 30`);
  }

  const keyOf = (kid: string): KeyObject | Promise<KeyObject> => {
    const key = keyFor(kid);
    return key instanceof Promise ? key.then(checkKey) : checkKey(key);
  };

  return async (token) => {
    if (typeof token !== "string") throw unauthenticated("is malformed");
    const firstDot = token.indexOf(".");
    const secondDot = firstDot < 0 ? -1 : token.indexOf(".", firstDot + 1);
    if (secondDot < 0 || token.indexOf(".", secondDot + 1) >= 0) throw unauthenticated("is malformed");
    const header = jsonObject(token.slice(0, firstDot));
    if (header === undefined) throw unauthenticated("is malformed");
    if (header.alg !== ALG) throw unauthenticated("is signed with an algorithm that is not accepted");
    if (KEY_REFERENCE_HEADERS.some((name) => name in header)) throw unauthenticated("names its own key, which is never trusted");
    // jose understands only the b64 extension; tokens of this issuer use none.
    if ("crit" in header || "b64" in header) throw unauthenticated("is malformed");
    const { kid } = header;
    if (typeof kid !== "string" || kid === "") throw unauthenticated("has no key id");
    const found = keyOf(kid);
    const key = found instanceof Promise ? await found : found;

    const payloadText = token.slice(firstDot + 1, secondDot);
    const signature = decodeSegment(token.slice(secondDot + 1));
    if (signature === undefined || !BASE64URL.test(payloadText)) throw unauthenticated("is malformed");
    if (signature.length !== SIGNATURE_LENGTH) throw unauthenticated("has an invalid signature");
    const input = Buffer.from(token.slice(0, secondDot), "latin1");
    if (!verify("sha256", input, { key, dsaEncoding: "ieee-p1363" }, signature)) {
      throw unauthenticated("has an invalid signature");
    }

    const claims = jsonObject(payloadText);
    if (claims === undefined) throw unauthenticated("is malformed");
    if (typeof header.typ !== "string" || normalizeTyp(header.typ) !== TYP) throw unacceptable("typ");
    // jose reports the last missing claim of its list first.
    for (const claim of ["iss", "aud", ...REQUIRED_CLAIMS.slice().reverse()]) {
      if (!Object.hasOwn(claims, claim)) throw unacceptable(claim);
    }
    if (claims.iss !== issuer) throw unacceptable("iss");
    const aud = claims.aud;
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) throw unacceptable("aud");
    const now = Math.floor(Date.now() / 1000);
    const iat = numericDate(claims, "iat");
    const nbf = numericDate(claims, "nbf");
    if (nbf > now + skewSeconds) throw unacceptable("nbf");
    const exp = numericDate(claims, "exp");
    if (exp <= now - skewSeconds) throw unauthenticated("has expired");

    const { sub, sid, tier, roles } = claims;
    if (typeof sub !== "string" || typeof sid !== "string" || typeof tier !== "string" || !Array.isArray(roles)) {
      throw unauthenticated("is missing claims");
    }
    const iatMs = claims.iat_ms;
    return {
      userId: sub,
      sessionId: sid,
      tier,
      roles: roles.map(String),
      issuedAtMs: typeof iatMs === "number" ? iatMs : iat * 1000,
      expiresAtMs: exp * 1000,
    };
  };
}

function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes("/") ? lower : `application/${lower}`;
}

/** A key the verifier may use: the public half of a P-256 key (checked once per key object). */
function checkKey(key: KeyObject): KeyObject {
  if (checkedKeys.has(key)) return key;
  if (key.type !== "public" || key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw unauthenticated("is signed with an unknown key");
  }
  checkedKeys.add(key);
  return key;
}
