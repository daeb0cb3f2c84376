import { ConfigError } from "@portico/kit";
import { describe, expect, it } from "vitest";
import { parseGatewayConfig, parseTrustedProxiesEnv, parseUpstreamsEnv } from "../src/gateway-config.js";

describe("gateway settings from the environment", () => {
  it("reads GATEWAY_UPSTREAMS: several targets, a protocol, and the default connect", () => {
    expect(
      parseUpstreamsEnv(
        "pkg.v1.FooService=http://10.0.0.5:9000;http://10.0.0.6:9000@grpc, pkg.v1.BarService=http://127.0.0.1:9100",
      ),
    ).toEqual({
      "pkg.v1.FooService": { targets: ["http://10.0.0.5:9000", "http://10.0.0.6:9000"], protocol: "grpc" },
      "pkg.v1.BarService": { targets: ["http://127.0.0.1:9100"], protocol: "connect" },
    });
  });

  it("refuses a GATEWAY_UPSTREAMS entry without a target or with an unknown protocol, naming it", () => {
    expect(() => parseUpstreamsEnv("pkg.v1.FooService")).toThrow(ConfigError);
    expect(() => parseUpstreamsEnv("pkg.v1.FooService")).toThrow(/GATEWAY_UPSTREAMS: "pkg.v1.FooService" is not valid/);
    expect(() => parseUpstreamsEnv("pkg.v1.FooService=http://a:1@soap")).toThrow(/soap/);
  });

  it("reads GATEWAY_TRUSTED_PROXIES: addresses and CIDR ranges, IPv4 and IPv6", () => {
    expect(parseTrustedProxiesEnv(" 10.0.0.0/8, fd00::/8,192.168.1.4 ,")).toEqual(["10.0.0.0/8", "fd00::/8", "192.168.1.4"]);
    expect(parseTrustedProxiesEnv("")).toEqual([]);
  });

  it("refuses a GATEWAY_TRUSTED_PROXIES entry that is not an address or a range, naming it and what is allowed", () => {
    expect(() => parseTrustedProxiesEnv("10.0.0.0/8,proxy.internal")).toThrow(ConfigError);
    expect(() => parseTrustedProxiesEnv("10.0.0.0/8,proxy.internal")).toThrow(
      /GATEWAY_TRUSTED_PROXIES\[1\]: "proxy.internal" is not valid; expected an IP address or a CIDR range/,
    );
    expect(() => parseTrustedProxiesEnv("10.0.0.0/33")).toThrow(/\/0 to \/32/);
  });
});

describe("gateway config file", () => {
  it("reads the public port's http2 limits and refuses unknown or out-of-range ones, naming them", () => {
    const upstreams = {};
    expect(
      parseGatewayConfig({
        upstreams,
        http2: { maxConcurrentStreams: 64, resetBudget: { burst: 50, perSecond: 5 }, stallTimeoutMs: 10_000 },
      }).http2,
    ).toEqual({ maxConcurrentStreams: 64, resetBudget: { burst: 50, perSecond: 5 }, stallTimeoutMs: 10_000 });
    expect(() => parseGatewayConfig({ upstreams, http2: { maxStreams: 1 } }, "gw.json")).toThrow(
      /gw.json: http2: unknown field "maxStreams"/,
    );
    expect(() => parseGatewayConfig({ upstreams, http2: { maxConcurrentStreams: 0 } }, "gw.json")).toThrow(
      /gw.json: http2.maxConcurrentStreams: 0 is not valid/,
    );
    expect(() => parseGatewayConfig({ upstreams, http2: { resetBudget: { burst: 5 } } }, "gw.json")).toThrow(
      /http2.resetBudget: expected both burst and perSecond/,
    );
  });

  it("takes http:// (h2c) and https:// (TLS, port 443 by default) targets and refuses others, naming the entry", () => {
    const config = parseGatewayConfig({
      upstreams: { "pkg.v1.FooService": ["http://10.0.0.5:9000", "https://foo.internal", "https://10.0.0.6:8443"] },
    });
    expect(config.upstreams["pkg.v1.FooService"]?.targets).toEqual([
      "http://10.0.0.5:9000",
      "https://foo.internal",
      "https://10.0.0.6:8443",
    ]);
    for (const target of ["ftp://a:1", "http://a", "https://a/path", "h2c://a:1"]) {
      expect(() => parseGatewayConfig({ upstreams: { "pkg.v1.FooService": [target] } }, "gw.json")).toThrow(
        /gw\.json.*pkg\.v1\.FooService.*expected http:\/\/host:port \(h2c\) or https:\/\/host\[:port\] \(TLS\)/,
      );
    }
  });

  it("reads an upstream's connections per address and refuses what is not a whole number from 1 to 64", () => {
    const upstreams = { "pkg.v1.FooService": { targets: ["http://10.0.0.5:9000"], protocol: "grpc", connections: 4 } };
    expect(parseGatewayConfig({ upstreams }).upstreams["pkg.v1.FooService"]).toEqual({
      targets: ["http://10.0.0.5:9000"],
      protocol: "grpc",
      connections: 4,
    });
    for (const connections of [0, 65, 1.5, "4"]) {
      const bad = { upstreams: { "pkg.v1.FooService": { targets: ["http://10.0.0.5:9000"], connections } } };
      expect(() => parseGatewayConfig(bad, "gw.json")).toThrow(ConfigError);
      expect(() => parseGatewayConfig(bad, "gw.json")).toThrow(
        /upstreams\["?pkg.v1.FooService"?\]\.connections|pkg.v1.FooService.*connections.*from 1 to 64/,
      );
    }
  });

  it("reads the DNS discovery settings and refuses a bad refresh period or server, naming them", () => {
    const upstreams = {};
    expect(parseGatewayConfig({ upstreams, dns: { refreshMs: 2000, servers: ["10.96.0.10", "127.0.0.1:5353"] } }).dns).toEqual({
      refreshMs: 2000,
      servers: ["10.96.0.10", "127.0.0.1:5353"],
    });
    expect(() => parseGatewayConfig({ upstreams, dns: { refreshMs: 0 } }, "gw.json")).toThrow(
      /gw.json: dns.refreshMs: 0 is not valid; expected a whole number from 10/,
    );
    expect(() => parseGatewayConfig({ upstreams, dns: { servers: ["kube-dns"] } }, "gw.json")).toThrow(
      /gw.json: dns.servers\[0\]: "kube-dns" is not valid; expected an IP address/,
    );
    expect(() => parseGatewayConfig({ upstreams, dns: { ttl: 5 } }, "gw.json")).toThrow(/dns: unknown field "ttl"/);
  });

  it("reads identityClaimHeaders as true or false and refuses anything else, naming it", () => {
    expect(parseGatewayConfig({ upstreams: {}, identityClaimHeaders: true }).identityClaimHeaders).toBe(true);
    expect(parseGatewayConfig({ upstreams: {} }).identityClaimHeaders).toBeUndefined();
    expect(() => parseGatewayConfig({ upstreams: {}, identityClaimHeaders: "yes" }, "gw.json")).toThrow(
      /gw.json: identityClaimHeaders: "yes" is not valid; expected true or false/,
    );
  });
});
