export { createLangService, type LangServiceOptions } from "./lang-service.js";
export { type LangOptions, type LangServer, langMigrations, startLang } from "./start-lang.js";
export {
  defaultLanguage,
  requireSupportedLanguage,
  type SupportedLanguage,
  storedLanguage,
  supportedLanguages,
} from "./supported-languages.js";
