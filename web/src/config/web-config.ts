/** The wire protocol the browser speaks to the gateway. */
export type PorticoProtocol = "connect" | "grpc-web";

export const protocols: readonly PorticoProtocol[] = ["connect", "grpc-web"];

export interface WebConfig {
  /** Where the gateway answers RPCs; "" means the page's own origin. */
  readonly baseUrl: string;
  /** The protocol chosen at build time (VITE_PORTICO_PROTOCOL), before any runtime toggle. */
  readonly protocol: PorticoProtocol;
}

export interface WebConfigSource {
  readonly VITE_PORTICO_URL?: string;
  readonly VITE_PORTICO_PROTOCOL?: string;
}

/**
 * Reads the app's settings from Vite's env (import.meta.env) once at start-up, failing with
 * a message that names the bad value and what is allowed.
 */
export function readWebConfig(env: WebConfigSource): WebConfig {
  const protocol = parseProtocol(env.VITE_PORTICO_PROTOCOL || "connect", "VITE_PORTICO_PROTOCOL");
  const rawUrl = (env.VITE_PORTICO_URL ?? "").trim();
  let baseUrl = "";
  if (rawUrl !== "") {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new Error(
        `VITE_PORTICO_URL: "${rawUrl}" is not an absolute URL; use e.g. http://localhost:8080, or leave it unset for the page's origin`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`VITE_PORTICO_URL: "${rawUrl}" must use http: or https:`);
    }
    baseUrl = url.href.replace(/\/+$/, "");
  }
  return { baseUrl, protocol };
}

export function parseProtocol(value: string, name = "protocol"): PorticoProtocol {
  const normalized = value.trim().toLowerCase();
  if (normalized === "connect" || normalized === "grpc-web") {
    return normalized;
  }
  throw new Error(`${name}: "${value}" is not a protocol the browser speaks; use "connect" or "grpc-web"`);
}
