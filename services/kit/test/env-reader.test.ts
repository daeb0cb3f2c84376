import { describe, expect, it } from "vitest";
import { createEnvReader } from "../src/env-reader.js";
import { readServiceConfig } from "../src/service-config.js";

describe("env reader", () => {
  it("names the variable, the bad value and what is allowed", () => {
    const read = createEnvReader({ PORT: "80a", LEVEL: "loud", DB: "mysql://x", FLAG: "maybe" });
    expect(() => read.port("PORT", 1)).toThrow('PORT="80a" is not valid: expected a whole number from 0 to 65535');
    expect(() => read.oneOf("LEVEL", ["info", "debug"], "info")).toThrow(
      'LEVEL="loud" is not valid: expected one of info, debug',
    );
    expect(() => read.url("DB", ["postgres:"])).toThrow('DB="mysql://x" has protocol mysql:');
    expect(() => read.bool("FLAG", false)).toThrow("expected true or false");
    expect(read.port("MISSING", 8080)).toBe(8080);
  });

  it("gives every service its own database on a shared server", () => {
    const env = { DATABASE_URL: "postgres://u:p@db:5432/portico" };
    expect(readServiceConfig("auth", 8081, env).databaseUrl).toBe("postgres://u:p@db:5432/portico_auth");
    expect(readServiceConfig("greeter", 8082, { ...env, GREETER_DATABASE_URL: "postgres://g@h/own" }).databaseUrl).toBe(
      "postgres://g@h/own",
    );
    expect(readServiceConfig("greeter", 8082, {}).databaseUrl).toBeUndefined();
    expect(() => readServiceConfig("auth", 8081, { AUTH_PORT: "http" })).toThrow(/AUTH_PORT="http"/);
  });
});
