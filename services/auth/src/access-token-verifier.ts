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

/** A valid token's claims and the `kid` of the key its signature verified with. */
export interface VerifiedAccessToken {
  claims: AccessClaims;
  kid: string;
}

/** A valid token's claims and key id; rejects with `unauthenticated` for any other string (or with `keyFor`'s error). */
export type AccessTokenVerifier = (token: string) => Promise<VerifiedAccessToken>;

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
/** Distinct checked headers remembered (tokens of this issuer have one per signing key). */
const MAX_HEADERS = 64;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const checkedKeys = new WeakSet<KeyObject>();

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(`access token ${reason}`, Code.Unauthenticated);
}

/** The value of a base64url character (the text is checked against the alphabet before). */
function sextet(code: number): number {
  if (code >= 97) return code - 71; // a-z: 26-51
  if (code >= 65) return code - 65; // A-Z: 0-25
  if (code >= 48) return code + 4; // 0-9: 52-61
  return code === 45 ? 62 : 63; // - and _
}

/**
 * The bytes of a canonical base64url segment, or undefined. Buffer's own decoder skips characters
 * outside the alphabet and ignores stray trailing bits, so the text is checked first (`checked`:
 * the caller already tested it against the alphabet) and the unused low bits of its last
 * character must be zero (one encoding per byte string).
 */
function decodeSegment(text: string, checked = false): Buffer | undefined {
  const rest = text.length % 4;
  if (rest === 1 || (!checked && !BASE64URL.test(text))) return undefined;
  if (rest !== 0 && (sextet(text.charCodeAt(text.length - 1)) & (rest === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  return Buffer.from(text, "base64url");
}

/** A JSON object from a base64url segment (strict UTF-8, as jose decodes it), or undefined. */
function jsonObject(text: string, checked = false): Record<string, unknown> | undefined {
  const bytes = decodeSegment(text, checked);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** What the per-token path needs of a protected header that passed its checks. */
interface CheckedHeader {
  kid: string;
  /** `typ` is at+jwt (reported only after the signature check, as jose does). */
  typ: boolean;
}

/**
 * The protected header's checks, which depend on its text alone: a JSON object with `alg` exactly
 * ES256, no header naming a key, no `crit` or `b64`, a non-empty string `kid`. Throws as the
 * verifier answers.
 */
function checkHeader(text: string): CheckedHeader {
  const header = jsonObject(text);
  if (header === undefined) throw unauthenticated("is malformed");
  if (header.alg !== ALG) throw unauthenticated("is signed with an algorithm that is not accepted");
  if (KEY_REFERENCE_HEADERS.some((name) => name in header)) throw unauthenticated("names its own key, which is never trusted");
  // jose understands only the b64 extension; tokens of this issuer use none.
  if ("crit" in header || "b64" in header) throw unauthenticated("is malformed");
  const { kid, typ } = header;
  if (typeof kid !== "string" || kid === "") throw unauthenticated("has no key id");
  return { kid, typ: typeof typ === "string" && normalizeTyp(typ) === TYP };
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

  // Headers that passed their checks, by text (a handful: one per signing key; cleared when full,
  // as the texts are the caller's choice).
  const headers = new Map<string, CheckedHeader>();
  const keyOf = (kid: string): KeyObject | Promise<KeyObject> => {
    const key = keyFor(kid);
    return key instanceof Promise ? key.then(checkKey) : checkKey(key);
  };

  return async (token) => {
    if (typeof token !== "string") throw unauthenticated("is malformed");
    const firstDot = token.indexOf(".");
    const secondDot = firstDot < 0 ? -1 : token.indexOf(".", firstDot + 1);
    if (secondDot < 0 || token.indexOf(".", secondDot + 1) >= 0) throw unauthenticated("is malformed");
    // Every token of one key carries the same header: its checks are made once per header text.
    const headerText = token.slice(0, firstDot);
    let header = headers.get(headerText);
    if (header === undefined) {
      header = checkHeader(headerText);
      if (headers.size >= MAX_HEADERS) headers.clear();
      headers.set(headerText, header);
    }
    const found = keyOf(header.kid);
    const key = found instanceof Promise ? await found : found;

    const payloadText = token.slice(firstDot + 1, secondDot);
    const signature = decodeSegment(token.slice(secondDot + 1));
    if (signature === undefined || !BASE64URL.test(payloadText)) throw unauthenticated("is malformed");
    if (signature.length !== SIGNATURE_LENGTH) throw unauthenticated("has an invalid signature");
    const input = Buffer.from(token.slice(0, secondDot), "latin1");
    if (!verify("sha256", input, { key, dsaEncoding: "ieee-p1363" }, signature)) {
      throw unauthenticated("has an invalid signature");
    }

    const claims = jsonObject(payloadText, true);
    if (claims === undefined) throw unauthenticated("is malformed");
    if (!header.typ) throw unacceptable("typ");
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
      claims: {
        userId: sub,
        sessionId: sid,
        tier,
        roles: roles.map(String),
        issuedAtMs: typeof iatMs === "number" ? iatMs : iat * 1000,
        expiresAtMs: exp * 1000,
      },
      kid: header.kid,
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
