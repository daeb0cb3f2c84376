// npm run generate's OpenAPI step: gen/openapi.json, the OpenAPI 3.1 document of every routed,
// non-INTERNAL method (Connect and REST), from the image and the platform definition
// (portico.services.json: a service listed there is routed by the gateway). It checks every
// google.api.http binding with the gateway's own parser, so an invalid one fails the generation
// with the method and the reason. Run alone: node --conditions=source --import tsx scripts/generate-openapi.ts [image] [out]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gatewayDefaults, loadImage, openApiMethodsOf, readHttpBindings, renderOpenApi, servicesOf } from "@portico/gateway";
import { resolvePolicy } from "@portico/kit";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The document as written to gen/openapi.json (deterministic, two-space JSON). */
export function renderOpenApiFile(imagePath: string, definitionPath: string): string {
  const { registry } = loadImage(imagePath);
  const services = servicesOf(registry);
  readHttpBindings(services);
  const definition = JSON.parse(readFileSync(definitionPath, "utf8")) as {
    services: Record<string, { protoServices?: string[] }>;
  };
  const routed = new Set(Object.values(definition.services).flatMap((s) => s.protoServices ?? []));
  const methods = openApiMethodsOf(
    services.flatMap((service) =>
      service.methods.map((method) => {
        const policy = resolvePolicy(method);
        return {
          method,
          routed: routed.has(service.typeName),
          timeoutMs: policy.timeoutMs ?? gatewayDefaults.defaultTimeoutMs,
          maxRequestBytes: policy.maxRequestBytes ?? gatewayDefaults.defaultMaxRequestBytes,
        };
      }),
    ),
  );
  return `${JSON.stringify(renderOpenApi({ methods }), null, 2)}\n`;
}

/** Writes `out` from `image`; an invalid binding (or image) ends the process with one line naming it. */
export function writeOpenApi(image = join(root, "gen/portico.binpb"), out = join(root, "gen/openapi.json")): void {
  try {
    writeFileSync(out, renderOpenApiFile(image, join(root, "portico.services.json")));
  } catch (error) {
    console.error(`npm run generate: ${(error as Error).message}`);
    process.exit(1);
  }
  console.log(`wrote ${out.startsWith(root) ? out.slice(root.length + 1) : out}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeOpenApi(process.argv[2], process.argv[3]);
}
