// The gateway's node flags are one fact, portico.services.json's gateway.nodeFlags: npm start, the
// bench, the soak, the Dockerfile, docker-compose.yml and the Kubernetes manifests run it with those,
// so the bench measures the gateway as it is deployed. No script writes one of them itself. The same
// for the flags every backend runs with (serviceNodeFlags).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { platform } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const root = join(import.meta.dirname, "..");
const { nodeFlags } = platform.gateway;

/** Which of `flags` a script (not a test) writes itself, as `file: flag`. */
function writtenInScripts(flags: string[]): string[] {
  const scripts = readdirSync(join(root, "scripts")).filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith(".test.ts"));
  return scripts.flatMap((file) => {
    const text = readFileSync(join(root, "scripts", file), "utf8");
    return flags.filter((flag) => text.includes(`"${flag}"`)).map((flag) => `${file}: ${flag}`);
  });
}

/** The container command of a process's Kubernetes Deployment. */
function deploymentCommand(name: string): string[] {
  const deployment = parseAllDocuments(readFileSync(join(root, `deploy/k8s/base/${name}.yaml`), "utf8"))
    .map((d) => d.toJS())
    .find((o) => o.kind === "Deployment");
  return deployment.spec.template.spec.containers[0].command;
}

describe("the gateway's node flags", () => {
  it("are named in portico.services.json", () => {
    expect(nodeFlags).toContain("--single-threaded-gc");
  });

  it("are written in no script: each one reads the definition", () => {
    expect(writtenInScripts(nodeFlags)).toEqual([]);
  });

  it("are the gateway's in the Dockerfile, docker-compose.yml and the Kubernetes Deployment", () => {
    const command = ["node", ...nodeFlags, "--enable-source-maps", "services/gateway/dist/main.js"];
    const cmd = /^CMD (.*)$/m.exec(readFileSync(join(root, "Dockerfile"), "utf8"))?.[1];
    expect(JSON.parse(cmd ?? "null")).toEqual(command);
    const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"));
    expect(compose.services.gateway.command).toEqual(command);
    expect(deploymentCommand("gateway")).toEqual(["node", ...nodeFlags, "services/gateway/dist/main.js"]);
  });
});

describe("the backends' node flags", () => {
  const { serviceNodeFlags } = platform;

  it("are named in portico.services.json", () => {
    expect(serviceNodeFlags).toContain("--heap-growing-percent=300");
  });

  it("are every backend's in docker-compose.yml and its Kubernetes Deployment, and written in no script", () => {
    const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"));
    for (const { name } of platform.services) {
      const main = `services/${name}/dist/main.js`;
      expect(compose.services[name].command).toEqual(["node", ...serviceNodeFlags, "--enable-source-maps", main]);
      expect(deploymentCommand(name)).toEqual(["node", ...serviceNodeFlags, main]);
    }
    expect(writtenInScripts(serviceNodeFlags)).toEqual([]);
  });
});
