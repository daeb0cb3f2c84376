import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@portico/gen/grpc/health/v1/health_pb.js";
import { LanguageService, Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { createLogger, type Database, type Identity } from "@portico/kit";
import { createTestKeys, openTestDatabase } from "@portico/kit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LangServer, startLang } from "../src/start-lang.js";

const keys = createTestKeys();
const user = (userId: string): Identity => ({
  userId,
  tier: "free",
  roles: [],
  sessionId: `s-${userId}`,
  clientAddress: "203.0.113.7",
});

let db: Database;
let server: LangServer;

beforeAll(async () => {
  db = await openTestDatabase("lang");
  server = await startLang({ db, logger: createLogger({ service: "lang", level: "silent" }), identity: keys.identity("lang") });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const client = () => createClient(LanguageService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
/** A call the gateway forwards for `who`. */
const as = (who: Identity) => ({ headers: { "x-portico-identity": keys.assertion(who, "lang") } });
/** A call from `service` on its own behalf, or for `who` who called it (the assertion addressed to that service). */
const from = (service: string, who?: Identity) => ({
  headers: {
    "x-portico-service": keys.identity(service).signer.serviceToken("lang"),
    ...(who ? { "x-portico-identity": keys.assertion(who, service) } : {}),
  },
});
const failure = (call: Promise<unknown>) =>
  call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );

describe("LanguageService", () => {
  it("lists the supported languages with their names, to anyone", async () => {
    const { languages } = await client().listLanguages({});
    expect(languages.map((l) => l.code)).toEqual(["en", "es", "fr", "de", "ja"]);
    expect(languages.find((l) => l.code === "ja")).toMatchObject({ name: "Japanese", nativeName: "日本語" });
  });

  it("remembers each caller's own language; English until they choose", async () => {
    const ada = user("user-ada");
    const bob = user("user-bob");
    expect(await client().getLanguage({}, as(ada))).toMatchObject({ language: "en", chosen: false });
    expect((await client().setLanguage({ language: "es" }, as(ada))).language).toBe("es");
    await client().setLanguage({ language: "de" }, as(bob));
    expect(await client().getLanguage({}, as(ada))).toMatchObject({ language: "es", chosen: true });
    await client().setLanguage({ language: "ja" }, as(ada));
    expect(await client().getLanguage({}, as(ada))).toMatchObject({ language: "ja", chosen: true });
    expect((await client().getLanguage({}, as(bob))).language).toBe("de");
  });

  it("refuses an unsupported code with invalid_argument naming the allowed ones, and keeps the old choice", async () => {
    const cy = user("user-cy");
    await client().setLanguage({ language: "fr" }, as(cy));
    for (const language of ["xx", "", "ES", "es-ES"]) {
      const err = await failure(client().setLanguage({ language }, as(cy)));
      expect(err?.code, language).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toContain("expected one of en, es, fr, de, ja");
    }
    expect((await client().getLanguage({}, as(cy))).language).toBe("fr");
  });

  it("translates a greeting into each language", async () => {
    const expected: Record<string, string> = {
      en: "Hello, Ada!",
      es: "Hola, Ada!",
      fr: "Bonjour, Ada !",
      de: "Hallo, Ada!",
      ja: "こんにちは、Adaさん！",
    };
    for (const [language, text] of Object.entries(expected)) {
      const res = await client().translate({ phrase: Phrase.GREETING, name: " Ada ", language }, from("greeter"));
      expect(res).toMatchObject({ text, language });
    }
  });

  it("translates into the preferred language of the user the call is made for", async () => {
    const dee = user("user-dee");
    await client().setLanguage({ language: "fr" }, as(dee));
    expect(await client().translate({ phrase: Phrase.GREETING, name: "Dee" }, from("greeter", dee))).toMatchObject({
      text: "Bonjour, Dee !",
      language: "fr",
    });
    const eve = user("user-eve");
    expect((await client().translate({ phrase: Phrase.GREETING, name: "Eve" }, from("greeter", eve))).text).toBe("Hello, Eve!");
    expect((await client().translate({ phrase: Phrase.GREETING, name: "Nobody" }, from("greeter"))).language).toBe("en");
  });

  it("refuses a bad phrase, name or language with invalid_argument", async () => {
    for (const req of [
      { phrase: Phrase.UNSPECIFIED, name: "Ada" },
      { phrase: Phrase.GREETING, name: "  " },
      { phrase: Phrase.GREETING, name: "x".repeat(101) },
      { phrase: Phrase.GREETING, name: "Ada", language: "klingon" },
    ]) {
      expect((await failure(client().translate(req, from("greeter"))))?.code).toBe(Code.InvalidArgument);
    }
  });

  it("answers Translate to the greeter only", async () => {
    const ada = user("user-ada");
    const req = { phrase: Phrase.GREETING, name: "Ada", language: "es" };
    // No service token: a user's own call (even with a valid assertion for lang) is not enough.
    for (const options of [{}, as(ada)]) {
      expect((await failure(client().translate(req, options)))?.code).toBe(Code.Unauthenticated);
    }
    // A service not listed in the policy's callers.
    expect((await failure(client().translate(req, from("auth"))))?.code).toBe(Code.PermissionDenied);
    // The greeter passing on a user who never called it (an assertion addressed to auth).
    const passedOn = {
      headers: {
        "x-portico-service": keys.identity("greeter").signer.serviceToken("lang"),
        "x-portico-identity": keys.assertion(ada, "auth"),
      },
    };
    expect((await failure(client().translate(req, passedOn)))?.code).toBe(Code.Unauthenticated);
  });

  it("needs a verified caller for its own language", async () => {
    for (const headers of [{}, { "x-user-id": "user-ada" }, { "x-portico-identity": "garbage.garbage.garbage" }]) {
      expect((await failure(client().getLanguage({}, { headers })))?.code).toBe(Code.Unauthenticated);
      expect((await failure(client().setLanguage({ language: "es" }, { headers })))?.code).toBe(Code.Unauthenticated);
    }
  });

  it("answers health checks", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    expect((await health.check({ service: LanguageService.typeName })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
});
