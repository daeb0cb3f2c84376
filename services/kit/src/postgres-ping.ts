import { connect } from "node:net";
import { ConfigError } from "./config-error.js";

export interface PostgresPingOptions {
  host: string;
  port: number;
  /** Gives up (not accepting) after this long, in ms. */
  timeoutMs: number;
}

/** SQLSTATE cannot_connect_now: the server is starting up, shutting down or in recovery. */
const CANNOT_CONNECT_NOW = "57P03";

/**
 * Whether a PostgreSQL server accepts connections, as `pg_isready` (libpq's PQping) tells it: a
 * startup message, then the server's first answer. An authentication request, or any error but
 * "cannot connect now", is a server that accepts connections. No password is sent and no
 * session is opened, so this needs no client library: the `npm start` supervisor polls its
 * embedded server this way without loading `pg` (README, "Footprint and start-up time").
 */
export function pingPostgres(options: PostgresPingOptions): Promise<boolean> {
  if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65535) {
    throw new ConfigError(`pingPostgres: port ${options.port} is not valid: expected 1 to 65535`);
  }
  return new Promise((resolve) => {
    const socket = connect({ host: options.host, port: options.port });
    let received = Buffer.alloc(0);
    const done = (accepting: boolean) => {
      socket.destroy();
      resolve(accepting);
    };
    socket.setTimeout(options.timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
    socket.once("connect", () => {
      const parameters = Buffer.from("user\0postgres\0database\0postgres\0\0");
      const startup = Buffer.alloc(8);
      startup.writeInt32BE(8 + parameters.length, 0);
      startup.writeInt32BE(196608, 4); // protocol 3.0
      socket.write(Buffer.concat([startup, parameters]));
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const type = String.fromCharCode(received[0] ?? 0);
      if (type !== "E") return done(type === "R");
      if (received.length < 5 || received.length < 1 + received.readInt32BE(1)) return; // the whole ErrorResponse
      // Fields: a type byte and a NUL-terminated value each; 'C' is the SQLSTATE.
      const fields = received
        .subarray(5, 1 + received.readInt32BE(1))
        .toString("utf8")
        .split("\0");
      const code = fields.find((f) => f.startsWith("C"))?.slice(1);
      done(code !== CANNOT_CONNECT_NOW);
    });
  });
}
