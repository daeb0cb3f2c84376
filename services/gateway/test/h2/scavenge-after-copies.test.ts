import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { platform } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { scavengeAfterCopiedBytes } from "../../src/h2/scavenge-after-copies.js";
import { MiB } from "./test-peers.js";

const fixture = join(import.meta.dirname, "copy-memory-fixture.ts");

/** The fixture in a node of its own with `flags`: what it received and the most array-buffer memory it held above its start. */
function upload(flags: readonly string[]): { received: number; held: number; gcExposed: boolean } {
  const out = execFileSync(process.execPath, [...flags, "--import", "tsx", fixture], { encoding: "utf8", timeout: 60_000 });
  return JSON.parse(out);
}

describe("DATA copied out of the read buffer (W3: 64 KiB each way)", { timeout: 120_000 }, () => {
  it("is freed as it dies under the gateway's node flags: 48 MiB of uploads hold a few MiB, not tens", () => {
    const deployed = upload(platform.gateway.nodeFlags);
    expect(deployed.gcExposed).toBe(true);
    expect(deployed.received).toBe(48 * MiB);
    // What waits for a collection is bounded by the count (plus what is in flight), not by the traffic.
    expect(deployed.held).toBeLessThan(scavengeAfterCopiedBytes + 6 * MiB);
    // Without V8's gc function the copies wait for V8's own scavenges (measured: 14–15 MiB against 6–7.5).
    const without = upload(platform.gateway.nodeFlags.filter((flag) => flag !== "--expose-gc"));
    expect(without.gcExposed).toBe(false);
    expect(without.received).toBe(48 * MiB);
    expect(without.held).toBeGreaterThan(1.6 * deployed.held);
  });
});
