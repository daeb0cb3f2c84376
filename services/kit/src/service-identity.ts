import { readFileSync } from "node:fs";
import { type CallGuard, createCallGuard } from "./call-guard.js";
import { type CallVerifier, createCallVerifier } from "./call-verifier.js";
import { ConfigError } from "./config-error.js";
import { createEnvReader, type Env } from "./env-reader.js";
import { ensureLocalKeys, localKeyPaths } from "./local-keys.js";
import { importServiceKey, type Jwk, type ServiceKey } from "./service-key.js";
import { createTokenSigner, type TokenSigner } from "./token-signer.js";
import { createTrustBundle, type TrustBundle } from "./trust-bundle.js";

/** Everything a service needs to prove who it is and to check who calls it. */
export interface ServiceIdentity {
  readonly service: string;
  readonly key: ServiceKey;
  /** Signs this service's tokens (and, for the gateway, user assertions). */
  readonly signer: TokenSigner;
  readonly trust: TrustBundle;
  readonly verifier: CallVerifier;
  /** Enforces each method's policy; what `startServiceServer` puts in its interceptor. */
  readonly guard: CallGuard;
  close(): void;
}

export interface ServiceIdentityOptions {
  service: string;
  key: ServiceKey;
  trust: TrustBundle;
  /** Verified tokens remembered for their life (default 10 000). */
  cacheSize?: number;
}

export function createServiceIdentity(options: ServiceIdentityOptions): ServiceIdentity {
  if (options.key.service !== options.service) {
    throw new ConfigError(
      `service ${options.service} was given the key ${options.key.kid}, which belongs to ${options.key.service}`,
    );
  }
  const verifier = createCallVerifier({ service: options.service, trust: options.trust, cacheSize: options.cacheSize });
  return {
    service: options.service,
    key: options.key,
    signer: createTokenSigner({ key: options.key }),
    trust: options.trust,
    verifier,
    guard: createCallGuard(verifier),
    close: () => options.trust.close(),
  };
}

/**
 * The service's key and the trust bundle, from the environment or the data directory:
 * - key: `PORTICO_SERVICE_KEY` (the private JWK itself) or `PORTICO_SERVICE_KEY_FILE`;
 *   otherwise `<data dir>/keys/<service>.key.json`, created on first run;
 * - trust bundle: `PORTICO_TRUST_BUNDLE` (a JWKS), `PORTICO_TRUST_BUNDLE_FILE` or
 *   `PORTICO_TRUST_BUNDLE_URL` (e.g. the gateway's admin `/.well-known/jwks.json`);
 *   otherwise `<data dir>/keys/trust-bundle.json`.
 */
export function loadServiceIdentity(service: string, dataRoot: string, env: Env = process.env): ServiceIdentity {
  const read = createEnvReader(env);
  const inlineKey = read.optionalString("PORTICO_SERVICE_KEY");
  const keyFile = read.optionalString("PORTICO_SERVICE_KEY_FILE");
  const inlineBundle = read.optionalString("PORTICO_TRUST_BUNDLE");
  const bundleFile = read.optionalString("PORTICO_TRUST_BUNDLE_FILE");
  const bundleUrl = read.url("PORTICO_TRUST_BUNDLE_URL", ["http:", "https:"])?.toString();
  if ([inlineBundle, bundleFile, bundleUrl].filter(Boolean).length > 1) {
    throw new ConfigError("set only one of PORTICO_TRUST_BUNDLE, PORTICO_TRUST_BUNDLE_FILE and PORTICO_TRUST_BUNDLE_URL");
  }
  const parse = (text: string, name: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`${name} is not JSON: ${(error as Error).message}`);
    }
  };
  const readText = (file: string, name: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (error) {
      throw new ConfigError(`${name}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const local = !inlineKey && !keyFile;
  const localBundle = !inlineBundle && !bundleFile && !bundleUrl;
  if (local || localBundle) ensureLocalKeys(dataRoot, local ? [service] : []);
  const keyPath = keyFile ?? localKeyPaths(dataRoot, service).key;
  const key = inlineKey
    ? importServiceKey(parse(inlineKey, "PORTICO_SERVICE_KEY") as Jwk, "PORTICO_SERVICE_KEY")
    : importServiceKey(parse(readText(keyPath, "PORTICO_SERVICE_KEY_FILE"), keyPath) as Jwk, keyPath);
  const trust = inlineBundle
    ? createTrustBundle({ jwks: parse(inlineBundle, "PORTICO_TRUST_BUNDLE") as { keys: Jwk[] } })
    : bundleUrl
      ? createTrustBundle({ url: bundleUrl })
      : createTrustBundle({ file: bundleFile ?? localKeyPaths(dataRoot).bundle });
  return createServiceIdentity({ service, key, trust });
}
