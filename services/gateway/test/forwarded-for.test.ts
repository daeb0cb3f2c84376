import { describe, expect, it } from "vitest";
import type { IncomingHttpHeaders } from "../src/downstream.js";
import { forwardedAddress, forwardedFor } from "../src/forwarded-for.js";
import { createTrustedProxies } from "../src/trusted-proxies.js";

const peer = (address: string, encrypted = false) => ({ address, encrypted });
const xff = (value: string, extra: IncomingHttpHeaders = {}): IncomingHttpHeaders => ({
  ":authority": "api.example.com",
  "x-forwarded-for": value,
  ...extra,
});

describe("x-forwarded-for addresses", () => {
  it("takes brackets, ports and the IPv4-mapped prefix off", () => {
    expect(forwardedAddress("203.0.113.9")).toBe("203.0.113.9");
    expect(forwardedAddress("203.0.113.9:4711")).toBe("203.0.113.9");
    expect(forwardedAddress("[2001:db8::1]:443")).toBe("2001:db8::1");
    expect(forwardedAddress("[2001:db8::1]")).toBe("2001:db8::1");
    expect(forwardedAddress("2001:db8::1")).toBe("2001:db8::1");
    expect(forwardedAddress("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(forwardedAddress("::FFFF:203.0.113.9")).toBe("203.0.113.9");
    expect(forwardedAddress("unknown")).toBe("unknown");
  });
});

describe("forwardedFor", () => {
  const trusted = createTrustedProxies(["10.0.0.0/8", "fd00::/8"]);

  it("believes nothing from a peer that is not a trusted proxy", () => {
    const got = forwardedFor(
      xff("198.51.100.1", { "x-forwarded-proto": "https", "x-forwarded-host": "evil" }),
      peer("203.0.113.9"),
      trusted,
    );
    expect(got).toEqual({ clientIp: "203.0.113.9", header: "203.0.113.9", proto: "http", host: "api.example.com" });
    // Nor with no trusted proxies at all.
    expect(forwardedFor(xff("198.51.100.1"), peer("10.0.0.1"), createTrustedProxies([])).clientIp).toBe("10.0.0.1");
  });

  it("walks x-forwarded-for from the right, skipping trusted proxies: the first untrusted address is the client", () => {
    const got = forwardedFor(
      xff("1.1.1.1, 198.51.100.1, 10.0.0.3", { "x-forwarded-proto": "https", "x-forwarded-host": "app.example.com" }),
      peer("10.0.0.2"),
      trusted,
    );
    // 1.1.1.1 may be forged by the client: only the hop a trusted proxy appended counts.
    expect(got.clientIp).toBe("198.51.100.1");
    expect(got.header).toBe("1.1.1.1, 198.51.100.1, 10.0.0.3, 10.0.0.2");
    expect(got.proto).toBe("https");
    expect(got.host).toBe("app.example.com");
  });

  it("answers the left-most address when every hop is a trusted proxy, and the peer when there is no header", () => {
    expect(forwardedFor(xff("10.9.9.9, fd00::7, 10.0.0.3"), peer("10.0.0.2"), trusted).clientIp).toBe("10.9.9.9");
    const bare = forwardedFor({ ":authority": "a" }, peer("10.0.0.2", true), trusted);
    expect(bare).toEqual({ clientIp: "10.0.0.2", header: "10.0.0.2", proto: "https", host: "a" });
  });

  it("trusts IPv6 ranges and IPv4-mapped hops, and keys the client without ports or ::ffff:", () => {
    expect(forwardedFor(xff("2001:db8::1, fd00::9"), peer("fd00::1"), trusted).clientIp).toBe("2001:db8::1");
    expect(forwardedFor(xff("::ffff:198.51.100.7, ::ffff:10.0.0.3"), peer("10.0.0.2"), trusted).clientIp).toBe("198.51.100.7");
    expect(forwardedFor(xff("198.51.100.7:5123, [fd00::3]:80"), peer("10.0.0.2"), trusted).clientIp).toBe("198.51.100.7");
  });

  it("keeps the behaviour of exact addresses: a hop is trusted only when it is one of them", () => {
    const exact = createTrustedProxies(["127.0.0.1", "10.0.0.2"]);
    expect(forwardedFor(xff("198.51.100.1, 10.0.0.2"), peer("127.0.0.1"), exact).clientIp).toBe("198.51.100.1");
    expect(forwardedFor(xff("198.51.100.1, 10.0.0.3"), peer("127.0.0.1"), exact).clientIp).toBe("10.0.0.3");
    expect(forwardedFor(xff("198.51.100.1"), peer("127.0.0.2"), exact).clientIp).toBe("127.0.0.2");
    // Repeated headers are one list.
    const repeated = forwardedFor(
      { ":authority": "a", "x-forwarded-for": ["198.51.100.1", "10.0.0.2"] } as unknown as IncomingHttpHeaders,
      peer("127.0.0.1"),
      exact,
    );
    expect(repeated.clientIp).toBe("198.51.100.1");
    expect(repeated.header).toBe("198.51.100.1, 10.0.0.2, 127.0.0.1");
  });
});
