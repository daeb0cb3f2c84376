import { describe, expect, it } from "vitest";
import { addressKey, createAddressAdmission } from "../src/address-admission.js";

// The per-address keys and options; the gateway's use of it is in gateway-http2-limits.test.ts.

describe("addressKey", () => {
  it("keys IPv4 by address, IPv4-mapped IPv6 as IPv4 and IPv6 by its /64", () => {
    expect(addressKey("10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("2001:db8:0:1::5")).toBe("2001:db8:0:1::/64");
    expect(addressKey("2001:db8:0:1:ffff:1:2:3")).toBe("2001:db8:0:1::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
  });

  it("validates its options, naming the bad one", () => {
    expect(() =>
      createAddressAdmission({ abuseBudget: { burst: 1, perSecond: 1 }, maxConnectionsPerAddress: -1, holdMs: 1 }),
    ).toThrow(/maxConnectionsPerAddress must be a positive number, got -1/);
  });
});
