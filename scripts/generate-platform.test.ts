// The files npm run generate derives from portico.services.json: every service in them, the
// observability stack included only when its file exists, and an image that holds no test.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePlatformDefinition } from "@portico/kit";
import { afterAll, describe, expect, it } from "vitest";
import { generatePlatform, renderCompose, renderDockerfile, renderPortTable } from "./generate-platform.js";

const root = join(import.meta.dirname, "..");
const definition = parsePlatformDefinition({
  gateway: { port: 7000, adminPort: 7100 },
  services: {
    auth: { port: 7001, protoServices: ["portico.auth.v1.AuthService"], database: "auth" },
    shop: { port: 7002, protoServices: ["acme.shop.v1.ShopService", "acme.shop.v1.CartService"], calls: ["auth"] },
  },
});
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("the files derived from the platform definition", () => {
  it("compose runs every service with its callees' and the gateway's addresses, and its key", () => {
    const compose = renderCompose(definition, { includeObservability: false });
    expect(compose).toContain('command: ["node", "--enable-source-maps", "services/shop/dist/main.js"]');
    expect(compose).toMatch(/ {2}shop:\n(?:.*\n)*? {6}SHOP_HOST: 0\.0\.0\.0\n {6}AUTH_URL: http:\/\/auth:7001\n/);
    expect(compose).toContain("      SHOP_URL: http://shop:7002\n");
    expect(compose).toContain('ports: ["7000-7001:7000", "127.0.0.1:7100-7101:7100"]');
    expect(compose).toContain("  shop_key: { file: ./deploy/keys/shop.key.json }");
    expect(compose).not.toContain("include:");
    expect(renderCompose(definition, { includeObservability: true })).toMatch(
      /\ninclude:\n {2}- deploy\/compose\/observability\.yml\n/,
    );
  });

  it("the image copies built output, migrations and config only: no test, no TypeScript source", () => {
    const dockerfile = renderDockerfile(definition, ["gen", "services/kit", "services/auth", "services/shop"], root);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("FROM "));
    expect(runtime).toContain("COPY --from=build /app/services/shop/dist services/shop/dist");
    expect(runtime).toContain("COPY --from=build /app/services/auth/migrations services/auth/migrations");
    expect(runtime).toContain("COPY --from=build /app/portico.services.json portico.services.json");
    expect(runtime).not.toMatch(/\/(test|src|testing)\b/);
    expect(runtime).toContain("EXPOSE 7000 7100 7001 7002");
    expect(dockerfile).toContain("COPY services/shop/package.json services/shop/");
  });

  it("the gateway's container runs with the definition's node flags, in compose and in the image", () => {
    const flagged = {
      ...definition,
      gateway: { ...definition.gateway, nodeFlags: ["--single-threaded-gc", "--max-semi-space-size=4"] },
    };
    const command =
      '["node", "--single-threaded-gc", "--max-semi-space-size=4", "--enable-source-maps", "services/gateway/dist/main.js"]';
    expect(renderCompose(flagged, { includeObservability: false })).toContain(
      `  gateway:\n    <<: *service\n    command: ${command}\n`,
    );
    expect(renderDockerfile(flagged, ["gen"], root)).toContain(`\nCMD ${command}\n`);
    expect(renderDockerfile(definition, ["gen"], root)).toContain(
      '\nCMD ["node", "--enable-source-maps", "services/gateway/dist/main.js"]\n',
    );
  });

  it("the README's port table lists each service's port and proto services", () => {
    const table = renderPortTable(definition);
    expect(table).toContain("| shop service (h2c, 127.0.0.1): `acme.shop.v1.ShopService`, `acme.shop.v1.CartService` | 7002 |");
    expect(table).toContain("| 7100 | `ADMIN_PORT`, `ADMIN_HOST` |");
  });

  it("writes only what changed, and includes the observability stack once its compose file exists", () => {
    const dir = mkdtempSync(join(tmpdir(), "portico-generate-"));
    dirs.push(dir);
    for (const file of ["portico.services.json", "package.json", "README.md", "docker-compose.yml", "Dockerfile"]) {
      cpSync(join(root, file), join(dir, file));
    }
    for (const service of ["auth", "greeter", "lang"])
      mkdirSync(join(dir, "services", service, "migrations"), { recursive: true });
    generatePlatform(dir); // the copy has no observability stack, whatever the repository has
    expect(generatePlatform(dir)).toEqual([]);
    expect(readFileSync(join(dir, "docker-compose.yml"), "utf8")).not.toContain("include:");
    mkdirSync(join(dir, "deploy/compose"), { recursive: true });
    writeFileSync(join(dir, "deploy/compose/observability.yml"), "services: {}\n");
    expect(generatePlatform(dir)).toEqual(["docker-compose.yml"]);
    expect(readFileSync(join(dir, "docker-compose.yml"), "utf8")).toContain("include:\n  - deploy/compose/observability.yml");
    writeFileSync(join(dir, "README.md"), "# no markers\n");
    expect(() => generatePlatform(dir)).toThrow(/README\.md: the markers .* are missing/);
  });
});
