// The Kubernetes base (deploy/k8s/base/) derived from the platform definition (portico.services.json):
// per service a Deployment with probes, resources and a locked-down security context, its Service
// (headless for backends, so the gateway sees every pod; one public Service for the gateway), a
// PodDisruptionBudget, a HorizontalPodAutoscaler and a NetworkPolicy letting in only its callers.
// `npm run generate` writes it (writeK8sBase); scripts/k8s-manifests.test.ts fails when it is stale.
// Objects are typed with kubernetes-models, so a misspelt field fails `npm run lint`.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type PlatformDefinition, type PlatformService, readPlatformDefinition } from "@portico/kit";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { IService } from "kubernetes-models/v1/Service";
import { stringify } from "yaml";

/** Names of what the manifests expect to exist besides themselves (README.md, "Deploying to Kubernetes"). */
export const k8sNames = {
  /** Secret: one key per service with a database, its postgres:// URL. */
  databaseSecret: "portico-database",
  /** Secret: key `url`, the redis:// URL the gateways share rate limits through. */
  redisSecret: "portico-redis",
  /** Secret: key `metrics-token`, the bearer token the gateway's admin /metrics requires (npm run keys). */
  adminSecret: "portico-admin",
  /** Secret: key `trust-bundle.json`, every service's public keys (npm run keys). */
  trustBundleSecret: "portico-trust-bundle",
  /** Secret per service, key `key.json`: its private key (npm run keys). */
  keySecret: (service: string) => `${service}-key`,
  gatewayConfig: "gateway-config",
  image: "portico",
} as const;

const partOf = { "app.kubernetes.io/part-of": "portico" };
const labelsOf = (name: string) => ({ "app.kubernetes.io/name": name, ...partOf });
const upper = (name: string) => name.toUpperCase().replaceAll("-", "_");
const keyDir = "/etc/portico/key";
const trustDir = "/etc/portico/trust";
const gatewayConfigDir = "/etc/portico/gateway";

interface Workload {
  name: string;
  ports: { name: string; port: number }[];
  env: IEnvVar[];
  probes: Pick<IContainer, "startupProbe" | "readinessProbe" | "livenessProbe">;
  resources: NonNullable<IContainer["resources"]>;
  /** Node flags before the entry point. */
  nodeFlags: string[];
  extraVolumes?: { name: string; mountPath: string; configMap: string }[];
}

function deployment(w: Workload): IDeployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: w.name, labels: labelsOf(w.name) },
    spec: {
      // No replicas: the HorizontalPodAutoscaler owns the count (an apply must not reset it).
      revisionHistoryLimit: 5,
      selector: { matchLabels: labelsOf(w.name) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: labelsOf(w.name) },
        spec: {
          automountServiceAccountToken: false,
          // The process drains calls in flight within 10 s of SIGTERM; preStop first lets the
          // endpoint removal reach the gateways and kube-proxy.
          terminationGracePeriodSeconds: 20,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            runAsGroup: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: labelsOf(w.name) },
            },
          ],
          containers: [
            {
              name: w.name,
              image: k8sNames.image,
              imagePullPolicy: "IfNotPresent",
              command: ["node", ...w.nodeFlags, `services/${w.name}/dist/main.js`],
              ports: w.ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: "TCP" })),
              env: [
                ...w.env,
                { name: "PORTICO_SERVICE_KEY_FILE", value: `${keyDir}/key.json` },
                { name: "PORTICO_TRUST_BUNDLE_FILE", value: `${trustDir}/trust-bundle.json` },
                // Nothing is written there when keys and databases come from outside; /tmp is the emptyDir.
                { name: "PORTICO_DATA_DIR", value: "/tmp/portico" },
                { name: "LOG_LEVEL", value: "info" },
              ],
              ...w.probes,
              lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } },
              resources: w.resources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "tmp", mountPath: "/tmp" },
                { name: "key", mountPath: keyDir, readOnly: true },
                { name: "trust-bundle", mountPath: trustDir, readOnly: true },
                ...(w.extraVolumes ?? []).map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: true })),
              ],
            },
          ],
          volumes: [
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            { name: "key", secret: { secretName: k8sNames.keySecret(w.name), defaultMode: 0o440 } },
            // A mounted Secret is updated in place: services re-read the bundle every 30 s (key rotation).
            { name: "trust-bundle", secret: { secretName: k8sNames.trustBundleSecret, defaultMode: 0o440 } },
            ...(w.extraVolumes ?? []).map((v) => ({ name: v.name, configMap: { name: v.configMap } })),
          ],
        },
      },
    },
  };
}

function disruptionBudget(name: string): IPodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, labels: labelsOf(name) },
    spec: { maxUnavailable: 1, selector: { matchLabels: labelsOf(name) } },
  };
}

function autoscaler(name: string, maxReplicas: number): IHorizontalPodAutoscaler {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, labels: labelsOf(name) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: 2,
      maxReplicas,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
    },
  };
}

function networkPolicy(name: string, ingress: NonNullable<INetworkPolicy["spec"]>["ingress"]): INetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, labels: labelsOf(name) },
    spec: { podSelector: { matchLabels: labelsOf(name) }, policyTypes: ["Ingress"], ingress },
  };
}

const grpcProbes = (port: number): Workload["probes"] => ({
  // Native gRPC probes on grpc.health.v1.Health (kit serves it; the call guard lets probes in).
  startupProbe: { grpc: { port }, periodSeconds: 2, failureThreshold: 60 } satisfies IProbe,
  readinessProbe: { grpc: { port }, periodSeconds: 5, failureThreshold: 2 },
  livenessProbe: { grpc: { port }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
});

/** The objects of one backend: Deployment, headless Service, PDB, HPA, NetworkPolicy. */
function backendObjects(definition: PlatformDefinition, service: PlatformService): object[] {
  const { name } = service;
  const portOf = new Map(definition.services.map((s) => [s.name, s.port]));
  const callers = ["gateway", ...definition.services.filter((s) => s.calls.includes(name)).map((s) => s.name)];
  const env: IEnvVar[] = [
    { name: `${upper(name)}_HOST`, value: "0.0.0.0" },
    { name: `${upper(name)}_PORT`, value: String(service.port) },
    ...(service.database
      ? [
          {
            name: `${upper(name)}_DATABASE_URL`,
            valueFrom: { secretKeyRef: { name: k8sNames.databaseSecret, key: name } },
          },
        ]
      : []),
    // kit's service client finds a callee at <NAME>_URL: its headless Service's DNS name.
    ...service.calls.map((callee) => ({
      name: `${upper(callee)}_URL`,
      value: `http://${callee}:${portOf.get(callee)}`,
    })),
  ];
  const headless: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, labels: labelsOf(name) },
    spec: {
      // Headless: DNS answers every ready pod's address, so the gateway balances calls over all
      // of them itself (kube-proxy's L4 balancing would pin one HTTP/2 connection to one pod).
      clusterIP: "None",
      selector: labelsOf(name),
      ports: [{ name: "grpc", port: service.port, targetPort: "grpc", protocol: "TCP", appProtocol: "kubernetes.io/h2c" }],
    },
  };
  return [
    deployment({
      name,
      ports: [{ name: "grpc", port: service.port }],
      env,
      probes: grpcProbes(service.port),
      resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "384Mi" } },
      nodeFlags: definition.serviceNodeFlags,
    }),
    headless,
    disruptionBudget(name),
    autoscaler(name, 6),
    networkPolicy(name, [
      {
        from: [
          {
            podSelector: {
              matchExpressions: [
                { key: "app.kubernetes.io/name", operator: "In", values: callers },
                { key: "app.kubernetes.io/part-of", operator: "In", values: ["portico"] },
              ],
            },
          },
        ],
        ports: [{ protocol: "TCP", port: service.port }],
      },
    ]),
  ];
}

/** The gateway's objects: Deployment, the public Service, PDB, HPA, NetworkPolicy. */
function gatewayObjects(definition: PlatformDefinition, committedConfig: Record<string, unknown>): object[] {
  const { port, adminPort } = definition.gateway;
  // A plain ConfigMap (no hash suffix): an edit reaches the mounted file in place and the gateway
  // reloads it without a restart, as it does on SIGHUP.
  const configMap: IConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: k8sNames.gatewayConfig, labels: labelsOf("gateway") },
    data: { "gateway.config.json": `${JSON.stringify(gatewayConfig(definition, committedConfig), null, 2)}\n` },
  };
  const publicService: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "gateway", labels: labelsOf("gateway") },
    spec: {
      type: "LoadBalancer",
      // The client's own address reaches the gateway (per-IP rate limits, x-forwarded-for).
      externalTrafficPolicy: "Local",
      selector: labelsOf("gateway"),
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
    },
  };
  return [
    deployment({
      name: "gateway",
      ports: [
        { name: "http", port },
        { name: "admin", port: adminPort },
      ],
      env: [
        { name: "GATEWAY_PORT", value: String(port) },
        { name: "ADMIN_PORT", value: String(adminPort) },
        // The kubelet's probes and a Prometheus reach the admin port from outside the pod; /metrics
        // then needs the token (a Prometheus sends it with `authorization.credentials_file`).
        { name: "ADMIN_HOST", value: "0.0.0.0" },
        {
          name: "ADMIN_METRICS_TOKEN",
          valueFrom: { secretKeyRef: { name: k8sNames.adminSecret, key: "metrics-token" } },
        },
        { name: "GATEWAY_CONFIG", value: `${gatewayConfigDir}/gateway.config.json` },
        { name: "REDIS_URL", valueFrom: { secretKeyRef: { name: k8sNames.redisSecret, key: "url" } } },
      ],
      probes: {
        startupProbe: { httpGet: { path: "/healthz", port: "admin" }, periodSeconds: 2, failureThreshold: 60 },
        readinessProbe: { httpGet: { path: "/readyz", port: "admin" }, periodSeconds: 5, failureThreshold: 2 },
        livenessProbe: { httpGet: { path: "/healthz", port: "admin" }, periodSeconds: 10, failureThreshold: 3 },
      },
      resources: { requests: { cpu: "250m", memory: "192Mi" }, limits: { cpu: "2", memory: "512Mi" } },
      // As it runs everywhere (portico.services.json; services/gateway/README.md, "Run").
      nodeFlags: definition.gateway.nodeFlags,
      extraVolumes: [{ name: "config", mountPath: gatewayConfigDir, configMap: k8sNames.gatewayConfig }],
    }),
    publicService,
    configMap,
    disruptionBudget("gateway"),
    autoscaler("gateway", 10),
    networkPolicy("gateway", [
      { ports: [{ protocol: "TCP", port }] },
      // /metrics, /readyz and GatewayService: from the namespace's own pods (e.g. a Prometheus).
      { from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: adminPort }] },
    ]),
  ];
}

/**
 * The gateway's config in the cluster: the committed gateway.config.json (one place for its
 * defaults) with every backend's headless Service as its upstream.
 */
function gatewayConfig(definition: PlatformDefinition, committed: Record<string, unknown>): Record<string, unknown> {
  const upstreams: Record<string, unknown> = {};
  for (const { name, port, protoServices } of definition.services) {
    for (const proto of protoServices) {
      upstreams[proto] = { targets: [`http://${name}:${port}`], protocol: "connect" };
    }
  }
  // The dev server's origins mean nothing in a cluster; an overlay adds its own.
  return { ...committed, upstreams, corsOrigins: [] };
}

const header = (what: string) =>
  `# ${what}\n# Generated by \`npm run generate\` (scripts/generate-k8s.ts) from portico.services.json: do not edit.\n`;

const yamlDocs = (objects: object[]) => objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");

/** Every generated file under deploy/k8s/, by its path there. */
export function renderK8sFiles(
  definition: PlatformDefinition,
  committedGatewayConfig: Record<string, unknown>,
): Map<string, string> {
  const files = new Map<string, string>();
  files.set(
    "base/gateway.yaml",
    header("The gateway: the one public door.") + yamlDocs(gatewayObjects(definition, committedGatewayConfig)),
  );
  for (const service of definition.services) {
    files.set(
      `base/${service.name}.yaml`,
      header(`The ${service.name} service.`) + yamlDocs(backendObjects(definition, service)),
    );
  }
  const denyAll = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny-ingress", labels: partOf },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  } satisfies INetworkPolicy;
  files.set("base/default-deny-ingress.yaml", header("Nothing reaches a pod unless a policy lets it.") + yamlDocs([denyAll]));
  const kustomization = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    labels: [{ pairs: partOf, includeSelectors: false }],
    resources: ["default-deny-ingress.yaml", "gateway.yaml", ...definition.services.map((s) => `${s.name}.yaml`)],
  };
  files.set(
    "base/kustomization.yaml",
    `${header("The base: PostgreSQL and Redis are outside, named by the Secrets portico-database and portico-redis.")}${yamlDocs([kustomization])}`,
  );
  // The in-cluster PostgreSQL's URL for each service that owns a database.
  const urls = definition.services.flatMap(({ name, database }) =>
    database ? [`${name}=postgres://portico:portico@postgres:5432/${database}\n`] : [],
  );
  files.set(`${inClusterData}/portico-database.env`, header("Database URLs of the in-cluster PostgreSQL.") + urls.join(""));
  return files;
}

const inClusterData = "components/in-cluster-data";

/** The generated files as the repository's definition and gateway config make them. */
export function renderK8sFilesOf(root: string): Map<string, string> {
  const definition = readPlatformDefinition(join(root, "portico.services.json"));
  const committed = JSON.parse(readFileSync(join(root, "services/gateway/gateway.config.json"), "utf8"));
  return renderK8sFiles(definition, committed);
}

/** Writes the generated files under deploy/k8s/ (base/ afresh: a removed service's files go too). */
export function writeK8sManifests(root: string): void {
  const dir = join(root, "deploy/k8s");
  const files = renderK8sFilesOf(root);
  rmSync(join(dir, "base"), { recursive: true, force: true });
  for (const [path, text] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  console.log(`wrote deploy/k8s/base/ and ${inClusterData}/portico-database.env`);
}
