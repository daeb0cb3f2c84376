// What the web project's global setup (test/platform-setup.ts) provides to every test file.
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** The public URL of the gateway in front of a real auth and greeter. */
    gatewayUrl: string;
    /** A URL on 127.0.0.1 where nothing listens (a gateway that is down). */
    unreachableUrl: string;
  }
}
