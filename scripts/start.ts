// npm start: runs auth, lang, greeter and gateway as separate processes from their compiled JavaScript
// (embedded PGlite under .data/ unless DATABASE_URL is set), prefixes their logs, prints the URL
// when the gateway is ready, and stops them all on Ctrl-C. A child that fails to start ends the
// whole platform with its one-line reason.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createEnvReader, describeStartupError, ensureLocalKeys, servicePorts } from "@portico/kit";

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

function children(): Child[] {
  return [
    {
      name: "auth",
      main: "services/auth",
      ports: [["AUTH_PORT", read.port("AUTH_PORT", servicePorts.auth)]],
      color: 35,
    },
    {
      name: "lang",
      main: "services/lang",
      ports: [["LANG_PORT", read.port("LANG_PORT", servicePorts.lang)]],
      color: 32,
    },
    {
      name: "greeter",
      main: "services/greeter",
      ports: [["GREETER_PORT", read.port("GREETER_PORT", servicePorts.greeter)]],
      color: 36,
    },
    {
      name: "gateway",
      main: "services/gateway",
      ports: [
        ["GATEWAY_PORT", read.port("GATEWAY_PORT", servicePorts.gateway)],
        ["ADMIN_PORT", read.port("ADMIN_PORT", 9090)],
      ],
      color: 33,
      // Per-call garbage is young and short-lived: V8's parallel GC helper threads cost the
      // gateway more CPU than they save on small machines (bench/README.md).
      nodeFlags: ["--single-threaded-gc"],
    },
  ];
}

/**
 * When auth, greeter or lang run on other ports than the gateway's committed config expects, tell the
 * gateway through GATEWAY_UPSTREAMS (unless the user already set it).
 */
function upstreamsFor(list: Child[]): Record<string, string> {
  if (process.env.GATEWAY_UPSTREAMS) return {};
  const services: Record<string, [string, number]> = {
    auth: ["portico.auth.v1.AuthService", servicePorts.auth],
    greeter: ["portico.greeter.v1.GreeterService", servicePorts.greeter],
    lang: ["portico.lang.v1.LanguageService", servicePorts.lang],
  };
  const entries = list.flatMap((child) => {
    const known = services[child.name];
    const port = child.ports[0]?.[1];
    return known && port !== known[1] ? [`${known[0]}=http://127.0.0.1:${port}`] : [];
  });
  return entries.length > 0 ? { GATEWAY_UPSTREAMS: entries.join(",") } : {};
}

/** Fails with a one-line reason when a port is taken, before any service starts. */
async function checkPortFree(env: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new Error(error.code === "EADDRINUSE" ? `port ${port} is already in use (set ${env} to use another)` : error.message),
      ),
    );
    probe.listen(port, "0.0.0.0", () => probe.close(() => resolve()));
  });
}

const tty = process.stdout.isTTY;
function prefixLines(child: Child, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream, last: { line: string }) {
  const tag = tty ? `\x1b[${child.color}m${child.name.padEnd(8)}\x1b[0m│ ` : `${child.name.padEnd(8)}│ `;
  createInterface({ input: stream }).on("line", (line) => {
    last.line = line;
    out.write(`${tag}${tty ? pretty(line) : line}\n`);
  });
}

/** On a terminal, a JSON log line becomes "level message {rest}". */
function pretty(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const { level, msg, time: _time, service: _service, pid: _pid, hostname: _host, ...rest } = JSON.parse(line);
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
    return `${String(level).padEnd(5)} ${msg ?? ""}${extra}`;
  } catch {
    return line;
  }
}

async function waitReady(adminPort: number, running: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && running()) {
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function main(): Promise<void> {
  const list = children();
  for (const child of list) for (const [env, port] of child.ports) await checkPortFree(env, port);
  // Each service's key pair and the trust bundle of their public keys, on first run (unless the
  // keys come from the environment, as in production).
  if (!process.env.PORTICO_SERVICE_KEY && !process.env.PORTICO_SERVICE_KEY_FILE) {
    ensureLocalKeys(
      resolve(read.string("PORTICO_DATA_DIR", ".data")),
      list.map((child) => child.name),
    );
  }
  const procs = new Map<string, ChildProcess>();
  let stopping = false;
  let exitCode = 0;

  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    for (const proc of procs.values()) if (proc.exitCode === null) proc.kill("SIGTERM");
    setTimeout(() => {
      for (const proc of procs.values()) if (proc.exitCode === null) proc.kill("SIGKILL");
    }, 10_000).unref();
  };

  const env = { ...process.env, ...upstreamsFor(list), PORTICO_SUPERVISED: "1" };
  for (const child of list) {
    const entry = dev ? join(child.main, "src/main.ts") : join(child.main, "dist/main.js");
    const flags = child.nodeFlags ?? [];
    const args = dev
      ? [...flags, "--conditions=source", "--import", "tsx", "--watch", entry]
      : [...flags, "--enable-source-maps", entry];
    const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
    const lastErr = { line: "" };
    prefixLines(child, proc.stdout, process.stdout, { line: "" });
    prefixLines(child, proc.stderr, process.stderr, lastErr);
    procs.set(child.name, proc);
    proc.on("exit", (code, signal) => {
      if (stopping) {
        if ([...procs.values()].every((p) => p.exitCode !== null || p.signalCode !== null)) process.exit(exitCode);
        return;
      }
      process.stderr.write(`portico: ${child.name} stopped (${signal ?? `exit code ${code}`}); stopping the others\n`);
      stopAll(1);
    });
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (!stopping) process.stderr.write(`\nportico: ${signal}, stopping every service\n`);
      stopAll(0);
    });
  }

  const gateway = list.find((c) => c.name === "gateway") as Child;
  const [, publicPort] = gateway.ports[0] as [string, number];
  const [, adminPort] = gateway.ports[1] as [string, number];
  if (await waitReady(adminPort, () => !stopping)) {
    process.stdout.write(
      `\nPortico is ready: http://localhost:${publicPort}  (admin http://localhost:${adminPort}, Ctrl-C stops)\n\n`,
    );
  } else if (!stopping) {
    process.stderr.write("portico: the gateway did not become ready within 60 s; stopping\n");
    stopAll(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`portico: ${describeStartupError(error)}\n`);
  process.exit(1);
});
