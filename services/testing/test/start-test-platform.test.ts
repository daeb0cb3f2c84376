import { Code } from "@connectrpc/connect";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { startGreeter } from "@portico/greeter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectErrorOf, startTestPlatform, type TestPlatform } from "../src/index.js";

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

  it("refuses a service portico.services.json does not define, naming the known ones", async () => {
    await expect(startTestPlatform({ services: { "no-such": startGreeter } })).rejects.toThrow(
      /"no-such" is not a service of portico.services.json \(known: auth, greeter, lang/,
    );
  });
});
