export { createGreeterService, type GreeterServiceOptions } from "./greeter-service.js";
export { type GreeterOptions, type GreeterServer, greeterMigrations, startGreeter } from "./start-greeter.js";
