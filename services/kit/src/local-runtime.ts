// The `npm start` supervisor's entry into kit (`@portico/kit/local-runtime`): only the leaf modules it
// needs (settings, keys, the platform definition, the embedded PostgreSQL), without the barrel's
// Connect, protobuf, jose and pino, which a process that serves nothing should not load (README,
// "Footprint and start-up time").

export { prepareEmbeddedPostgres } from "./embedded-postgres.js";
export { createEnvReader } from "./env-reader.js";
export { ensureLocalKeys } from "./local-keys.js";
export { describeStartupError } from "./run-service.js";
export { platform } from "./service-directory.js";
