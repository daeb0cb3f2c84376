// npm run new:service as a service author runs it, in a temporary copy of the repository (its
// files as they are now, node_modules linked): bad names change nothing; a good one makes a
// service that builds, is in every derived file, and whose own test passes through a real gateway.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const copy = mkdtempSync(join(tmpdir(), "portico-new-service-"));

/** The environment without the outer vitest's variables, so the inner one starts afresh. */
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST")));

function newService(...args: string[]) {
  return spawnSync(process.execPath, ["--conditions=source", "--import", "tsx", "scripts/new-service.ts", ...args], {
    cwd: copy,
    env,
    encoding: "utf8",
  });
}

/** node_modules of the copy: every package linked to the repository's, the workspaces to the copy's own. */
function linkNodeModules() {
  const modules = join(copy, "node_modules");
  rmSync(modules, { recursive: true, force: true });
  mkdirSync(join(modules, "@portico"), { recursive: true });
  for (const entry of readdirSync(join(root, "node_modules"))) {
    if (entry !== "@portico" && entry !== ".package-lock.json")
      symlinkSync(join(root, "node_modules", entry), join(modules, entry));
  }
  const workspaces = (JSON.parse(readFileSync(join(copy, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;
  for (const workspace of workspaces) {
    const { name } = JSON.parse(readFileSync(join(copy, workspace, "package.json"), "utf8")) as { name: string };
    symlinkSync(join(copy, workspace), join(modules, name));
  }
}

const snapshot = () =>
  ["portico.services.json", "package.json", "tsconfig.json", "docker-compose.yml"].map((f) =>
    readFileSync(join(copy, f), "utf8"),
  );

beforeAll(() => {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: root,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f && existsSync(join(root, f)));
  for (const file of files) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(root, file), join(copy, file));
  }
  linkNodeModules();
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe("npm run new:service", () => {
  it.each([
    ["gateway", 'new:service: "gateway" is reserved'],
    ["grpc", 'new:service: "grpc" is reserved'],
    ["greeter", 'new:service: a service named "greeter" already exists in portico.services.json'],
    ["Billing-API", 'new:service: "Billing-API" is not a valid proto package name'],
    ["9lives", 'new:service: "9lives" is not a valid proto package name'],
  ])("refuses %s with one line and exit code 1, changing nothing", (name, line) => {
    const before = snapshot();
    const existed = existsSync(join(copy, "services", name));
    const run = newService(name);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toContain(line);
    expect(snapshot()).toEqual(before);
    expect(existsSync(join(copy, "services", name))).toBe(existed);
  });

  it("scaffolds a service that builds, is registered everywhere, and passes its own test through a real gateway", () => {
    const run = newService("billing", "--no-install");
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("created proto/portico/billing/v1/billing.proto");
    const definition = JSON.parse(readFileSync(join(copy, "portico.services.json"), "utf8"));
    const ports = Object.values(definition.services as Record<string, { port: number }>).map((s) => s.port);
    expect(definition.services.billing).toEqual({
      port: Math.max(...ports.filter((p) => p !== definition.services.billing.port)) + 1,
      protoServices: ["portico.billing.v1.BillingService"],
      database: "billing",
    });
    expect(existsSync(join(copy, "gen/portico/billing/v1/billing_pb.ts"))).toBe(true);
    expect(readFileSync(join(copy, "gen/access-matrix.md"), "utf8")).toContain("portico.billing.v1.BillingService");
    expect(readFileSync(join(copy, "docker-compose.yml"), "utf8")).toContain("services/billing/dist/main.js");
    expect(readFileSync(join(copy, "Dockerfile"), "utf8")).toContain("COPY services/billing/package.json services/billing/");
    expect(readFileSync(join(copy, "README.md"), "utf8")).toContain(
      "billing service (h2c, 127.0.0.1): `portico.billing.v1.BillingService`",
    );

    linkNodeModules();
    const bin = (name: string) => join(copy, "node_modules/.bin", name);
    const build = spawnSync(bin("tsc"), ["-b", "services/billing"], { cwd: copy, env, encoding: "utf8" });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const lint = spawnSync(bin("biome"), ["check", "services/billing", "portico.services.json", "package.json"], {
      cwd: copy,
      env,
      encoding: "utf8",
    });
    expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    const test = spawnSync(bin("vitest"), ["run", "--project", "services", "services/billing"], {
      cwd: copy,
      env,
      encoding: "utf8",
    });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/Tests\s+.*3 passed/);
  }, 300_000);
});
