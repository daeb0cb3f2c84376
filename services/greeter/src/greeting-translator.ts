import { Code, ConnectError, createClient, type HandlerContext } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { LanguageService, Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { identityHeaders, type Logger } from "@portico/kit";

export interface GreetingTranslatorOptions {
  /** The lang service (`http://host:port`, h2c). Unset: every greeting is English, flagged as a fallback. */
  langUrl?: string;
  /** How long a greeting waits for the lang service before it falls back to English (default 300 ms). */
  timeoutMs?: number;
  logger: Logger;
}

/** A greeting and the language it is in. */
export interface TranslatedGreeting {
  greeting: string;
  language: string;
  /** True when the greeting is English because the lang service did not answer. */
  languageFallback: boolean;
  /** Why, when languageFallback is set: safe to show to the caller (no addresses, no internals). */
  languageFallbackReason: string;
}

export interface GreetingTranslator {
  /**
   * The greeting for `name` in the language of the user `ctx` is serving, from the lang service;
   * English when that service is not configured, down, too slow or failing. Never throws for that.
   */
  greet(name: string, ctx: HandlerContext): Promise<TranslatedGreeting>;
  close(): void;
}

const MAX_TIMEOUT_MS = 10_000;

/** Headers of the incoming call that the call to lang carries on: the user, the request id, the trace. */
const forwarded = [identityHeaders.assertion, "x-request-id", "traceparent"] as const;

function reasonFor(error: ConnectError, timeoutMs: number): string {
  if (error.code === Code.DeadlineExceeded) return `the language service did not answer within ${timeoutMs} ms`;
  if (error.code === Code.Unavailable) return "the language service is unavailable";
  return `the language service failed (${Code[error.code]})`;
}

/**
 * The greeter's client of portico.lang.v1.LanguageService: one Translate call per greeting, made
 * for the calling user (their verified identity goes along), over one pooled HTTP/2 connection,
 * bounded by a short timeout so a slow or missing lang service costs a greeting milliseconds.
 */
export function createGreetingTranslator(options: GreetingTranslatorOptions): GreetingTranslator {
  const timeoutMs = options.timeoutMs ?? 300;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new Error(
      `greeting translator: timeoutMs ${timeoutMs} is not valid; expected a whole number from 1 to ${MAX_TIMEOUT_MS}`,
    );
  }
  const { logger, langUrl } = options;
  if (langUrl !== undefined && !/^https?:\/\/[^/]+\/?$/.test(langUrl)) {
    throw new Error(`greeting translator: langUrl "${langUrl}" is not valid; expected http://host:port or https://host:port`);
  }
  const english = (name: string, reason: string): TranslatedGreeting => ({
    greeting: `Hello, ${name}!`,
    language: "en",
    languageFallback: true,
    languageFallbackReason: reason,
  });
  if (langUrl === undefined) {
    return { greet: async (name) => english(name, "no language service is configured"), close() {} };
  }

  const sessions = new Http2SessionManager(langUrl);
  const lang = createClient(
    LanguageService,
    createConnectTransport({ baseUrl: langUrl, httpVersion: "2", useBinaryFormat: true, sessionManager: sessions }),
  );
  // Logged when the lang service stops answering and when it is back, not on every greeting.
  let failing = false;
  return {
    async greet(name, ctx) {
      const headers = new Headers();
      for (const header of forwarded) {
        const value = ctx.requestHeader.get(header);
        if (value !== null) headers.set(header, value);
      }
      const remaining = ctx.timeoutMs();
      try {
        const res = await lang.translate(
          { phrase: Phrase.GREETING, name },
          {
            headers,
            signal: ctx.signal,
            timeoutMs: remaining === undefined ? timeoutMs : Math.max(1, Math.min(timeoutMs, remaining)),
          },
        );
        if (failing) {
          failing = false;
          logger.info("the language service answers again");
        }
        return { greeting: res.text, language: res.language, languageFallback: false, languageFallbackReason: "" };
      } catch (e) {
        const error = ConnectError.from(e);
        // The caller went away: there is no greeting to fall back to.
        if (ctx.signal.aborted) throw error;
        if (!failing) {
          failing = true;
          logger.warn({ err: error }, "the language service did not answer; greeting in English");
        }
        return english(name, reasonFor(error, timeoutMs));
      }
    },
    close() {
      sessions.abort();
    },
  };
}
