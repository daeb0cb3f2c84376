/** Where the test run's embedded PostgreSQL server is published (by testing/postgres-global-setup.ts). */
export const TEST_SERVER_ENV = "PORTICO_TEST_DATABASE_URL";

/**
 * The PostgreSQL server the tests run on, as a URL of its `postgres` database: `DATABASE_URL` when it
 * is set, otherwise the embedded server the test run started once (vitest's global setup).
 */
export function testServerUrl(): string {
  const url = process.env.DATABASE_URL || process.env[TEST_SERVER_ENV];
  if (!url) {
    throw new Error(
      `no PostgreSQL server for the tests: set DATABASE_URL, or run them with vitest, whose global setup (services/kit/testing/postgres-global-setup.ts) starts an embedded one and sets ${TEST_SERVER_ENV}`,
    );
  }
  return url;
}
