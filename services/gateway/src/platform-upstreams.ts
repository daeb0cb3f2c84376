import { type Env, type PlatformDefinition, platform, serviceUrl } from "@portico/kit";
import type { UpstreamConfig } from "./gateway-config.js";

/**
 * The gateway's default upstreams: every proto service of the platform definition
 * (`portico.services.json`) at its service's address, `<NAME>_URL` or `http://127.0.0.1:<NAME>_PORT`
 * (kit's serviceUrl). The config file's `upstreams` and `GATEWAY_UPSTREAMS` override entries.
 */
export function platformUpstreams(
  env: Env = process.env,
  definition: PlatformDefinition = platform,
): Record<string, UpstreamConfig> {
  return Object.fromEntries(
    definition.services.flatMap((service) => {
      const target = serviceUrl(service.name, env);
      return service.protoServices.map((name) => [name, { targets: [target], protocol: "connect" } satisfies UpstreamConfig]);
    }),
  );
}
