import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { LanguageService, Phrase } from "@portico/gen/portico/lang/v1/lang_pb.js";
import { ConfigError, createServiceClient, type Logger, type TokenSigner } from "@portico/kit";

export interface GreetingTranslatorOptions {
  /** The greeter's own signer: every call to lang carries the greeter's token and the user it is for. */
  signer: TokenSigner;
  /** The lang service (`http://host:port`, h2c). Unset: every greeting is English, flagged as a fallback. */
  langUrl?: string | readonly string[];
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

function reasonFor(error: ConnectError, timeoutMs: number): string {
  if (error.code === Code.DeadlineExceeded) return `the language service did not answer within ${timeoutMs} ms`;
  if (error.code === Code.Unavailable) return "the language service is unavailable";
  return `the language service failed (${Code[error.code]})`;
}

/**
 * The greeter's use of portico.lang.v1.LanguageService: one Translate call per greeting, made for
 * the calling user with kit's service client (the user passed on, the trace and request id,
 * pooled HTTP/2, a circuit breaker), bounded by a short timeout so that a slow or missing lang
 * service costs a greeting milliseconds, never the greeting.
 */
export function createGreetingTranslator(options: GreetingTranslatorOptions): GreetingTranslator {
  const timeoutMs = options.timeoutMs ?? 300;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ConfigError(
      `greeting translator: timeoutMs ${timeoutMs} is not valid; expected a whole number from 1 to ${MAX_TIMEOUT_MS}`,
    );
  }
  const { logger, langUrl } = options;
  const english = (name: string, reason: string): TranslatedGreeting => ({
    greeting: `Hello, ${name}!`,
    language: "en",
    languageFallback: true,
    languageFallbackReason: reason,
  });
  if (langUrl === undefined) {
    return { greet: async (name) => english(name, "no language service is configured"), close() {} };
  }

  const lang = createServiceClient(LanguageService, { signer: options.signer, url: langUrl, timeoutMs });
  // Open the connection and sign the first token now, in the background: otherwise the first
  // greeting after start-up pays for them and may miss its short timeout. Failing here is harmless.
  lang.self.listLanguages({}).catch(() => {});
  // Logged when the lang service stops answering and when it is back, not on every greeting.
  let failing = false;
  return {
    async greet(name, ctx) {
      const remaining = ctx.timeoutMs();
      try {
        const res = await lang
          .for(ctx)
          .translate(
            { phrase: Phrase.GREETING, name },
            { timeoutMs: remaining === undefined ? timeoutMs : Math.max(1, Math.min(timeoutMs, remaining)) },
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
      lang.close();
    },
  };
}
