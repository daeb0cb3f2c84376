// npm run keys -- <command>: the platform's signing keys on disk (<dir>/keys/, default the data dir).
//   init [services…]      a key pair per service (gateway auth greeter lang by default), the trust bundle
//                         and metrics-token (the gateway admin port's /metrics token), each kept if there
//   rotate <service>      a new key pair <service>.next.key.json; its public key joins the bundle (both trusted)
//   promote <service>     the new key becomes the service's key (restart or roll out the service)
//   retire <service>      the service's old public keys leave the bundle (≥ 60 s after promote)
// For docker compose and Kubernetes: `npm run keys -- init --dir deploy` writes deploy/keys/,
// mounted as secrets (README.md, "Keys").
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  checkServiceName,
  describeStartupError,
  ensureLocalKeys,
  generateServiceKey,
  importServiceKey,
  type Jwk,
  localKeyPaths,
  serviceOfKid,
  servicePorts,
} from "@portico/kit";

function run(argv: string[]): string {
  const dirFlag = argv.indexOf("--dir");
  const root = resolve(dirFlag >= 0 ? (argv[dirFlag + 1] ?? "") : (process.env.PORTICO_DATA_DIR ?? ".data"));
  const args = dirFlag >= 0 ? argv.filter((_, i) => i !== dirFlag && i !== dirFlag + 1) : argv;
  const [command, ...names] = args;
  const paths = localKeyPaths(root);
  const readBundle = () => (JSON.parse(readFileSync(paths.bundle, "utf8")) as { keys: Jwk[] }).keys;
  const writeBundle = (keys: Jwk[]) => writeFileSync(paths.bundle, `${JSON.stringify({ keys }, null, 2)}\n`);
  const one = () => {
    if (names.length !== 1) throw new Error(`usage: npm run keys -- ${command} <service>`);
    return checkServiceName(names[0] as string, "npm run keys");
  };
  switch (command) {
    case "init": {
      const services = names.length > 0 ? names : Object.keys(servicePorts);
      ensureLocalKeys(root, services);
      // The bearer token the gateway's admin /metrics requires off loopback (ADMIN_METRICS_TOKEN_FILE),
      // without a newline: a Secret made with --from-file passes it to ADMIN_METRICS_TOKEN as it is.
      const metricsToken = join(paths.dir, "metrics-token");
      if (!existsSync(metricsToken)) writeFileSync(metricsToken, randomBytes(32).toString("hex"), { mode: 0o600 });
      return `keys of ${services.join(", ")}, the trust bundle and metrics-token in ${paths.dir}`;
    }
    case "rotate": {
      const service = one();
      const next = join(paths.dir, `${service}.next.key.json`);
      if (existsSync(next)) throw new Error(`${next} exists: promote it first`);
      const key = generateServiceKey(service);
      writeFileSync(next, `${JSON.stringify(key.privateJwk, null, 2)}\n`, { mode: 0o600 });
      writeBundle([...readBundle(), key.publicJwk]);
      return `new key ${key.kid} in the bundle; once every service has re-read it (30 s), run: npm run keys -- promote ${service}`;
    }
    case "promote": {
      const service = one();
      const next = join(paths.dir, `${service}.next.key.json`);
      if (!existsSync(next)) throw new Error(`no ${next}: run rotate first`);
      const key = importServiceKey(JSON.parse(readFileSync(next, "utf8")), next);
      renameSync(next, localKeyPaths(root, service).key);
      return `${service} signs with ${key.kid} once restarted; after 60 s more, run: npm run keys -- retire ${service}`;
    }
    case "retire": {
      const service = one();
      const file = localKeyPaths(root, service).key;
      const current = importServiceKey(JSON.parse(readFileSync(file, "utf8")), file).kid;
      const keys = readBundle();
      const kept = keys.filter((k) => serviceOfKid(k.kid) !== service || k.kid === current);
      writeBundle(kept);
      return `${keys.length - kept.length} old key(s) of ${service} left the bundle; ${current} stays`;
    }
    default:
      throw new Error(
        "usage: npm run keys -- init [services…] | rotate <service> | promote <service> | retire <service> [--dir <dir>]",
      );
  }
}

try {
  process.stdout.write(`${run(process.argv.slice(2))}\n`);
} catch (error) {
  process.stderr.write(`keys: ${describeStartupError(error)}\n`);
  process.exit(1);
}
