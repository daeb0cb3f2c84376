export { createGreeterService, type GreeterServiceOptions } from "./greeter-service.js";
export {
  createGreetingTranslator,
  type GreetingTranslator,
  type GreetingTranslatorOptions,
  type TranslatedGreeting,
} from "./greeting-translator.js";
export { type GreeterOptions, type GreeterServer, greeterMigrations, startGreeter } from "./start-greeter.js";
