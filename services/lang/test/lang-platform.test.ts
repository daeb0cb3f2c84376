import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { connectErrorOf } from "@portico/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LangPlatform, startLangPlatform } from "./test-lang-platform.js";

// The greeter waits this long for lang (300 ms by default; more here, so that a loaded test machine
// does not turn a slow answer into a fallback); Greet's gateway timeout is 10 s.
const langTimeoutMs = 1_000;
let platform: LangPlatform;

beforeAll(async () => {
  platform = await startLangPlatform("lang_platform", { langTimeoutMs });
});
afterAll(async () => {
  await platform?.close();
});

/** An HTTP/2 server on `port` that accepts every call and never answers it: a hung lang service. */
async function startHungServer(port: number): Promise<{ close(): Promise<void> }> {
  const server = http2.createServer();
  // Each call is left open; destroying the session on close ends it with an error nobody reads.
  server.on("stream", (stream) => stream.on("error", () => {}));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("greetings in the caller's language, through the gateway", () => {
  it("greets in the language the caller chose with SetLanguage, and only them", async () => {
    const ada = await platform.signUp("Ada");
    const bea = await platform.signUp("Bea");
    expect(await platform.greeter.greet({ name: "Ada" }, ada)).toMatchObject({
      greeting: "Hello, Ada!",
      language: "en",
      languageFallback: false,
    });
    expect((await platform.lang.setLanguage({ language: "es" }, ada)).language).toBe("es");
    expect(await platform.lang.getLanguage({}, ada)).toMatchObject({ language: "es", chosen: true });
    expect(await platform.greeter.greet({ name: "Ada" }, ada)).toMatchObject({
      greeting: "Hola, Ada!",
      language: "es",
      languageFallback: false,
      languageFallbackReason: "",
    });
    expect((await platform.greeter.greet({ name: "Bea" }, bea)).greeting).toBe("Hello, Bea!");
    const history = await platform.greeter.listGreetings({}, ada);
    expect(history.greetings.map((g) => g.message)).toEqual(["Hola, Ada!", "Hello, Ada!"]);
  });

  it("streams greetings in the chosen language", async () => {
    const kenji = await platform.signUp("Kenji");
    await platform.lang.setLanguage({ language: "ja" }, kenji);
    const got: string[] = [];
    for await (const msg of platform.greeter.greetStream({ name: "Ada", count: 3 }, kenji)) {
      expect(msg).toMatchObject({ language: "ja", languageFallback: false });
      got.push(msg.greeting);
    }
    expect(got).toEqual(["こんにちは、Adaさん！ (1/3)", "こんにちは、Adaさん！ (2/3)", "こんにちは、Adaさん！ (3/3)"]);
  });

  it("lists the languages to anyone, and keeps each caller's own setting behind their token", async () => {
    const { languages } = await platform.lang.listLanguages({});
    expect(languages.map((l) => l.code)).toEqual(["en", "es", "fr", "de", "ja"]);
    expect((await connectErrorOf(platform.lang.getLanguage({})))?.code).toBe(Code.Unauthenticated);
    expect((await connectErrorOf(platform.lang.setLanguage({ language: "es" })))?.code).toBe(Code.Unauthenticated);
  });

  it("refuses an unsupported language with invalid_argument naming the allowed ones", async () => {
    const cy = await platform.signUp("Cy");
    await platform.lang.setLanguage({ language: "de" }, cy);
    const err = await connectErrorOf(platform.lang.setLanguage({ language: "tlh" }, cy));
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toBe('language "tlh" is not supported: expected one of en, es, fr, de, ja');
    expect((await platform.greeter.greet({ name: "Cy" }, cy)).greeting).toBe("Hallo, Cy!");
  });

  it("does not route the internal Translate from outside, with or without a token", async () => {
    const eve = await platform.signUp("Eve");
    for (const options of [{}, eve]) {
      const err = await connectErrorOf(
        platform.lang.translate({ phrase: Phrase.GREETING, name: "Eve", language: "fr" }, options),
      );
      expect(err?.code).toBe(Code.Unimplemented);
    }
  });

  it("greets in English, flagged, and promptly while lang is down; in the chosen language again once it is back", async () => {
    const ada = await platform.signUp("Ada");
    await platform.lang.setLanguage({ language: "fr" }, ada);
    expect((await platform.greeter.greet({ name: "Ada" }, ada)).greeting).toBe("Bonjour, Ada !");
    await platform.stopLang();
    try {
      const started = Date.now();
      const res = await platform.greeter.greet({ name: "Ada" }, ada);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(res).toMatchObject({
        greeting: "Hello, Ada!",
        language: "en",
        languageFallback: true,
        languageFallbackReason: "the language service is unavailable",
      });
      const stream: string[] = [];
      for await (const msg of platform.greeter.greetStream({ name: "Ada", count: 2 }, ada)) {
        expect(msg.languageFallback).toBe(true);
        stream.push(msg.greeting);
      }
      expect(stream).toEqual(["Hello, Ada! (1/2)", "Hello, Ada! (2/2)"]);
    } finally {
      await platform.startLangAgain();
    }
    expect(await platform.greeter.greet({ name: "Ada" }, ada)).toMatchObject({
      greeting: "Bonjour, Ada !",
      languageFallback: false,
    });
  });

  it("greets in English within the greeter's short timeout when lang accepts calls and never answers", async () => {
    const ada = await platform.signUp("Ada");
    await platform.lang.setLanguage({ language: "es" }, ada);
    await platform.stopLang();
    const hung = await startHungServer(platform.langPort);
    try {
      const started = Date.now();
      const res = await platform.greeter.greet({ name: "Ada" }, ada);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(langTimeoutMs);
      expect(elapsed).toBeLessThan(5_000);
      expect(res).toMatchObject({
        greeting: "Hello, Ada!",
        languageFallback: true,
        languageFallbackReason: `the language service did not answer within ${langTimeoutMs} ms`,
      });
    } finally {
      await hung.close();
      await platform.startLangAgain();
    }
    expect((await platform.greeter.greet({ name: "Ada" }, ada)).greeting).toBe("Hola, Ada!");
  });
});
