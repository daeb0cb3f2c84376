import { describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../src/gateway-config.js";
import { createTrustedProxies, trustedProxyError } from "../src/trusted-proxies.js";

describe("trusted proxies", () => {
  const trusted = createTrustedProxies(["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8", "2001:db8:0:0:0:0:0:5"]);

  it("matches single addresses and CIDR ranges, IPv4 and IPv6", () => {
    expect(trusted.has("10.0.0.1")).toBe(true);
    expect(trusted.has("10.255.255.255")).toBe(true);
    expect(trusted.has("11.0.0.1")).toBe(false);
    expect(trusted.has("192.168.1.7")).toBe(true);
    expect(trusted.has("192.168.1.8")).toBe(false);
    expect(trusted.has("::1")).toBe(true);
    expect(trusted.has("0:0:0:0:0:0:0:1")).toBe(true);
    expect(trusted.has("::2")).toBe(false);
    expect(trusted.has("fd12:3456::1")).toBe(true);
    expect(trusted.has("fe80::1")).toBe(false);
    // The same address in another spelling.
    expect(trusted.has("2001:db8::5")).toBe(true);
    expect(trusted.has("2001:DB8::5")).toBe(true);
  });

  it("matches IPv4-mapped IPv6 addresses against IPv4 entries and the other way round", () => {
    expect(trusted.has("::ffff:10.1.2.3")).toBe(true);
    expect(trusted.has("::ffff:a01:203")).toBe(true);
    expect(trusted.has("::ffff:11.1.2.3")).toBe(false);
    const mapped = createTrustedProxies(["::ffff:172.16.0.0/108"]);
    expect(mapped.has("172.16.4.4")).toBe(true);
    expect(mapped.has("172.32.0.1")).toBe(false);
  });

  it("matches nothing that is not an IP address", () => {
    for (const text of ["", "unknown", "10.0.0.1:80", "[::1]", "10.0.0.0/8", "localhost"]) {
      expect(trusted.has(text), text).toBe(false);
    }
    const none = createTrustedProxies([]);
    expect(none.size).toBe(0);
    expect(none.has("127.0.0.1")).toBe(false);
    const everyone = createTrustedProxies(["0.0.0.0/0", "::/0"]);
    expect(everyone.has("203.0.113.9")).toBe(true);
    expect(everyone.has("2001:db8::9")).toBe(true);
  });

  it("refuses entries that are neither an address nor a range, naming them", () => {
    for (const ok of ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8", "0.0.0.0/0", "::/0", " 10.0.0.2 ", "::ffff:10.0.0.0/104"]) {
      expect(trustedProxyError(ok), ok).toBeUndefined();
    }
    for (const bad of [
      "10.0.0.0/33",
      "fd00::/129",
      "10.0.0.0/",
      "/8",
      "10.0.0",
      "10.0.0.256",
      "example.com",
      "10.0.0.0/8a",
      "fe80::1%eth0",
      "*",
      "",
    ]) {
      expect(trustedProxyError(bad), bad).toContain(JSON.stringify(bad));
    }
    expect(trustedProxyError("10.0.0.0/33")).toContain("/0 to /32");
    expect(trustedProxyError("fd00::/129")).toContain("/0 to /128");
    expect(() => createTrustedProxies(["10.0.0.1", "10.0.0.0/40"], "here")).toThrow(/^here\[1\]: "10\.0\.0\.0\/40" is not valid/);
  });
});

describe("gateway config: trustedProxies", () => {
  it("accepts addresses and CIDR ranges", () => {
    const config = parseGatewayConfig({ trustedProxies: ["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", " 192.168.0.0/16 "] });
    expect(config.trustedProxies).toEqual(["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "192.168.0.0/16"]);
  });

  it("fails start-up on a bad entry, naming the file, the entry and what is allowed", () => {
    expect(() => parseGatewayConfig({ trustedProxies: ["10.0.0.0/8", "10.0.0.0/33"] }, "gw.json")).toThrow(
      'gw.json: trustedProxies[1]: "10.0.0.0/33" is not valid: the prefix length of an IPv4 range is /0 to /32; expected an IP address or a CIDR range, e.g. "10.0.0.2", "10.0.0.0/8", "::1" or "fd00::/8"',
    );
    expect(() => parseGatewayConfig({ trustedProxies: ["proxy.internal"] }, "gw.json")).toThrow(
      /gw\.json: trustedProxies\[0\]: "proxy\.internal" is not valid; expected an IP address or a CIDR range/,
    );
    expect(() => parseGatewayConfig({ trustedProxies: "10.0.0.0/8" }, "gw.json")).toThrow(
      /trustedProxies: expected a list of strings/,
    );
  });
});
