// The gateway's process (dist/main.js) as an operator starts it: what it reads from the environment.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "portico-gateway-main-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** A backend address nothing listens on (port 1: refused at once), so the gateway calls no one's service. */
const nowhere = "http://127.0.0.1:1";

/** Starts the gateway with `env` on ports the OS picks; resolves with its output once it listens or exits. */
function startMain(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; adminUrl: string }> {
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? "",
      PORTICO_DATA_DIR: dir,
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
      ADMIN_PORT: "0",
      LOG_LEVEL: "silent",
      AUTH_URL: nowhere,
      GREETER_URL: nowhere,
      LANG_URL: nowhere,
      ...env,
    },
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const admin = /\(admin (http:\/\/\S+);/.exec(stdout);
      if (admin) resolve({ code: null, stdout, stderr, adminUrl: admin[1] as string });
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr, adminUrl: "" }));
  });
}

describe("the admin port's /metrics token from the environment", { timeout: 30_000 }, () => {
  it("refuses to start with ADMIN_HOST off loopback and no token, in one line", async () => {
    const run = await startMain({ ADMIN_HOST: "0.0.0.0" });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      "gateway: ADMIN_HOST 0.0.0.0 is not a loopback address: set ADMIN_METRICS_TOKEN so /metrics is not open to the network\n",
    );
  });

  it("reads the token from ADMIN_METRICS_TOKEN_FILE (a mounted secret) and requires it on every address", async () => {
    const file = join(dir, "metrics-token");
    writeFileSync(file, "0123456789abcdef0123456789abcdef\n");
    const run = await startMain({ ADMIN_HOST: "0.0.0.0", ADMIN_METRICS_TOKEN_FILE: file });
    // The file's line end is not part of the token.
    expect(run.stdout).toContain("listening at");
    // 127.0.0.2 stands for another host.
    const url = `${run.adminUrl.replace("127.0.0.1", "127.0.0.2")}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    const scraped = await fetch(url, { headers: { authorization: "Bearer 0123456789abcdef0123456789abcdef" } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("portico_gateway_calls_in_flight");
  });

  it("takes ADMIN_METRICS_TOKEN without the line end a Kubernetes Secret made from a file may carry", async () => {
    const run = await startMain({ ADMIN_METRICS_TOKEN: "fedcba9876543210fedcba9876543210\n" });
    expect(run.stdout).toContain("listening at");
    const url = `${run.adminUrl}/metrics`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: "Bearer fedcba9876543210fedcba9876543210" } })).status).toBe(200);
  });
});
