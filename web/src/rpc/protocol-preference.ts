import { type PorticoProtocol, parseProtocol } from "../config/web-config.js";

const storageKey = "portico.protocol";

/**
 * The protocol to start with: `?protocol=` in the page URL, else the user's last choice, else the
 * build's default. Only this preference is stored in localStorage — never a token.
 */
export function initialProtocol(fallback: PorticoProtocol): PorticoProtocol {
  if (typeof window === "undefined") return fallback;
  const fromUrl = new URLSearchParams(window.location.search).get("protocol");
  for (const candidate of [fromUrl, readStored()]) {
    if (!candidate) continue;
    try {
      const protocol = parseProtocol(candidate);
      if (candidate === fromUrl) rememberProtocol(protocol);
      return protocol;
    } catch {
      // An unknown value in the URL or storage falls back to the default.
    }
  }
  return fallback;
}

export function rememberProtocol(protocol: PorticoProtocol): void {
  try {
    window.localStorage.setItem(storageKey, protocol);
  } catch {
    // Storage may be disabled; the choice then lasts until reload.
  }
}

function readStored(): string | null {
  try {
    return window.localStorage.getItem(storageKey);
  } catch {
    return null;
  }
}
