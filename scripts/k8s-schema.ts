// Offline validation of Kubernetes objects against the API's OpenAPI schemas, as compiled by
// kubernetes-models: field types, required fields, formats. An object whose apiVersion and kind
// have no model is an error too (a typo in either would otherwise pass unseen).
export interface K8sObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: string; namespace?: string };
  [field: string]: unknown;
}

type ModelClass = new (data: object) => { validate(): void };

/** `apps/v1` → `kubernetes-models/apps/v1/<Kind>`; `v1` → `kubernetes-models/v1/<Kind>`. */
async function modelOf(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  if (!/^([a-z0-9.-]+\/)?v\d+(alpha\d+|beta\d+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  try {
    const specifier = `kubernetes-models/${apiVersion}/${kind}`;
    const module = (await import(/* @vite-ignore */ specifier)) as Record<string, ModelClass>;
    return module[kind];
  } catch {
    return undefined;
  }
}

/** The objects' problems, one line each naming the object and the field; empty when all are valid. */
export async function validateK8sObjects(objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) {
    const name = `${String(object.kind)} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata?.name ?? "(no name)"}`;
    if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
      problems.push(`${name}: apiVersion and kind must be strings`);
      continue;
    }
    const Model = await modelOf(object.apiVersion, object.kind);
    if (!Model) {
      problems.push(`${name}: no Kubernetes schema for apiVersion ${object.apiVersion}, kind ${object.kind}`);
      continue;
    }
    if (!object.metadata?.name) problems.push(`${name}: metadata.name is missing`);
    try {
      new Model(object).validate();
    } catch (error) {
      problems.push(`${name}: ${(error as Error).message}`);
    }
  }
  return problems;
}
