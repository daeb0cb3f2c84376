import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type GreeterService, GreetingSchema } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { type Queryable, requireIdentity } from "@portico/kit";
import type { GreetingTranslator } from "./greeting-translator.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

export interface GreeterServiceOptions {
  db: Queryable;
  /** Puts greetings in the caller's language (the lang service), English when it cannot. */
  translator: GreetingTranslator;
}

const MAX_NAME = 100;
const MAX_STREAM = 10_000;
const MAX_INTERVAL_MS = 10_000;

function validName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || [...trimmed].length > MAX_NAME) {
    throw new ConnectError(`name must be 1 to ${MAX_NAME} characters, got ${[...trimmed].length}`, Code.InvalidArgument);
  }
  return trimmed;
}

function inRange(field: string, value: number, min: number, max: number): number {
  if (value < min || value > max) {
    throw new ConnectError(`${field} must be from ${min} to ${max}, got ${value}`, Code.InvalidArgument);
  }
  return value;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/**
 * The GreeterService handlers: greetings in the caller's language, kept per caller, read from the
 * verified identity.
 */
export function createGreeterService({ db, translator }: GreeterServiceOptions): ServiceImpl<typeof GreeterService> {
  return {
    async greet(req, ctx) {
      const { userId } = requireIdentity(ctx);
      const translated = await translator.greet(validName(req.name), ctx);
      await db.query("insert into greetings (id, user_id, message) values ($1, $2, $3)", [
        randomUUID(),
        userId,
        translated.greeting,
      ]);
      return translated;
    },

    async *greetStream(req, ctx) {
      requireIdentity(ctx);
      const name = validName(req.name);
      const count = inRange("count", req.count, 1, MAX_STREAM);
      const interval = inRange("interval_ms", req.intervalMs, 0, MAX_INTERVAL_MS);
      // One language for the whole stream, asked once.
      const { greeting, ...language } = await translator.greet(name, ctx);
      for (let index = 0; index < count; index++) {
        if (index > 0 && interval > 0) await sleep(interval, ctx.signal);
        yield { greeting: `${greeting} (${index + 1}/${count})`, index, ...language };
      }
    },

    async listGreetings(req, ctx) {
      const { userId } = requireIdentity(ctx);
      const pageSize = req.pageSize === 0 ? 20 : inRange("page_size", req.pageSize, 1, 100);
      const cursor = req.pageToken ? decodePageToken(req.pageToken) : undefined;
      const params: unknown[] = [userId, pageSize + 1];
      let where = "user_id = $1";
      if (cursor) {
        where += " and (created_at, id) < ($3, $4)";
        params.push(cursor.createdAt, cursor.id);
      }
      const { rows } = await db.query<{ id: string; message: string; created_at: Date }>(
        `select id, message, created_at from greetings where ${where} order by created_at desc, id desc limit $2`,
        params,
      );
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        greetings: page.map((row) =>
          create(GreetingSchema, { id: row.id, message: row.message, createdAt: timestampFromDate(new Date(row.created_at)) }),
        ),
        nextPageToken:
          rows.length > pageSize && last ? encodePageToken({ createdAt: new Date(last.created_at), id: last.id }) : "",
      };
    },

    async purgeGreetings(_req, ctx) {
      const { roles } = requireIdentity(ctx);
      if (!roles.includes("greeter.admin")) {
        throw new ConnectError("PurgeGreetings needs the permission greeter.admin", Code.PermissionDenied);
      }
      const { rowCount } = await db.query("delete from greetings");
      return { deleted: BigInt(rowCount) };
    },

    echo(req, ctx) {
      requireIdentity(ctx);
      return { payload: req.payload };
    },

    async *echoStream(req, ctx) {
      requireIdentity(ctx);
      const count = inRange("count", req.count, 1, MAX_STREAM);
      for (let index = 0; index < count; index++) yield { payload: req.payload, index };
    },
  };
}
