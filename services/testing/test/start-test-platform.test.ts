import { Code, createClient } from "@connectrpc/connect";
import { startGateway } from "@portico/gateway";
import { AuthService } from "@portico/gen/portico/auth/v1/auth_pb.js";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { startGreeter } from "@portico/greeter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectErrorOf, createGatewayTransports, startTestPlatform, type TestPlatform } from "../src/index.js";

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({ services: { greeter: startGreeter } });
});
afterAll(async () => {
  await platform?.close();
});

describe("the test harness", () => {
  it("serves a backend's handlers through the gateway to a signed-up user, and to nobody else", async () => {
    const ada = await platform.signUp("Ada");
    const greeter = platform.client(GreeterService);
    expect((await greeter.greet({ name: "Ada" }, ada)).greeting).toBe("Hello, Ada!");
    expect((await connectErrorOf(greeter.greet({ name: "Ada" })))?.code).toBe(Code.Unauthenticated);
  });

  it("signs users up with the roles a policy asks for", async () => {
    const greeter = platform.client(GreeterService);
    const ada = await platform.signUp("Ada");
    const admin = await platform.signUp("Root", { roles: ["greeter.admin"] });
    expect((await connectErrorOf(greeter.purgeGreetings({}, ada)))?.code).toBe(Code.PermissionDenied);
    await greeter.greet({ name: "Ada" }, ada);
    expect((await greeter.purgeGreetings({}, admin)).deleted).toBeGreaterThan(0n);
  });

  it("stops a backend (the gateway answers unavailable) and starts it again on its port and database, history kept", async () => {
    const ada = await platform.signUp("Ada");
    const greeter = platform.client(GreeterService);
    await greeter.greet({ name: "Ada" }, ada);
    const url = platform.urlOf("greeter");
    await platform.stop("greeter");
    expect((await connectErrorOf(greeter.greet({ name: "Ada" }, ada)))?.code).toBe(Code.Unavailable);
    await platform.start("greeter");
    expect(platform.urlOf("greeter")).toBe(url);
    expect((await greeter.listGreetings({ pageSize: 10 }, ada)).greetings.length).toBeGreaterThan(0);
  });

  it("reaches the gateway over every protocol it speaks, and raw HTTP/2", async () => {
    const ada = await platform.signUp("Ada");
    for (const [protocol, transport] of Object.entries(platform.transports)) {
      const res = await platform.client(GreeterService, transport).greet({ name: protocol }, ada);
      expect(res.greeting).toBe(`Hello, ${protocol}!`);
    }
    const raw = await platform.raw({
      path: "/portico.greeter.v1.GreeterService/Greet",
      headers: { "content-type": "application/json", ...ada.headers },
      body: JSON.stringify({ name: "raw" }),
    });
    expect(raw.status).toBe(200);
    expect(JSON.parse(raw.body.toString("utf8"))).toMatchObject({ greeting: "Hello, raw!" });
    expect(
      (
        await platform.raw({
          path: "/portico.greeter.v1.GreeterService/Greet",
          headers: { "content-type": "application/json" },
          body: "{}",
        })
      ).status,
    ).toBe(401);
  });

  it("stops the auth service too and starts it again, its users kept", async () => {
    const ada = await platform.signUp("Ada");
    const auth = platform.client(AuthService);
    await platform.stop("auth");
    expect((await connectErrorOf(auth.login({ email: ada.email, password: "correct horse battery staple" })))?.code).toBe(
      Code.Unavailable,
    );
    await platform.start("auth");
    expect((await auth.login({ email: ada.email, password: "correct horse battery staple" })).user?.id).toBe(ada.userId);
  });

  it("starts another gateway in front of the same services from gatewayOptions", async () => {
    const ada = await platform.signUp("Ada");
    const other = await startGateway({ ...platform.gatewayOptions });
    try {
      expect(other.url).not.toBe(platform.url);
      const greeter = createClient(GreeterService, createGatewayTransports(other.url).connect);
      expect((await greeter.greet({ name: "Ada" }, ada)).greeting).toBe("Hello, Ada!");
    } finally {
      await other.close();
    }
  });

  it("refuses a service portico.services.json does not define, naming the known ones", async () => {
    await expect(startTestPlatform({ services: { "no-such": startGreeter } })).rejects.toThrow(
      /"no-such" is not a service of portico.services.json \(known: auth, greeter, lang/,
    );
  });

  it("refuses auth among the services: it is always started, with the `auth` options", async () => {
    await expect(startTestPlatform({ services: { auth: startGreeter } })).rejects.toThrow(/auth is always started/);
  });
});
