// deploy/k8s/: the generated base matches portico.services.json, `kubectl kustomize` renders the
// base and the dev overlay offline, every rendered object is valid against the Kubernetes schemas
// (kubernetes-models), and the objects say what an operator relies on: probes, limits, a locked-down
// pod, a budget and an autoscaler per service, headless backends, policies that let only callers in.
// Without kubectl the rendering tests say so and pass, unless PORTICO_REQUIRE_KUBECTL=1 (CI).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readPlatformDefinition } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { k8sNames, renderK8sFilesOf } from "./generate-k8s.js";
import { type K8sObject, validateK8sObjects } from "./k8s-schema.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const k8sDir = join(root, "deploy/k8s");
const definition = readPlatformDefinition(join(root, "portico.services.json"));
const byName = new Map(definition.services.map((s) => [s.name, s]));
const backends = [...byName.keys()];

const kubectl = (() => {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const required = process.env.PORTICO_REQUIRE_KUBECTL === "1";
if (!kubectl && !required)
  console.log("k8s-manifests.test.ts: no kubectl, rendering skipped (PORTICO_REQUIRE_KUBECTL=1 fails instead)");

function render(dir: string): K8sObject[] {
  const text = execFileSync("kubectl", ["kustomize", join(k8sDir, dir)], { encoding: "utf8", maxBuffer: 64 << 20 });
  return parseAllDocuments(text).map((doc) => doc.toJS() as K8sObject);
}

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are walked as plain JSON
type Json = any;
const find = (objects: K8sObject[], kind: string, name: string): Json => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  expect(found, `${kind} ${name}`).toBeDefined();
  return found;
};

describe("deploy/k8s generated files", () => {
  it("are what `npm run generate` makes of portico.services.json (else: run it and commit)", () => {
    const expected = renderK8sFilesOf(root);
    for (const [path, text] of expected) {
      expect(readFileSync(join(k8sDir, path), "utf8"), `deploy/k8s/${path} is stale: run npm run generate`).toBe(text);
    }
    const base = readdirSync(join(k8sDir, "base")).map((f) => `base/${f}`);
    expect(
      base.filter((f) => !expected.has(f)),
      "files in deploy/k8s/base/ that npm run generate does not make",
    ).toEqual([]);
  });
});

describe("kubectl is there when PORTICO_REQUIRE_KUBECTL=1 asks for it", () => {
  it("runs", () => {
    expect(kubectl || !required, "kubectl is missing: .ci/run installs it").toBe(true);
  });
});

describe.runIf(kubectl)("deploy/k8s rendered with kubectl kustomize", () => {
  for (const dir of ["base", "overlays/dev"]) {
    it(`${dir}: every object is valid against the Kubernetes schemas`, async () => {
      const objects = render(dir);
      expect(objects.length).toBeGreaterThan(5 * (backends.length + 1));
      expect(await validateK8sObjects(objects)).toEqual([]);
    });
  }

  it("the validation catches a broken field", async () => {
    const objects = render("base");
    const deployment = structuredClone(find(objects, "Deployment", "greeter"));
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "grpc";
    const problems = await validateK8sObjects([deployment]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("Deployment greeter");
    expect(problems[0]).toContain("containers/0/ports/0/containerPort must be integer");
    expect(await validateK8sObjects([{ ...find(objects, "Service", "greeter"), apiVersion: "v2" }])).toEqual([
      "Service greeter: no Kubernetes schema for apiVersion v2, kind Service",
    ]);
  });

  it("each service has probes, requests and limits, a locked-down pod, a budget and an autoscaler", () => {
    const objects = render("base");
    for (const name of ["gateway", ...backends]) {
      const pod = find(objects, "Deployment", name).spec.template.spec;
      const [container] = pod.containers;
      expect(container.command.at(-1)).toBe(`services/${name}/dist/main.js`);
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"])
        expect(container[probe], `${name} ${probe}`).toBeDefined();
      if (name !== "gateway") {
        // Native gRPC probes on grpc.health.v1 at the service's own port.
        expect(container.readinessProbe.grpc.port).toBe(byName.get(name)!.port);
        expect(container.livenessProbe.grpc.port).toBe(byName.get(name)!.port);
      } else {
        expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "admin" });
      }
      expect(Object.keys(container.resources.requests).sort()).toEqual(["cpu", "memory"]);
      expect(Object.keys(container.resources.limits).sort()).toEqual(["cpu", "memory"]);
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      const writable = pod.volumes.find((v: Json) => v.name === "tmp");
      expect(writable.emptyDir).toBeDefined();
      expect(container.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
      expect(find(objects, "PodDisruptionBudget", name).spec.selector.matchLabels).toEqual(
        pod.metadata?.labels ?? find(objects, "Deployment", name).spec.selector.matchLabels,
      );
      expect(find(objects, "HorizontalPodAutoscaler", name).spec).toMatchObject({
        scaleTargetRef: { kind: "Deployment", name },
        minReplicas: 2,
      });
    }
  });

  it("backends are headless Services; the gateway is the one public Service and reaches them by their DNS names", () => {
    const objects = render("base");
    const services = objects.filter((o) => o.kind === "Service") as Json[];
    expect(
      services.filter((s) => s.spec.type === "LoadBalancer" || s.spec.type === "NodePort").map((s) => s.metadata.name),
    ).toEqual(["gateway"]);
    const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata?.name === k8sNames.gatewayConfig) as Json;
    const config = JSON.parse(configMap.data["gateway.config.json"]);
    for (const name of backends) {
      const service = find(objects, "Service", name);
      expect(service.spec.clusterIP).toBe("None");
      const { port, protoServices } = byName.get(name)!;
      expect(service.spec.ports[0].port).toBe(port);
      for (const proto of protoServices) expect(config.upstreams[proto].targets).toEqual([`http://${name}:${port}`]);
    }
    // The gateway's pods mount that very ConfigMap.
    const gatewayPod = find(objects, "Deployment", "gateway").spec.template.spec;
    expect(gatewayPod.volumes.find((v: Json) => v.name === "config").configMap.name).toBe(configMap.metadata.name);
  });

  it("NetworkPolicies let only the gateway and the definition's callers reach a backend", () => {
    const objects = render("base");
    expect(find(objects, "NetworkPolicy", "default-deny-ingress").spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
    for (const name of backends) {
      const callers = ["gateway", ...backends.filter((b) => byName.get(b)!.calls.includes(name))];
      const [rule, ...others] = find(objects, "NetworkPolicy", name).spec.ingress;
      expect(others).toEqual([]);
      const names = rule.from[0].podSelector.matchExpressions.find((e: Json) => e.key === "app.kubernetes.io/name");
      expect(names).toEqual({ key: "app.kubernetes.io/name", operator: "In", values: callers });
      expect(rule.ports).toEqual([{ protocol: "TCP", port: byName.get(name)!.port }]);
    }
    // greeter calls lang (portico.services.json), so lang lets the greeter in and nothing lets lang in anywhere else.
    expect(find(objects, "NetworkPolicy", "lang").spec.ingress[0].from[0].podSelector.matchExpressions[0].values).toContain(
      "greeter",
    );
  });

  it("dev: every Secret and ConfigMap a pod reads exists, except the keys an operator creates", () => {
    const objects = render("overlays/dev");
    const have = new Set(
      objects.filter((o) => o.kind === "Secret" || o.kind === "ConfigMap").map((o) => `${o.kind}/${o.metadata?.name}`),
    );
    const outOfBand = new Set([
      k8sNames.trustBundleSecret,
      k8sNames.adminSecret,
      ...["gateway", ...backends].map(k8sNames.keySecret),
    ]);
    const missing: string[] = [];
    for (const workload of objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet") as Json[]) {
      const pod = workload.spec.template.spec;
      const refs: string[] = [];
      for (const c of pod.containers) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) refs.push(`Secret/${e.valueFrom.secretKeyRef.name}`);
        for (const e of c.envFrom ?? []) if (e.secretRef) refs.push(`Secret/${e.secretRef.name}`);
      }
      for (const v of pod.volumes ?? []) {
        if (v.secret) refs.push(`Secret/${v.secret.secretName}`);
        if (v.configMap) refs.push(`ConfigMap/${v.configMap.name}`);
      }
      for (const ref of refs)
        if (!have.has(ref) && !outOfBand.has(ref.split("/")[1]!)) missing.push(`${workload.metadata.name}: ${ref}`);
    }
    expect(missing).toEqual([]);
    expect(objects.every((o) => o.kind === "Namespace" || o.metadata?.namespace === "portico-dev")).toBe(true);
    expect(find(objects, "StatefulSet", "postgres")).toBeDefined();
    expect(find(objects, "StatefulSet", "redis")).toBeDefined();
  });
});
