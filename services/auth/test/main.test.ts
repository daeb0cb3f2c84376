import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { createTokenSigner, ensureLocalKeys, freePort, identityHeaders, importServiceKey, localKeyPaths } from "@portico/kit";
import { testServerUrl } from "@portico/kit/testing";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { codeOf, STRONG_PASSWORD, uniqueEmail } from "./test-auth.js";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "portico-auth-main-"));
const dbName = `portico_test_auth_main_${randomBytes(4).toString("hex")}`;
const databaseUrl = Object.assign(new URL(testServerUrl()), { pathname: `/${dbName}` }).toString();

// The keys `npm start` would create; the test calls as the gateway (Authenticate answers only it).
ensureLocalKeys(dataDir, ["gateway", "auth"]);
const gatewayKeyFile = localKeyPaths(dataDir, "gateway").key;
const gateway = createTokenSigner({ key: importServiceKey(JSON.parse(readFileSync(gatewayKeyFile, "utf8")), gatewayKeyFile) });

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: testServerUrl() });
  await admin.connect();
  await admin.query(`drop database if exists "${dbName}" with (force)`).finally(() => admin.end());
});

/** Runs `node src/main.ts` as `npm start` would, and waits until it serves. */
async function startProcess(port: number, extraEnv: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AUTH_PORT: String(port),
    PORTICO_DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    ...extraEnv,
  };
  delete env.DATABASE_URL;
  env.AUTH_DATABASE_URL = databaseUrl;
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", MAIN], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const client = createClient(
    AuthService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "2",
      interceptors: [
        (next) => (req) => {
          req.header.set(identityHeaders.service, gateway.serviceToken("auth"));
          return next(req);
        },
      ],
    }),
  );
  return { child, client, exited, stderr: () => stderr };
}

async function ready(proc: Awaited<ReturnType<typeof startProcess>>) {
  await expect
    .poll(() => codeOf(proc.client.authenticate({ accessToken: "x" })), {
      timeout: 50_000,
      interval: 200,
      message: proc.stderr(),
    })
    .toBe(Code.Unauthenticated);
}

async function stop(child: ChildProcess, exited: Promise<number | null>, signal: NodeJS.Signals) {
  child.kill(signal);
  return exited;
}

describe("main.ts", () => {
  it("keeps every acknowledged account and session across a crash (SIGKILL) and a graceful restart", async () => {
    const port = await freePort();
    const first = await startProcess(port);
    await ready(first);
    const email = uniqueEmail("durable");
    const signedUp = await first.client.signUp({ email, password: STRONG_PASSWORD, displayName: "Durable" });
    const loggedIn = await first.client.login({ email, password: STRONG_PASSWORD });
    await first.client.logout({ refreshToken: loggedIn.tokens!.refreshToken });
    await stop(first.child, first.exited, "SIGKILL");

    const second = await startProcess(port);
    await ready(second);
    expect((await second.client.login({ email, password: STRONG_PASSWORD })).user?.id).toBe(signedUp.user?.id);
    expect(await codeOf(second.client.authenticate({ accessToken: signedUp.tokens!.accessToken }))).toBe("ok");
    expect(await codeOf(second.client.authenticate({ accessToken: loggedIn.tokens!.accessToken }))).toBe(Code.Unauthenticated);
    expect(await codeOf(second.client.refresh({ refreshToken: loggedIn.tokens!.refreshToken }))).toBe(Code.Unauthenticated);
    const refreshed = await second.client.refresh({ refreshToken: signedUp.tokens!.refreshToken });
    expect(await stop(second.child, second.exited, "SIGTERM")).toBe(0);

    const third = await startProcess(port);
    await ready(third);
    expect(await codeOf(third.client.refresh({ refreshToken: refreshed.tokens!.refreshToken }))).toBe("ok");
    expect(await stop(third.child, third.exited, "SIGTERM")).toBe(0);
  }, 180_000);

  it("loads the argon2 addon with the first sign-up, not at start-up (an idle platform holds none of it)", async () => {
    const proc = await startProcess(await freePort());
    try {
      await ready(proc);
      const argon2Mapped = () => /argon2[^/\n]*\.node$/m.test(readFileSync(`/proc/${proc.child.pid}/maps`, "utf8"));
      expect(argon2Mapped()).toBe(false);
      await proc.client.signUp({ email: uniqueEmail("lazy"), password: STRONG_PASSWORD, displayName: "Lazy" });
      expect(argon2Mapped()).toBe(true);
    } finally {
      // Stopped whatever the outcome: a failed expectation must not leave the process running.
      expect(await stop(proc.child, proc.exited, "SIGTERM")).toBe(0);
    }
  }, 60_000);

  it("ends with a one-line reason for a bad setting", { timeout: 60_000 }, async () => {
    const proc = await startProcess(await freePort(), { AUTH_ACCESS_TOKEN_TTL_SECONDS: "forever" });
    expect(await proc.exited).toBe(1);
    expect(proc.stderr().trim(), proc.stderr()).toBe(
      'auth: AUTH_ACCESS_TOKEN_TTL_SECONDS="forever" is not valid: expected a whole number from 10 to 3600',
    );
  });
});
