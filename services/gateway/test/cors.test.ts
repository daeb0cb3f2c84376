import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../src/start-gateway.js";
import { rawRequest, startLoneGateway } from "./test-platform.js";

let gateway: Gateway;
beforeAll(async () => {
  gateway = await startLoneGateway({ corsOrigins: ["https://app.example.com", "*"] });
});
afterAll(async () => {
  await gateway?.close();
});

const preflight = (origin: string) =>
  rawRequest(gateway.url, {
    method: "OPTIONS",
    path: "/portico.greeter.v1.GreeterService/Greet",
    headers: { origin, "access-control-request-method": "POST" },
  });
/** A call the gateway answers itself (no route), as a browser sends it. */
const call = (origin: string) =>
  rawRequest(gateway.url, {
    path: "/no.such.v1.Service/Method",
    headers: { origin, "content-type": "application/json" },
    body: "{}",
  });

describe("CORS", () => {
  it("never answers an unlisted origin with itself and credentials when `*` is configured", async () => {
    for (const res of [await preflight("https://evil.example"), await call("https://evil.example")]) {
      expect(res.headers["access-control-allow-origin"]).toBe("*");
      expect(res.headers["access-control-allow-credentials"]).toBeUndefined();
    }
  });

  it("answers a listed origin with itself and credentials", async () => {
    for (const res of [await preflight("https://app.example.com"), await call("https://app.example.com")]) {
      expect(res.headers["access-control-allow-origin"]).toBe("https://app.example.com");
      expect(res.headers["access-control-allow-credentials"]).toBe("true");
    }
  });
});
