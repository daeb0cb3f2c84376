// npm start as a user runs it: the compiled services as separate processes, ready within 30 s,
// one authenticated call from sign-up to backend, Ctrl-C leaves nothing behind, and start-up
// problems end it with one line.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Started {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startPlatform(env: Record<string, string>): Started {
  const proc = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, PORTICO_DATA_DIR: mkdtempSync(join(tmpdir(), "portico-start-")), DATABASE_URL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (d) => (output += d));
  proc.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return { proc, output: () => output, exited };
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
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

describe("npm start", () => {
  let ports: Record<string, string>;
  let platform: Started | undefined;
  afterAll(() => platform?.proc.kill("SIGKILL"));

  it("runs the platform, serves an authenticated call, and Ctrl-C stops every process", async () => {
    ports = {
      GATEWAY_PORT: String(await freePort()),
      ADMIN_PORT: String(await freePort()),
      AUTH_PORT: String(await freePort()),
      GREETER_PORT: String(await freePort()),
      LANG_PORT: String(await freePort()),
    };
    const started = Date.now();
    platform = startPlatform(ports);
    const ready = await waitFor(() => platform?.output().includes("Portico is ready") ?? false, 30_000);
    expect(ready, platform.output()).toBe(true);
    expect(Date.now() - started).toBeLessThan(30_000);
    const children = childPids(platform.proc.pid as number);
    expect(children.length).toBe(4);

    const gateway = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${gateway}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
    const signUp = await post("/portico.auth.v1.AuthService/SignUp", {
      email: "start@example.com",
      password: "correct horse battery staple",
      displayName: "Start",
    });
    expect(signUp.status).toBe(200);
    const { tokens } = (await signUp.json()) as { tokens: { accessToken: string } };
    expect(tokens.accessToken).toBeTruthy();
    const greet = await post(
      "/portico.greeter.v1.GreeterService/Greet",
      { name: "Ada" },
      {
        authorization: `Bearer ${tokens.accessToken}`,
      },
    );
    expect(await greet.json()).toEqual({ greeting: "Hello, Ada!", language: "en" });
    const anonymous = await post("/portico.greeter.v1.GreeterService/Greet", { name: "Ada" });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe("unauthenticated");

    platform.proc.kill("SIGINT");
    expect(await platform.exited).toBe(0);
    expect(await waitFor(() => children.every((pid) => !alive(pid)), 5_000)).toBe(true);
  }, 60_000);

  it("leaves no service behind when the supervisor itself is killed outright", async () => {
    const run = startPlatform(ports);
    expect(await waitFor(() => run.output().includes("Portico is ready"), 30_000), run.output()).toBe(true);
    const children = childPids(run.proc.pid as number);
    expect(children.length).toBe(4);
    run.proc.kill("SIGKILL");
    await run.exited;
    expect(await waitFor(() => children.every((pid) => !alive(pid)), 15_000)).toBe(true);
  }, 60_000);

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
