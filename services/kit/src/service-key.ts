import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { ConfigError } from "./config-error.js";
import { checkServiceName } from "./service-directory.js";

/** Signature algorithms of Portico tokens; anything else is refused. */
export type KeyAlgorithm = "EdDSA" | "ES256";

/** A JSON Web Key as stored in key files and trust bundles. */
export type Jwk = Record<string, unknown> & { kid?: string; alg?: string; kty?: string };

/** One service's signing key: the private half stays in the service, the public half goes in the trust bundle. */
export interface ServiceKey {
  /** The service that owns the key (the part of `kid` before the first "."). */
  readonly service: string;
  /** `<service>.<id>`: names the key in token headers and trust bundles. */
  readonly kid: string;
  readonly alg: KeyAlgorithm;
  readonly privateKey: KeyObject;
  /** The public JWK with `kid`, `alg` and `use`, for the trust bundle. */
  readonly publicJwk: Jwk;
  /** The private JWK, for the key file or secret. */
  readonly privateJwk: Jwk;
}

/** The service named by a key id `<service>.<id>`, or undefined. */
export function serviceOfKid(kid: unknown): string | undefined {
  if (typeof kid !== "string") return undefined;
  const dot = kid.indexOf(".");
  return dot > 0 ? kid.slice(0, dot) : undefined;
}

function fromKeyObject(service: string, kid: string, alg: KeyAlgorithm, privateKey: KeyObject): ServiceKey {
  const pub = createPublicKey(privateKey).export({ format: "jwk" }) as Jwk;
  const priv = privateKey.export({ format: "jwk" }) as Jwk;
  return {
    service,
    kid,
    alg,
    privateKey,
    publicJwk: { ...pub, kid, alg, use: "sig" },
    privateJwk: { ...priv, kid, alg, use: "sig" },
  };
}

/** A new key pair for `service` (Ed25519 unless ES256 is asked for). */
export function generateServiceKey(service: string, alg: KeyAlgorithm = "EdDSA"): ServiceKey {
  checkServiceName(service, "generateServiceKey");
  const date = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  const kid = `${service}.${date}-${randomBytes(4).toString("hex")}`;
  const { privateKey } = alg === "EdDSA" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return fromKeyObject(service, kid, alg, privateKey);
}

/** Reads a private JWK (from a file or a secret); `where` names the source in errors. */
export function importServiceKey(jwk: Jwk, where: string): ServiceKey {
  const service = serviceOfKid(jwk.kid);
  if (!service)
    throw new ConfigError(`${where}: the key has no kid of the form "<service>.<id>" (kid ${JSON.stringify(jwk.kid)})`);
  checkServiceName(service, where);
  const alg = jwk.alg === "ES256" || (jwk.kty === "EC" && jwk.crv === "P-256") ? "ES256" : "EdDSA";
  if (!(jwk.kty === "OKP" && jwk.crv === "Ed25519") && !(jwk.kty === "EC" && jwk.crv === "P-256")) {
    throw new ConfigError(
      `${where}: key ${jwk.kid} is ${jwk.kty}/${String(jwk.crv)}; expected an Ed25519 (EdDSA) or P-256 (ES256) key`,
    );
  }
  if (typeof jwk.d !== "string")
    throw new ConfigError(`${where}: key ${jwk.kid} is a public key; the service needs its private key`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" });
  } catch (error) {
    throw new ConfigError(`${where}: key ${jwk.kid} cannot be read: ${(error as Error).message}`);
  }
  return fromKeyObject(service, jwk.kid as string, alg, privateKey);
}
