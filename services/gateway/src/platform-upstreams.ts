import { type Env, type PlatformDefinition, platform, serviceUrls } from "@portico/kit";
import type { UpstreamConfig } from "./gateway-config.js";

/**
 * The gateway's default upstreams: every proto service of the platform definition
 * (`portico.services.json`) at its service's addresses, `<NAME>_URL` (one or a comma-separated list)
 * or `http://127.0.0.1:<NAME>_PORT` (kit's serviceUrls). The config file's `upstreams` and `GATEWAY_UPSTREAMS` override entries.
 */
export function platformUpstreams(
  env: Env = process.env,
  definition: PlatformDefinition = platform,
): Record<string, UpstreamConfig> {
  return Object.fromEntries(
    definition.services.flatMap((service) => {
      const targets = serviceUrls(service.name, env);
      return service.protoServices.map((name) => [name, { targets, protocol: "connect" } satisfies UpstreamConfig]);
    }),
  );
}
