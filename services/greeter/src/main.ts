import { createEnvReader, runBackend, serviceUrls } from "@portico/kit";
import { startGreeter } from "./start-greeter.js";

runBackend("greeter", (context) =>
  startGreeter({
    ...context,
    // The lang service: LANG_URL (one address or its replicas', comma-separated), else 127.0.0.1 on
    // LANG_PORT (its port in portico.services.json).
    lang: {
      url: serviceUrls("lang"),
      timeoutMs: createEnvReader().int("GREETER_LANG_TIMEOUT_MS", 300, { min: 1, max: 10_000 }),
    },
  }),
);
