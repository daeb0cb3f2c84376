import { Code, ConnectError } from "@connectrpc/connect";

/** A language the platform speaks, and how it greets. */
export interface SupportedLanguage {
  /** ISO 639-1 code. */
  readonly code: string;
  /** Its name in English. */
  readonly name: string;
  /** Its name in itself. */
  readonly nativeName: string;
  /** The greeting for `name`, e.g. "Hola, Ada!". */
  greet(name: string): string;
}

/** Every supported language; English first: the language of a user who chose none. */
export const supportedLanguages: readonly SupportedLanguage[] = [
  { code: "en", name: "English", nativeName: "English", greet: (name) => `Hello, ${name}!` },
  { code: "es", name: "Spanish", nativeName: "Español", greet: (name) => `Hola, ${name}!` },
  { code: "fr", name: "French", nativeName: "Français", greet: (name) => `Bonjour, ${name} !` },
  { code: "de", name: "German", nativeName: "Deutsch", greet: (name) => `Hallo, ${name}!` },
  { code: "ja", name: "Japanese", nativeName: "日本語", greet: (name) => `こんにちは、${name}さん！` },
];

export const defaultLanguage = supportedLanguages[0] as SupportedLanguage;

const byCode = new Map(supportedLanguages.map((language) => [language.code, language]));

/** The supported language with this code; `invalid_argument` naming the allowed codes otherwise. */
export function requireSupportedLanguage(field: string, code: string): SupportedLanguage {
  const language = byCode.get(code);
  if (!language) {
    throw new ConnectError(
      `${field} "${code.slice(0, 20)}" is not supported: expected one of ${supportedLanguages.map((l) => l.code).join(", ")}`,
      Code.InvalidArgument,
    );
  }
  return language;
}

/** The language stored for a user earlier, or the default when that code is no longer supported. */
export function storedLanguage(code: string | undefined): SupportedLanguage {
  return (code && byCode.get(code)) || defaultLanguage;
}
