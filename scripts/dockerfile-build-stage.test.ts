// No Docker engine runs here, so the Dockerfile's build stage is replayed by hand: its COPY lines copy
// from this checkout (less what .dockerignore keeps out) into an empty folder, `npm ci` is stood in for
// by this checkout's node_modules, and its `npm run build` runs there. It fails when the build reads a
// file the image does not copy in (scripts/start.ts and scripts/build.ts once were), and checks that
// everything the runtime stage copies out of the build stage exists and is no test and no TypeScript.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const app = mkdtempSync(join(tmpdir(), "portico-image-"));
afterAll(() => rmSync(app, { recursive: true, force: true }));

const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
const stages = dockerfile.split(/^FROM /m).slice(1);
const buildStage = stages.find((stage) => /^\S+ AS build\n/.test(stage)) ?? "";
const runtimeStage = stages.at(-1) ?? "";

/** Path segments .dockerignore keeps out of the build context (its patterns are all `**\/name` or `name`). */
const ignored = readFileSync(join(root, ".dockerignore"), "utf8")
  .split("\n")
  .filter((line) => line && !line.startsWith("#"))
  .map((line) => line.replace(/^\*\*\//, ""));

function keptOut(path: string): boolean {
  const relative = path.slice(root.length + 1);
  return ignored.some((pattern) =>
    pattern.startsWith("*.")
      ? relative.endsWith(pattern.slice(1))
      : pattern.includes("/")
        ? relative === pattern || relative.startsWith(`${pattern}/`)
        : relative.split("/").includes(pattern),
  );
}

function copyInto(sources: string[], destination: string): void {
  const toDirectory = destination.endsWith("/") || destination === "./" || sources.length > 1;
  for (const source of sources) {
    const target = toDirectory ? join(app, destination, basename(source)) : join(app, destination);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(root, source), target, { recursive: true, filter: (path) => path === root || !keptOut(path) });
  }
}

describe("the Dockerfile", () => {
  it("builds from what its build stage copies in, and ships what the image copies out: no test, no TypeScript", () => {
    expect(buildStage, "a stage named build").not.toBe("");
    for (const line of buildStage.split("\n")) {
      const copy = /^COPY (.+)$/.exec(line);
      if (copy) {
        const words = copy[1].split(" ");
        copyInto(words.slice(0, -1), words.at(-1) as string);
      } else if (/^RUN npm ci\b/.test(line)) {
        symlinkSync(join(root, "node_modules"), join(app, "node_modules"));
      }
    }
    expect(buildStage).toMatch(/^RUN npm run build\b/m);
    const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: app, encoding: "utf8" });
    expect(build.status, `npm run build in the build stage:\n${build.stderr}${build.stdout}`).toBe(0);

    const copiedOut = [...runtimeStage.matchAll(/^COPY --from=build \/app\/(\S+) /gm)].map((m) => m[1]);
    expect(copiedOut).toContain("web/dist");
    const missing = copiedOut.filter((path) => path !== "node_modules" && !existsSync(join(app, path)));
    expect(missing).toEqual([]);
    expect(existsSync(join(app, "services/gateway/dist/main.js"))).toBe(true);
    // What the image holds of the build: JavaScript, maps, migrations, config and the web app; no test, no TypeScript.
    const shipped = copiedOut
      .filter((path) => path !== "node_modules")
      .flatMap((path) =>
        statSync(join(app, path)).isDirectory()
          ? readdirSync(join(app, path), { recursive: true }).map((file) => `${path}/${String(file)}`)
          : [path],
      );
    expect(shipped.length).toBeGreaterThan(100);
    expect(shipped.filter((file) => /\.test\.|\/test\/|\.ts$|testing/.test(file))).toEqual([]);
  }, 120_000);
});
