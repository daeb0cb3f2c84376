// npm run new:service -- <name>: scaffolds a backend service from scripts/templates/service/:
// proto/portico/<name>/v1/<name>.proto (<Name>Service with an authenticated Hello rpc and its
// policy), the package services/<name>/ (handler, start, main, index, migrations, a test through
// a real gateway), its entry in portico.services.json (the next free port), the root workspaces
// and tsconfig references; then npm install (links the workspace, updates the lock) and
// npm run generate. A bad name is refused with one line and exit code 1, changing nothing.
// --no-install skips npm install (the CI test links the workspace itself).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { readPlatformDefinition } from "@portico/kit";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const templates = join(root, "scripts/templates/service");

/** Names that are taken by the platform's own parts or by protobuf and gRPC's packages. */
export const reservedNames = ["gateway", "kit", "web", "gen", "google", "grpc", "testing", "portico", "proto", "scripts"];
const NAME = /^[a-z][a-z0-9]{0,30}$/;

/** Why `name` cannot be a new service, or undefined when it can. */
export function refusal(name: string | undefined, repo: string): string | undefined {
  if (!name) return "usage: npm run new:service -- <name>   (lower-case letters and digits, e.g. billing)";
  if (!NAME.test(name)) {
    return `"${name}" is not a valid proto package name: use lower-case letters and digits, starting with a letter, at most 31 (e.g. billing)`;
  }
  if (reservedNames.includes(name)) return `"${name}" is reserved (${reservedNames.join(", ")}); choose another name`;
  const platform = readPlatformDefinition(join(repo, "portico.services.json"));
  if (platform.services.some((s) => s.name === name)) return `a service named "${name}" already exists in portico.services.json`;
  for (const path of [`services/${name}`, `proto/portico/${name}`]) {
    if (existsSync(join(repo, path))) return `${path} already exists; choose another name`;
  }
  return undefined;
}

/** The next port above every service's that the gateway does not use. */
function nextPort(repo: string): number {
  const platform = readPlatformDefinition(join(repo, "portico.services.json"));
  const taken = new Set([platform.gateway.port, platform.gateway.adminPort, ...platform.services.map((s) => s.port)]);
  let port = Math.max(...platform.services.map((s) => s.port), platform.gateway.port) + 1;
  while (taken.has(port)) port++;
  return port;
}

/** Copies the templates with `__name__` in paths and `{{name}}`, `{{Name}}`, `{{NAME}}` in contents replaced. */
function render(from: string, to: string, values: Record<string, string>): string[] {
  const written: string[] = [];
  for (const entry of readdirSync(from)) {
    const source = join(from, entry);
    const target = join(to, entry.replaceAll("__name__", values.name as string).replace(/\.tmpl$/, ""));
    if (statSync(source).isDirectory()) {
      written.push(...render(source, target, values));
      continue;
    }
    const text = readFileSync(source, "utf8").replace(/\{\{(\w+)\}\}/g, (match, key: string) => values[key] ?? match);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    written.push(target);
  }
  return written;
}

function editJson(path: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  edit(json);
  writeFileSync(path, `${JSON.stringify(json, null, 2)}\n`);
}

/** Inserts `item` before `before` in `list` (at the end when absent). */
function insertBefore<T>(list: T[], item: T, before: (t: T) => boolean): void {
  const at = list.findIndex(before);
  list.splice(at < 0 ? list.length : at, 0, item);
}

function scaffold(name: string, install: boolean): void {
  const Name = name[0]?.toUpperCase() + name.slice(1);
  const values = { name, Name, NAME: name.toUpperCase() };
  const port = nextPort(root);
  const written = [
    ...render(join(templates, "proto"), join(root, "proto/portico", name, "v1"), values),
    ...render(join(templates, "package"), join(root, "services", name), values),
  ];
  const kit = JSON.parse(readFileSync(join(root, "services/kit/package.json"), "utf8")) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const packageJson = {
    name: `@portico/${name}`,
    version: kit.version,
    private: true,
    type: "module",
    exports: { ".": { source: "./src/index.ts", default: "./dist/index.js" } },
    dependencies: {
      "@bufbuild/protobuf": kit.dependencies["@bufbuild/protobuf"],
      "@connectrpc/connect": kit.dependencies["@connectrpc/connect"],
      "@portico/gen": kit.version,
      "@portico/kit": kit.version,
    },
    devDependencies: { "@portico/testing": kit.version },
  };
  writeFileSync(join(root, "services", name, "package.json"), `${JSON.stringify(packageJson, null, 2)}\n`);
  written.push(join(root, "services", name, "package.json"));

  const definitionPath = join(root, "portico.services.json");
  const definition = JSON.parse(readFileSync(definitionPath, "utf8")) as Record<string, unknown>;
  const services = definition.services as Record<string, unknown>;
  services[name] = { port, protoServices: [`portico.${name}.v1.${Name}Service`], database: name };
  // One line per service, as the file is written by hand (biome then spaces it).
  const entries = Object.entries(definition).map(([key, value]) =>
    key === "services"
      ? `  "services": {\n${Object.entries(services)
          .map(([n, s]) => `    ${JSON.stringify(n)}: ${JSON.stringify(s)}`)
          .join(",\n")}\n  }`
      : `  ${JSON.stringify(key)}: ${JSON.stringify(value)}`,
  );
  writeFileSync(definitionPath, `{\n${entries.join(",\n")}\n}\n`);
  editJson(join(root, "package.json"), (json) => {
    insertBefore(json.workspaces as string[], `services/${name}`, (w) => w === "services/gateway" || w === "web");
  });
  editJson(join(root, "tsconfig.json"), (json) => {
    const references = json.references as { path: string }[];
    insertBefore(references, { path: `services/${name}` }, (r) => r.path === "services/gateway" || r.path === "web");
  });
  for (const file of written) console.log(`created ${relative(root, file)}`);
  console.log(`registered ${name} in portico.services.json (port ${port}), the root workspaces and tsconfig.json references`);

  const run = (command: string, args: string[], stdout: "inherit" | "ignore" = "inherit") =>
    execFileSync(command, args, { cwd: root, stdio: ["ignore", stdout, "inherit"] });
  const biome = join(root, "node_modules/.bin/biome");
  run(biome, ["check", "--write", "portico.services.json", "package.json", "tsconfig.json", `services/${name}`], "ignore");
  // The files are in place: a step that fails says so and what to run once it is fixed.
  const step = (command: string, args: string[]) => {
    try {
      run(command, args);
    } catch {
      process.stderr.write(
        `new:service: \`${command} ${args[0]}\` failed (above); ${name}'s files are in place: fix it and run npm install && npm run generate\n`,
      );
      process.exit(1);
    }
  };
  if (install) step("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]);
  step("npm", ["run", "generate", "--silent"]);
  console.log(`
${Name}Service is ready: npx vitest run services/${name}, then npm start serves
  /portico.${name}.v1.${Name}Service/Hello through the gateway (${name} itself on port ${port}).`);
}

const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith("--"));
const why = refusal(name, root) ?? (args.filter((a) => !a.startsWith("--")).length > 1 ? "give one name" : undefined);
if (why) {
  process.stderr.write(`new:service: ${why}\n`);
  process.exit(1);
}
scaffold(name as string, !args.includes("--no-install"));
