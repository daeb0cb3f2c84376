// npm start as a user runs it: one embedded PostgreSQL server and the compiled services as separate
// processes, ready within 60 s with one line per service, one authenticated call from sign-up to
// backend, a killed service or database restarted while the rest keeps serving what it can, Ctrl-C
// leaves nothing behind (no server, no postmaster.pid), a killed run's lock file is recovered, and
// start-up problems end it with one line.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { freePort, freePorts } from "@portico/kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");

interface Started {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

// One data directory for every run: only the first pays for creating the embedded databases.
const dataDir = mkdtempSync(join(tmpdir(), "portico-start-"));
chmodSync(dataDir, 0o755); // the embedded server runs as the postgres user when the tests run as root
const pidFile = join(dataDir, "postgres", "postmaster.pid");

/**
 * `scripts/start.ts` from the checkout; with `elsewhere`, the compiled `dist/start.js` run from the data
 * directory's parent with PORTICO_DATA_DIR relative to it (as `node ~/portico/dist/start.js` from elsewhere).
 */
function startPlatform(env: Record<string, string>, elsewhere = false): Started {
  const [args, cwd, data] = elsewhere
    ? [[join(root, "dist/start.js")], dirname(dataDir), basename(dataDir)]
    : [["--import", "tsx", "scripts/start.ts"], root, dataDir];
  const proc = spawn(process.execPath, args, {
    cwd,
    // A loaded test machine must not turn a slow first Translate into the English fallback.
    env: { ...process.env, PORTICO_DATA_DIR: data, DATABASE_URL: "", GREETER_LANG_TIMEOUT_MS: "5000", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (d) => (output += d));
  proc.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return { proc, output: () => output, exited };
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/** The supervisor's children by name (postgres, auth, greeter, lang, gateway) → pid; others (tsx's esbuild) left out. */
function servicePids(supervisor: number): Record<string, number> {
  let pids: number[] = [];
  try {
    pids = execFileSync("pgrep", ["-P", String(supervisor)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children
  }
  const services: Record<string, number> = {};
  for (const pid of pids) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const match = /services\/(\w+)\/dist\/main\.js/.exec(cmdline);
      if (match?.[1]) services[match[1]] = pid;
      else if (cmdline.includes(`native/bin/postgres\0-D\0${dataDir}/postgres`)) services.postgres = pid;
    } catch {
      // gone meanwhile
    }
  }
  return services;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(() => {
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
}, 180_000);
// A data directory the services resolved inside the checkout (start.ts not handing its own on) must not stay there.
afterAll(() => rmSync(join(root, basename(dataDir)), { recursive: true, force: true }));

// Distinct ports, the embedded PostgreSQL's included: a port the supervisor picked for it at run time
// could be one chosen here for a service that has not bound it yet.
async function platformPorts(): Promise<Record<string, string>> {
  const names = ["GATEWAY_PORT", "ADMIN_PORT", "AUTH_PORT", "GREETER_PORT", "LANG_PORT", "PORTICO_POSTGRES_PORT"];
  const ports = await freePorts(names.length);
  return Object.fromEntries(names.map((name, i) => [name, String(ports[i])]));
}

/** Connect JSON calls through the gateway: HTTP status, the answer, and how long it took. */
function gatewayClient(port: string) {
  const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const json = (await res.json()) as Record<string, unknown>;
    return { status: res.status, json, ms: performance.now() - started };
  };
  const password = "correct horse battery staple";
  return {
    call,
    async signUp(email: string): Promise<string> {
      const res = await call("/portico.auth.v1.AuthService/SignUp", { email, password, displayName: "Start" });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return (res.json as { tokens: { accessToken: string } }).tokens.accessToken;
    },
    /** A new access token, not yet seen by the gateway (the gateway only forwards Login). */
    async login(email: string): Promise<string> {
      const res = await call("/portico.auth.v1.AuthService/Login", { email, password });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return (res.json as { tokens: { accessToken: string } }).tokens.accessToken;
    },
    greet: (token?: string) =>
      call("/portico.greeter.v1.GreeterService/Greet", { name: "Ada" }, token ? { authorization: `Bearer ${token}` } : {}),
  };
}

describe("npm start", () => {
  let ports: Record<string, string>;
  let platform: Started;
  let client: ReturnType<typeof gatewayClient>;
  let pids: Record<string, number>;
  const email = "start@example.com";
  afterAll(() => {
    platform?.proc.kill("SIGKILL");
  });

  it("runs the platform and serves an authenticated call, started from outside the checkout", async () => {
    ports = await platformPorts();
    platform = startPlatform(ports, true);
    const ready = await waitFor(() => platform.output().includes("Portico is ready"), 60_000);
    expect(ready, platform.output()).toBe(true);
    pids = servicePids(platform.proc.pid as number);
    expect(Object.keys(pids).sort()).toEqual(["auth", "gateway", "greeter", "lang", "postgres"]);
    // One line per process with its address as it answered ready, the gateway's last, then the public URL.
    const lines = platform.output().split("\n");
    const readyLines = lines.filter((line) => / ready {2}/.test(line));
    expect(readyLines[0]).toMatch(/^postgres {2}ready {2}postgres:\/\/127\.0\.0\.1:\d+ {2}\(.*postgres\)$/);
    expect(readyLines.slice(1, 4).sort()).toEqual([
      `auth      ready  http://127.0.0.1:${ports.AUTH_PORT}`,
      `greeter   ready  http://127.0.0.1:${ports.GREETER_PORT}`,
      `lang      ready  http://127.0.0.1:${ports.LANG_PORT}`,
    ]);
    expect(readyLines[4]).toBe(
      `gateway   ready  http://127.0.0.1:${ports.GATEWAY_PORT}  (admin http://127.0.0.1:${ports.ADMIN_PORT})`,
    );
    expect(lines.indexOf(readyLines[4] as string)).toBeLessThan(lines.findIndex((l) => l.startsWith("Portico is ready")));

    // Every service took its keys from the data directory the run was given, not from one beside the code.
    const bundle = JSON.parse(readFileSync(join(dataDir, "keys", "trust-bundle.json"), "utf8")) as { keys: { kid: string }[] };
    const jwks = (await (await fetch(`http://127.0.0.1:${ports.ADMIN_PORT}/.well-known/jwks.json`)).json()) as typeof bundle;
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual(bundle.keys.map((k) => k.kid).sort());

    client = gatewayClient(ports.GATEWAY_PORT as string);
    const token = await client.signUp(email);
    const greet = await client.greet(token);
    expect(greet.json).toEqual({ greeting: "Hello, Ada!", language: "en" });
    const anonymous = await client.greet();
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.code).toBe("unauthenticated");
  }, 90_000);

  it("refuses with one line a second run on the same data directory, leaving the first one's database alone", async () => {
    const second = startPlatform(await platformPorts());
    expect(await second.exited).toBe(1);
    expect(second.output().trim()).toBe(
      `portico: postgres cannot start: the embedded PostgreSQL in ${dataDir}/postgres is in use by another run (server pid ${pids.postgres}, started by pid ${platform.proc.pid}): stop it or set PORTICO_DATA_DIR; stopping the others`,
    );
    expect(alive(pids.postgres as number)).toBe(true);
    expect((await client.greet(await client.login(email))).status).toBe(200);
  }, 60_000);

  it("restarts auth killed with SIGKILL; meanwhile cached tokens work and unseen ones are unavailable", async () => {
    const cached = await client.login(email);
    const unseen = await client.login(email);
    expect((await client.greet(cached)).status).toBe(200); // now in the gateway's cache

    process.kill(pids.auth as number, "SIGKILL");
    expect(
      await waitFor(() => platform.output().includes("portico: auth exited (SIGKILL); restarting in 0.5s (restart 1)"), 5_000),
      platform.output(),
    ).toBe(true);
    // auth is down (the restart waits 0.5 s, then the process needs its database).
    const whileDown = await client.greet(cached);
    expect(whileDown.json).toEqual({ greeting: "Hello, Ada!", language: "en" });
    const refused = await client.greet(unseen);
    expect(refused.status, JSON.stringify(refused.json)).toBe(503);
    expect(refused.json.code).toBe("unavailable");

    // Back: a new auth process, and the token it could not check before now works.
    expect(await waitFor(async () => (await client.greet(unseen)).status === 200, 30_000), platform.output()).toBe(true);
    const restarted = servicePids(platform.proc.pid as number);
    expect(restarted.auth).toBeDefined();
    expect(restarted.auth).not.toBe(pids.auth);
    expect(restarted.gateway).toBe(pids.gateway);
    pids = restarted;
  }, 60_000);

  it("restarts the greeter killed with SIGKILL; meanwhile calls answer unavailable at once", async () => {
    const token = await client.login(email);
    expect((await client.greet(token)).status).toBe(200);

    process.kill(pids.greeter as number, "SIGKILL");
    expect(await waitFor(() => platform.output().includes("portico: greeter exited (SIGKILL)"), 5_000)).toBe(true);
    const down = await client.greet(token);
    expect(down.status, JSON.stringify(down.json)).toBe(503);
    expect(down.json.code).toBe("unavailable");
    expect(down.ms).toBeLessThan(2_000);

    expect(await waitFor(async () => (await client.greet(token)).status === 200, 30_000), platform.output()).toBe(true);
    expect((await client.greet(token)).json).toEqual({ greeting: "Hello, Ada!", language: "en" });
    pids = servicePids(platform.proc.pid as number);
  }, 60_000);

  it("restarts PostgreSQL killed with SIGKILL; every acknowledged sign-up is still there", async () => {
    const before = await client.login(email);
    process.kill(pids.postgres as number, "SIGKILL");
    expect(
      await waitFor(
        () => platform.output().includes("portico: postgres exited (SIGKILL); restarting in 0.5s (restart 1)"),
        5_000,
      ),
      platform.output(),
    ).toBe(true);
    // Back: the account made before the crash logs in again (a query on auth's database), and greets.
    let after = "";
    expect(
      await waitFor(async () => {
        after = await client
          .call("/portico.auth.v1.AuthService/Login", { email, password: "correct horse battery staple" })
          .then((res) => (res.json as { tokens?: { accessToken: string } }).tokens?.accessToken ?? "");
        return after !== "";
      }, 30_000),
      platform.output(),
    ).toBe(true);
    expect(after).not.toBe(before);
    expect((await client.greet(after)).json).toEqual({ greeting: "Hello, Ada!", language: "en" });
    const restarted = servicePids(platform.proc.pid as number);
    expect(restarted.postgres).toBeDefined();
    expect(restarted.postgres).not.toBe(pids.postgres);
    expect(restarted.auth).toBe(pids.auth); // the services kept running: their pools reconnected
    pids = restarted;
  }, 60_000);

  it("Ctrl-C stops every process, the restarted ones too, and the database leaves no postmaster.pid", async () => {
    platform.proc.kill("SIGINT");
    expect(await platform.exited).toBe(0);
    expect(await waitFor(() => Object.values(pids).every((pid) => !alive(pid)), 5_000)).toBe(true);
    expect(Object.keys(pids)).toContain("postgres");
    expect(existsSync(pidFile)).toBe(false); // removed by the server's own clean shutdown
  });

  it("starts again over a stale postmaster.pid left by a killed run, whose pid now belongs to someone else", async () => {
    // As after a power cut: the lock file names a process that is alive but is no PostgreSQL of ours.
    writeFileSync(pidFile, `${process.pid}\n${dataDir}/postgres\n1764800000\n5432\n\n127.0.0.1\n  1234567   7\nready   \n`);
    const run = startPlatform(ports);
    try {
      expect(await waitFor(() => run.output().includes("Portico is ready"), 60_000), run.output()).toBe(true);
      const token = await gatewayClient(ports.GATEWAY_PORT as string).login(email);
      expect((await gatewayClient(ports.GATEWAY_PORT as string).greet(token)).status).toBe(200);
    } finally {
      run.proc.kill("SIGINT");
      expect(await run.exited).toBe(0);
    }
    expect(existsSync(pidFile)).toBe(false);
  }, 90_000);

  it("leaves no service behind when the supervisor itself is killed outright", async () => {
    const run = startPlatform(ports);
    expect(await waitFor(() => run.output().includes("Portico is ready"), 60_000), run.output()).toBe(true);
    const children = Object.values(servicePids(run.proc.pid as number));
    expect(children.length).toBe(5);
    run.proc.kill("SIGKILL");
    await run.exited;
    expect(await waitFor(() => children.every((pid) => !alive(pid)), 15_000)).toBe(true);
    // The database, told by the kernel that its parent died, shut down cleanly: the next start needs no recovery.
    expect(existsSync(pidFile)).toBe(false);
  }, 90_000);

  it("ends with the reason when a crashed service cannot start again", async () => {
    const run = startPlatform({ ...ports, PORTICO_RESTART_LIMIT: "2" });
    let taken: Server | undefined;
    try {
      expect(await waitFor(() => run.output().includes("Portico is ready"), 60_000), run.output()).toBe(true);
      const auth = servicePids(run.proc.pid as number).auth as number;
      process.kill(auth, "SIGKILL");
      await waitFor(() => !alive(auth), 5_000);
      // Someone takes auth's port while it is down: both restarts fail, and the platform ends.
      const port = Number(ports.AUTH_PORT);
      taken = createServer();
      await new Promise<void>((resolve) => taken?.listen(port, "127.0.0.1", resolve));
      expect(await run.exited).toBe(1);
      const lines = run.output().trim().split("\n");
      expect(lines).toContain("portico: auth exited (SIGKILL); restarting in 0.5s (restart 1)");
      expect(lines).toContain(
        `portico: auth cannot start: port ${port} is already in use (set AUTH_PORT to use another); restarting in 1s (restart 2)`,
      );
      expect(lines).toContain(
        `portico: auth failed to start 2 times in a row: port ${port} is already in use (set AUTH_PORT to use another); stopping the others`,
      );
    } finally {
      taken?.close();
      if (run.proc.exitCode === null) run.proc.kill("SIGKILL"); // a failed assertion leaves nothing running
    }
  }, 90_000);

  it("ends with one line when a crashed PostgreSQL cannot start again", async () => {
    const port = await freePort();
    const run = startPlatform({ ...ports, PORTICO_POSTGRES_PORT: String(port), PORTICO_RESTART_LIMIT: "2" });
    let taken: Server | undefined;
    try {
      expect(await waitFor(() => run.output().includes("Portico is ready"), 60_000), run.output()).toBe(true);
      const children = servicePids(run.proc.pid as number);
      expect(run.output()).toContain(`postgres  ready  postgres://127.0.0.1:${port}  (`);
      process.kill(children.postgres as number, "SIGKILL");
      await waitFor(() => !alive(children.postgres as number), 5_000);
      // Someone takes its port while it is down: both restarts fail, and the platform ends.
      taken = createServer();
      await new Promise<void>((resolve) => taken?.listen(port, "127.0.0.1", resolve));
      expect(await run.exited).toBe(1);
      const lines = run.output().trim().split("\n");
      expect(lines).toContain("portico: postgres exited (SIGKILL); restarting in 0.5s (restart 1)");
      expect(lines).toContain(
        `portico: postgres failed to start 2 times in a row: port ${port} is already in use (set PORTICO_POSTGRES_PORT to use another); stopping the others`,
      );
      expect(await waitFor(() => Object.values(children).every((pid) => !alive(pid)), 15_000)).toBe(true);
    } finally {
      taken?.close();
      if (run.proc.exitCode === null) run.proc.kill("SIGKILL"); // a failed assertion leaves nothing running
    }
  }, 90_000);

  it("ends with one line when a port is taken", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "0.0.0.0", resolve));
    const port = (taken.address() as { port: number }).port;
    const run = startPlatform({ ...ports, GATEWAY_PORT: String(port) });
    expect(await run.exited).toBe(1);
    taken.close();
    expect(run.output().trim()).toBe(`portico: port ${port} is already in use (set GATEWAY_PORT to use another)`);
  });

  it("ends with one line that names a bad setting", async () => {
    const run = startPlatform({ ...ports, GATEWAY_PORT: "80a" });
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toBe('portico: GATEWAY_PORT="80a" is not valid: expected a whole number from 0 to 65535');
  });
});
