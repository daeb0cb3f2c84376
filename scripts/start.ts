// npm start: runs every service of portico.services.json and the gateway as separate processes
// from their compiled JavaScript (embedded PGlite under .data/ unless DATABASE_URL is set), prefixes their logs, prints the URL
// when the gateway is ready, restarts a service that exits unexpectedly (scripts/supervisor.ts),
// and stops them all on Ctrl-C. A service that fails before the platform is ready, or keeps
// failing to start after a crash, ends the whole platform with its one-line reason.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createEnvReader, describeStartupError, ensureLocalKeys, platform } from "@portico/kit";
import { checkPortFree } from "./check-port-free.js";
import { defaultRestartPolicy } from "./restart-policy.js";
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

/** The backends of the platform definition (portico.services.json) in its order, then the gateway. */
function children(): Child[] {
  const envName = (name: string) => name.toUpperCase().replaceAll("-", "_");
  return [
    ...platform.services.map((service, i) => ({
      name: service.name,
      main: `services/${service.name}`,
      ports: [[`${envName(service.name)}_PORT`, read.port(`${envName(service.name)}_PORT`, service.port)]] as [string, number][],
      color: palette[i % palette.length] as number,
    })),
    {
      name: "gateway",
      main: "services/gateway",
      ports: [
        ["GATEWAY_PORT", read.port("GATEWAY_PORT", platform.gateway.port)],
        ["ADMIN_PORT", read.port("ADMIN_PORT", platform.gateway.adminPort)],
      ],
      color: 33,
      // Per-call garbage is young and short-lived: V8's parallel GC helper threads cost the
      // gateway more CPU than they save on small machines (bench/README.md).
      nodeFlags: ["--single-threaded-gc"],
    },
  ];
}

async function main(): Promise<void> {
  const list = children();
  const restartLimit = read.int("PORTICO_RESTART_LIMIT", defaultRestartPolicy.maxFailedStarts, { min: 0, max: 1000 });
  for (const child of list) for (const [env, port] of child.ports) await checkPortFree(env, port);
  // Each service's key pair and the trust bundle of their public keys, on first run (unless the
  // keys come from the environment, as in production).
  if (!process.env.PORTICO_SERVICE_KEY && !process.env.PORTICO_SERVICE_KEY_FILE) {
    ensureLocalKeys(
      resolve(read.string("PORTICO_DATA_DIR", ".data")),
      list.map((child) => child.name),
    );
  }

  const supervisor = createSupervisor({
    services: list.map((child) => {
      const entry = dev ? join(child.main, "src/main.ts") : join(child.main, "dist/main.js");
      const flags = child.nodeFlags ?? [];
      const args = dev
        ? [...flags, "--conditions=source", "--import", "tsx", "--watch", entry]
        : [...flags, "--enable-source-maps", entry];
      const [, port] = child.ports.at(-1) as [string, number]; // the gateway's /readyz is on its admin port
      return {
        name: child.name,
        args,
        ports: child.ports,
        color: child.color,
        readyUrl: `http://127.0.0.1:${port}/readyz`,
        // The gateway's first health checks then find its upstreams serving.
        startAfter: child.name === "gateway" ? list.filter((c) => c !== child).map((c) => c.name) : [],
      };
    }),
    cwd: root,
    // Every child sees every <SERVICE>_PORT: the gateway's default upstreams and the service
    // clients (kit's serviceUrl) find a service moved to another port.
    env: {
      ...process.env,
      ...Object.fromEntries(list.flatMap((c) => c.ports.map(([env, port]) => [env, String(port)]))),
      PORTICO_SUPERVISED: "1",
    },
    restart: { ...defaultRestartPolicy, maxFailedStarts: restartLimit },
    onStopped: (code) => process.exit(code),
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
