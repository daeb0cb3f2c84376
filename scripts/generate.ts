// npm run generate: lint the protos, regenerate gen/ and the binary image, and write the
// access matrix (every method with its effective gateway policy) for review; then the files
// derived from the platform definition (scripts/generate-platform.ts).
import { execFileSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeOpenApi } from "./generate-openapi.js";
import { generatePlatform } from "./generate-platform.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buf = join(root, "node_modules", ".bin", "buf");
const run = (args: string[]) => execFileSync(buf, args, { cwd: root, stdio: "inherit" });

run(["lint"]);
for (const dir of ["portico", "grpc", "google"]) rmSync(join(root, "gen", dir), { recursive: true, force: true });
run(["generate"]);
run(["build", "--as-file-descriptor-set", "-o", "gen/portico.binpb"]);
(await import("./generate-k8s.js")).writeK8sManifests(root);
writeOpenApi();

const matrixModule = join(root, "services/gateway/src/access-matrix.ts");
if (existsSync(matrixModule)) {
  const { renderAccessMatrix } = (await import(matrixModule)) as {
    renderAccessMatrix: (imagePath: string) => string;
  };
  writeFileSync(join(root, "gen/access-matrix.md"), renderAccessMatrix(join(root, "gen/portico.binpb")));
  console.log("wrote gen/access-matrix.md");
}

// docker-compose.yml, the Dockerfile and the README's port table, from portico.services.json.
for (const file of generatePlatform(root)) console.log(`wrote ${file}`);
