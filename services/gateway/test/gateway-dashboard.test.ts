// The observability files under deploy/compose/ stay true to the gateway: every metric the
// provisioned Grafana dashboard queries is one the gateway's admin /metrics exports, and every
// file the compose services mount exists.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { startLoneGateway } from "./test-platform.js";

const compose = fileURLToPath(new URL("../../../deploy/compose/", import.meta.url));

describe("the gateway's Grafana dashboard and the observability compose file", () => {
  it("queries only metrics the gateway exports", async () => {
    const gateway = await startLoneGateway();
    const exported = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    await gateway.close();
    const types = new Set([...exported.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    const dashboard = JSON.parse(readFileSync(`${compose}grafana/dashboards/portico-gateway.json`, "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets) {
        for (const [name] of expr.matchAll(/portico_gateway_\w+/g)) queried.add(name.replace(/_(bucket|sum|count)$/, ""));
      }
    }
    expect(queried.size).toBeGreaterThan(8);
    expect([...queried].filter((name) => !types.has(name))).toEqual([]);
  });

  it("mounts only files that exist, and puts every service behind the observability profile", () => {
    const text = readFileSync(`${compose}observability.yml`, "utf8");
    // Files of the repository (`./…`); `../keys/…` are written by `npm run keys -- init --dir deploy`.
    const mounts = [...text.matchAll(/(?<!\.)\.\/([\w./-]+):/g)].map((m) => m[1] as string);
    expect(mounts.length).toBeGreaterThanOrEqual(4);
    expect(mounts.filter((path) => !existsSync(`${compose}${path}`))).toEqual([]);
    const keys = [...text.matchAll(/\.\.\/keys\/([\w.-]+):/g)].map((m) => m[1]);
    expect(keys).toEqual(["metrics-token"]);
    const services = text.split("\nservices:\n")[1]?.split(/\n(?= {2}\w)/) ?? [];
    expect(services.length).toBe(4);
    for (const service of services) expect(service, service.split("\n")[0]).toContain("profiles: [observability]");
  });
});
