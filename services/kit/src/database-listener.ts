import type pg from "pg";

export interface ListenOptions {
  /** Each notification on the channel, with its payload ("" when none). */
  onNotify: (payload: string) => void;
  /**
   * Listening, the first time and after each reconnection. Notifications sent while the connection
   * was down are lost: a caller re-reads what it watches here.
   */
  onListening?: () => void;
  /** The connection failed; it is opened again after `retryMs`. */
  onLost?: (error: Error) => void;
  /** Between a lost connection and the next attempt (ms, default 1,000). */
  retryMs?: number;
}

export interface DatabaseListener {
  /** Whether the connection is up and LISTENing now. */
  readonly listening: boolean;
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
}

/**
 * LISTEN on `channel` over a connection of its own (a pooled one would be handed to others; LISTEN
 * belongs to one session), opened again after every failure. Resolves after the first attempt,
 * listening or not: a caller that polls as a fallback keeps working while the server is away.
 * The connection has TCP keep-alive on, so one a network silently dropped is found and replaced.
 */
export async function startDatabaseListener(
  newClient: () => pg.Client,
  channel: string,
  options: ListenOptions,
): Promise<DatabaseListener> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new Error(`listen: channel "${channel}" is not a lower-case SQL identifier of at most 63 characters`);
  }
  const retryMs = options.retryMs ?? 1000;
  let client: pg.Client | undefined;
  let listening = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const lost = (c: pg.Client, error: Error) => {
    if (closed || client !== c) return;
    client = undefined;
    listening = false;
    c.end().catch(() => {});
    options.onLost?.(error);
    retry = setTimeout(() => void open(), retryMs);
    retry.unref();
  };

  const open = async () => {
    const c = newClient();
    client = c;
    c.on("error", (error) => lost(c, error));
    c.on("end", () => lost(c, new Error("the listening connection ended")));
    c.on("notification", (message) => {
      if (message.channel === channel) options.onNotify(message.payload ?? "");
    });
    try {
      await c.connect();
      await c.query(`listen ${channel}`);
    } catch (error) {
      lost(c, error as Error);
      return;
    }
    if (closed || client !== c) return;
    listening = true;
    options.onListening?.();
  };

  await open();
  return {
    get listening() {
      return listening;
    },
    async close() {
      closed = true;
      listening = false;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
