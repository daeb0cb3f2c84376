// The supervisor's readiness check of the embedded PostgreSQL, without `pg`: a real server answers
// ready; a closed port, or a server still starting up (57P03), does not.
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../src/free-port.js";
import { pingPostgres } from "../src/postgres-ping.js";
import { type PrivatePostgres, startPrivatePostgres } from "../testing/private-postgres.js";

let pg: PrivatePostgres;

beforeAll(async () => {
  pg = await startPrivatePostgres();
}, 60_000);

afterAll(async () => {
  await pg?.destroy();
});

/** A raw server answering every startup message with an ErrorResponse of this SQLSTATE. */
async function answering(sqlstate: string): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => {
    socket.once("data", () => {
      const fields = Buffer.from(`SFATAL\0C${sqlstate}\0Mthe database system is starting up\0\0`);
      const header = Buffer.alloc(5);
      header.write("E", 0);
      header.writeInt32BE(4 + fields.length, 1);
      // In two writes: the ping waits for the whole message.
      socket.write(header);
      setTimeout(() => socket.end(fields), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, server };
}

describe("pingPostgres", () => {
  it("says a running PostgreSQL server accepts connections", async () => {
    const port = Number(new URL(pg.url).port);
    expect(await pingPostgres({ host: "127.0.0.1", port, timeoutMs: 2_000 })).toBe(true);
  });

  it("says no for a port nobody listens on", async () => {
    expect(await pingPostgres({ host: "127.0.0.1", port: await freePort(), timeoutMs: 2_000 })).toBe(false);
  });

  it("says no while the server is starting up (57P03), yes when it refuses for another reason", async () => {
    const starting = await answering("57P03");
    const full = await answering("53300"); // too many connections: up, and accepting once one is free
    try {
      expect(await pingPostgres({ host: "127.0.0.1", port: starting.port, timeoutMs: 2_000 })).toBe(false);
      expect(await pingPostgres({ host: "127.0.0.1", port: full.port, timeoutMs: 2_000 })).toBe(true);
    } finally {
      starting.server.close();
      full.server.close();
    }
  });

  it("refuses a port that is not one", () => {
    expect(() => pingPostgres({ host: "127.0.0.1", port: 0, timeoutMs: 2_000 })).toThrow(/port 0 is not valid/);
  });
});
