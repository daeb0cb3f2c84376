import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@portico/gen/grpc/health/v1/health_pb.js";
import { LanguageService, Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { createIdentitySigner, createLogger, type Database, type Identity, openTestDatabase } from "@portico/kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LangServer, startLang } from "./start-lang.js";

const secret = randomBytes(32).toString("hex");
const signer = createIdentitySigner({ secret });
const user = (userId: string): Identity => ({ userId, tier: "free", roles: [], sessionId: `s-${userId}` });

let db: Database;
let server: LangServer;

beforeAll(async () => {
  db = await openTestDatabase("lang");
  server = await startLang({ db, logger: createLogger({ service: "lang", level: "silent" }), identitySecret: secret });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const client = () => createClient(LanguageService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
const as = (who: Identity) => ({ headers: { "x-portico-identity": signer.sign(who).assertion } });
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
      const res = await client().translate({ phrase: Phrase.GREETING, name: " Ada ", language });
      expect(res).toMatchObject({ text, language });
    }
  });

  it("translates into the preferred language of the user the call is made for", async () => {
    const dee = user("user-dee");
    await client().setLanguage({ language: "fr" }, as(dee));
    expect(await client().translate({ phrase: Phrase.GREETING, name: "Dee" }, as(dee))).toMatchObject({
      text: "Bonjour, Dee !",
      language: "fr",
    });
    expect((await client().translate({ phrase: Phrase.GREETING, name: "Eve" }, as(user("user-eve")))).text).toBe("Hello, Eve!");
    expect((await client().translate({ phrase: Phrase.GREETING, name: "Nobody" })).language).toBe("en");
  });

  it("refuses a bad phrase, name or language with invalid_argument", async () => {
    for (const req of [
      { phrase: Phrase.UNSPECIFIED, name: "Ada" },
      { phrase: Phrase.GREETING, name: "  " },
      { phrase: Phrase.GREETING, name: "x".repeat(101) },
      { phrase: Phrase.GREETING, name: "Ada", language: "klingon" },
    ]) {
      expect((await failure(client().translate(req)))?.code).toBe(Code.InvalidArgument);
    }
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
