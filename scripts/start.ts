// npm start: runs one embedded PostgreSQL server under .data/postgres (unless DATABASE_URL is set), then
// every service of portico.services.json and the gateway as separate processes from their compiled JavaScript, each on its own
// database; prefixes their logs, prints one line per service with its URL as it answers ready, then the
// gateway's public URL; restarts a process that exits unexpectedly (scripts/supervisor.ts), and stops
// them all on Ctrl-C, the database last. A process that fails before the platform is ready, or keeps
// failing to start after a crash, ends the whole platform with its one-line reason.
import { existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createEnvReader,
  describeStartupError,
  ensureLocalKeys,
  platform,
  prepareEmbeddedPostgres,
} from "@portico/kit/local-runtime";
import { checkPortFree } from "./check-port-free.js";
import { defaultRestartPolicy } from "./restart-policy.js";
import type { SupervisedService } from "./supervisor.js";
import { createSupervisor } from "./supervisor.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dev = process.argv.includes("--dev");
const read = createEnvReader();

interface Child {
  name: string;
  main: string;
  ports: [env: string, port: number][];
  color: number;
  /** Node flags before the entry point. */
  nodeFlags?: string[];
}

/** Log prefix colours (ANSI), one per backend in the definition's order; the gateway's is yellow. */
const palette = [35, 32, 36, 34, 31, 95, 96, 92, 94, 91];

/**
 * A backend of a local platform idles most of the time: a young generation of 1 MB semi-spaces (V8's
 * default grows to 16 MB) keeps 7 to 10 MB less resident in each (README, "Footprint and start-up
 * time"). The bench starts its backends itself, without this.
 */
const backendNodeFlags = ["--max-semi-space-size=1"];

/** The backends of the platform definition (portico.services.json) in its order, then the gateway. */
function children(): Child[] {
  const envName = (name: string) => name.toUpperCase().replaceAll("-", "_");
  return [
    ...platform.services.map((service, i) => ({
      name: service.name,
      main: `services/${service.name}`,
      ports: [[`${envName(service.name)}_PORT`, read.port(`${envName(service.name)}_PORT`, service.port)]] as [string, number][],
      color: palette[i % palette.length] as number,
      // As they run everywhere (portico.services.json), then the local platform's own.
      nodeFlags: [...platform.serviceNodeFlags, ...backendNodeFlags],
    })),
    {
      name: "gateway",
      main: "services/gateway",
      ports: [
        ["GATEWAY_PORT", read.port("GATEWAY_PORT", platform.gateway.port)],
        ["ADMIN_PORT", read.port("ADMIN_PORT", platform.gateway.adminPort)],
      ],
      color: 33,
      // As it runs everywhere (portico.services.json; services/gateway/README.md, "Run").
      nodeFlags: platform.gateway.nodeFlags,
    },
  ];
}

/**
 * Without DATABASE_URL: the embedded PostgreSQL server under the data directory, supervised like the
 * services, and each service's `<SERVICE>_DATABASE_URL` on it (its database's name from
 * portico.services.json). With it: nothing to run (each service appends its name to DATABASE_URL's).
 */
async function database(dataRoot: string): Promise<{ service?: SupervisedService; env: Record<string, string>; url?: string }> {
  if (process.env.DATABASE_URL) return { env: {} };
  const port = read.port("PORTICO_POSTGRES_PORT", 0);
  if (port !== 0) await checkPortFree("PORTICO_POSTGRES_PORT", port);
  const dataDir = join(dataRoot, "postgres");
  const shown = relative(process.cwd(), dataDir).startsWith("..") ? dataDir : relative(process.cwd(), dataDir);
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    process.stderr.write(`portico: creating the embedded PostgreSQL in ${shown} (first run)\n`);
  }
  const server = await prepareEmbeddedPostgres({ dataDir, port });
  const env: Record<string, string> = {};
  for (const { name, database } of platform.services) {
    const key = `${name.toUpperCase()}_DATABASE_URL`;
    if (database && !process.env[key]) env[key] = Object.assign(new URL(server.url), { pathname: `/${database}` }).toString();
  }
  return {
    env,
    url: `postgres://127.0.0.1:${server.port}  (${shown})`,
    service: {
      name: "postgres",
      command: server.command.file,
      args: server.command.args,
      uid: server.command.uid,
      gid: server.command.gid,
      ports: [["PORTICO_POSTGRES_PORT", server.port]], // kept across restarts: the services have its URL
      color: 34,
      isReady: server.ready,
      beforeStart: server.recover,
      stopSignal: "SIGINT", // fast shutdown: sessions are cut, every committed write is kept
      ownProcessGroup: true,
    },
  };
}

async function main(): Promise<void> {
  const list = children();
  const restartLimit = read.int("PORTICO_RESTART_LIMIT", defaultRestartPolicy.maxFailedStarts, { min: 0, max: 1000 });
  for (const child of list) for (const [env, port] of child.ports) await checkPortFree(env, port);
  const dataRoot = resolve(read.string("PORTICO_DATA_DIR", ".data"));
  // Each service's key pair and the trust bundle of their public keys, on first run (unless the
  // keys come from the environment, as in production).
  if (!process.env.PORTICO_SERVICE_KEY && !process.env.PORTICO_SERVICE_KEY_FILE) {
    ensureLocalKeys(
      dataRoot,
      list.map((child) => child.name),
    );
  }
  const db = await database(dataRoot);
  const urls: Record<string, string> = db.url ? { postgres: db.url } : {};

  const supervisor = createSupervisor({
    services: [
      ...(db.service ? [db.service] : []),
      ...list.map((child) => {
        const entry = dev ? join(child.main, "src/main.ts") : join(child.main, "dist/main.js");
        const flags = child.nodeFlags ?? [];
        const args = dev
          ? [...flags, "--conditions=source", "--import", "tsx", "--watch", entry]
          : [...flags, "--enable-source-maps", entry];
        const [, port] = child.ports.at(-1) as [string, number]; // the gateway's /readyz is on its admin port
        urls[child.name] ??= `http://127.0.0.1:${child.ports[0]?.[1]}`;
        return {
          name: child.name,
          args,
          ports: child.ports,
          color: child.color,
          readyUrl: `http://127.0.0.1:${port}/readyz`,
          // The gateway's first health checks then find its upstreams serving; every service needs its database.
          startAfter: [
            ...(db.service ? [db.service.name] : []),
            ...(child.name === "gateway" ? list.filter((c) => c !== child).map((c) => c.name) : []),
          ],
        };
      }),
    ],
    cwd: root,
    // Every child sees every <SERVICE>_PORT: the gateway's default upstreams and the service
    // clients (kit's serviceUrls) find a service moved to another port.
    env: {
      ...process.env,
      ...db.env,
      ...Object.fromEntries(list.flatMap((c) => c.ports.map(([env, port]) => [env, String(port)]))),
      // Resolved here: the children run in the checkout, not where npm start was run from.
      PORTICO_DATA_DIR: dataRoot,
      PORTICO_SUPERVISED: "1",
    },
    restart: { ...defaultRestartPolicy, maxFailedStarts: restartLimit },
    onStopped: (code) => process.exit(code),
    onReady: (name) => process.stdout.write(`${name.padEnd(9)} ready  ${urls[name] ?? ""}\n`),
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (!supervisor.stopping) process.stderr.write(`\nportico: ${signal}, stopping every service\n`);
      supervisor.stop(0);
    });
  }

  const gateway = list.find((c) => c.name === "gateway") as Child;
  const [, publicPort] = gateway.ports[0] as [string, number];
  const [, adminPort] = gateway.ports[1] as [string, number];
  urls.gateway = `http://127.0.0.1:${publicPort}  (admin http://127.0.0.1:${adminPort})`;
  const outcome = await supervisor.started;
  if (outcome.ready) {
    process.stdout.write(
      `\nPortico is ready: http://localhost:${publicPort}  (admin http://localhost:${adminPort}, Ctrl-C stops)\n\n`,
    );
  } else if (!supervisor.stopping) {
    process.stderr.write(`portico: ${outcome.notReady.join(", ")} did not become ready within 60 s; stopping\n`);
    supervisor.stop(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`portico: ${describeStartupError(error)}\n`);
  process.exit(1);
});
