import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { ConfigError, describeStartupError, migrate, openDatabase, readServiceConfig } from "@portico/kit";
import { grantAdmin } from "./grant-admin.js";

// `npm run grant-admin -w services/auth -- <email>`: makes the account an administrator (auth.admin).
async function main(args: string[]): Promise<string> {
  // npm runs workspace scripts in the workspace folder; .data is relative to where the command was typed.
  if (process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);
  const [email, ...rest] = args;
  if (!email || rest.length > 0) throw new ConfigError("usage: npm run grant-admin -w services/auth -- <email>");
  const config = readServiceConfig("auth");
  if (!config.databaseUrl && (await listening(config.host, config.port))) {
    throw new ConfigError(
      `the auth service is running on ${config.host}:${config.port}; stop it first: its embedded database (${config.dataDir}) takes one process at a time`,
    );
  }
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(db, fileURLToPath(new URL("../migrations", import.meta.url)));
    const user = await grantAdmin(db, email);
    return `${user.email} (${user.userId}) now has roles: ${user.roles.join(", ")}`;
  } finally {
    await db.close();
  }
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

main(process.argv.slice(2)).then(
  (message) => process.stdout.write(`${message}\n`),
  (error: unknown) => {
    process.stderr.write(`grant-admin: ${describeStartupError(error)}\n`);
    process.exitCode = 1;
  },
);
