import { defineProject, mergeConfig } from "vitest/config";
import viteConfig from "./vite.config.js";

// Component tests: jsdom, against a real auth + greeter + gateway started once by the global setup.
export default mergeConfig(
  viteConfig,
  defineProject({
    test: {
      name: "web",
      environment: "jsdom",
      include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
      // The tests' PostgreSQL server first (unless DATABASE_URL is set), then the platform on it.
      globalSetup: ["../services/kit/testing/postgres-global-setup.ts", "./test/platform-setup.ts"],
      setupFiles: ["./src/test/dom-setup.ts"],
      testTimeout: 30_000,
      // Real servers on a shared 2-core machine: expect.poll waits up to 8 s by default.
      expect: { poll: { timeout: 8_000 } },
      hookTimeout: 120_000,
    },
  }),
);
