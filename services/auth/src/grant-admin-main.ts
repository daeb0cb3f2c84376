import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, describeStartupError, migrate, openDatabase, openEmbeddedPostgres, readServiceConfig } from "@portico/kit";
import { grantAdmin } from "./grant-admin.js";

// `npm run grant-admin -w services/auth -- <email>`: makes the account an administrator (auth.admin).
async function main(args: string[]): Promise<string> {
  // npm runs workspace scripts in the workspace folder; .data is relative to where the command was typed.
  if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
  const [email, ...rest] = args;
  if (!email || rest.length > 0) throw new ConfigError("usage: npm run grant-admin -w services/auth -- <email>");
  const config = readServiceConfig("auth");
  // Without DATABASE_URL: the auth database (portico.services.json) on npm start's embedded server,
  // the running one or one started for this command.
  const embedded = config.databaseUrl
    ? undefined
    : await openEmbeddedPostgres({ dataDir: join(config.dataRoot, "postgres"), port: 0 });
  try {
    const url = embedded ? Object.assign(new URL(embedded.url), { pathname: "/auth" }).toString() : config.databaseUrl;
    const db = await openDatabase({ url: url ?? "" });
    try {
      await migrate(db, fileURLToPath(new URL("../migrations", import.meta.url)));
      const user = await grantAdmin(db, email);
      return `${user.email} (${user.userId}) now has roles: ${user.roles.join(", ")}`;
    } finally {
      await db.close();
    }
  } finally {
    await embedded?.stop();
  }
}

main(process.argv.slice(2)).then(
  (message) => process.stdout.write(`${message}\n`),
  (error: unknown) => {
    process.stderr.write(`grant-admin: ${describeStartupError(error)}\n`);
    process.exitCode = 1;
  },
);
