import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One embedded PostgreSQL server for the run (unless DATABASE_URL is set); each test file makes its own databases.
    globalSetup: ["services/kit/testing/postgres-global-setup.ts"],
    projects: [
      {
        extends: true,
        test: { name: "services", include: ["services/*/test/**/*.test.ts", "scripts/**/*.test.ts"] },
      },
      // React component tests in jsdom against a real platform (web/vitest.config.ts).
      "web/vitest.config.ts",
      {
        extends: true,
        // The browser end-to-end test: `npm start`'s platform driven by headless Chromium.
        test: { name: "e2e", include: ["web/e2e/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 240_000 },
      },
    ],
  },
});
