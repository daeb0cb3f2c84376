import * as http2 from "node:http2";
import * as net from "node:net";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { GatewayConfig } from "../src/gateway-config.js";
import { CLIENT_PREFACE, FrameType, H2Error, SettingId, settingsFrame } from "../src/h2/index.js";
import type { Gateway, GatewayOptions } from "../src/start-gateway.js";
import { freePort, startLoneGateway } from "./test-platform.js";

// The public port's HTTP/2 limits come from the gateway's options (engine defaults otherwise).

const gateways: Gateway[] = [];
const sockets: net.Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
});

async function gatewayWith(options: Partial<GatewayOptions>): Promise<Gateway> {
  // Requests to `/` are answered by the gateway itself: nothing needs to stand behind it.
  const gateway = await startLoneGateway({ shutdownGraceMs: 200, ...options });
  gateways.push(gateway);
  return gateway;
}

/** The settings of the SETTINGS frame at the start of `frames`. */
function settingsOf(frames: Buffer): Map<number, number> {
  expect(frames[3]).toBe(FrameType.settings);
  const settings = new Map<number, number>();
  for (let i = 9; i < 9 + frames.readUIntBE(0, 3); i += 6) settings.set(frames.readUInt16BE(i), frames.readUInt32BE(i + 2));
  return settings;
}

/** The SETTINGS the gateway sends a new h2c connection. */
function advertised(port: number): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () =>
      socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])])),
    );
    let buf = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 9 || buf.length < 9 + buf.readUIntBE(0, 3)) return;
      socket.destroy();
      resolve(settingsOf(buf));
    });
    socket.on("error", reject);
  });
}

describe("the public port's HTTP/2 limits", () => {
  it("allows 128 concurrent streams per connection by default", async () => {
    const gateway = await gatewayWith({});
    expect((await advertised(gateway.port)).get(SettingId.maxConcurrentStreams)).toBe(128);
  });

  it("takes the limits from the gateway's http2 options", async () => {
    const gateway = await gatewayWith({ http2: { maxConcurrentStreams: 7, stallTimeoutMs: 5000 } });
    expect((await advertised(gateway.port)).get(SettingId.maxConcurrentStreams)).toBe(7);
  });

  it("refuses to start with a bad limit, naming it", async () => {
    await expect(gatewayWith({ http2: { resetBudget: { burst: 0, perSecond: 10 } } })).rejects.toThrow(
      /resetBudget\.burst must be a positive number, got 0/,
    );
  });
});

interface RawConnection {
  socket: net.Socket;
  /** Everything the gateway sent so far. */
  received(): Buffer;
  closed: Promise<void>;
}

/** A raw h2c connection from `localAddress` (any 127.x.y.z reaches the loopback gateway). */
function connectFrom(localAddress: string, port: number, first: Buffer[]): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.once("connect", () => {
      for (const data of first) socket.write(data);
      resolve({ socket, received: () => Buffer.concat(chunks), closed });
    });
    socket.once("error", reject);
  });
}

/** The GOAWAY error code among `frames`, if any. */
function goawayCode(frames: Buffer): number | undefined {
  for (let off = 0; off + 9 <= frames.length; ) {
    const length = frames.readUIntBE(off, 3);
    if (frames[off + 3] === FrameType.goaway && off + 17 <= frames.length) return frames.readUInt32BE(off + 13);
    off += 9 + length;
  }
  return undefined;
}

/** A SETTINGS flood: three frames over a budget of two. */
const flood = [CLIENT_PREFACE, settingsFrame([]), settingsFrame([]), settingsFrame([]), settingsFrame([])];

/** A normal client's call from 127.0.0.1: the HTTP status the gateway answers (any answer is being served). */
function normalCall(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "GET", ":path": "/" }, { endStream: true });
    stream.on("response", (headers) => {
      resolve(Number(headers[":status"]));
      session.destroy();
    });
    stream.on("error", reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Per-address admission: an address whose connections keep being closed for abuse gets its new
// connections held unread, while every other address is served as before.
describe("per-address admission on the public port", { timeout: 20_000 }, () => {
  it("holds an abusive address's new connections unread once its abuse budget is spent, and serves the others", async () => {
    const gateway = await gatewayWith({
      headersTimeoutMs: 1500,
      http2: { settingsBudget: { burst: 2, perSecond: 1 }, abuseBudget: { burst: 3, perSecond: 1 } },
    });
    // Three floods from 127.0.0.2, each closed with GOAWAY ENHANCE_YOUR_CALM: the budget.
    for (let i = 0; i < 3; i++) {
      const attacker = await connectFrom("127.0.0.2", gateway.port, flood);
      await attacker.closed;
      expect(goawayCode(attacker.received())).toBe(H2Error.enhanceYourCalm);
    }
    // The next one is never read: no SETTINGS, no GOAWAY, however much it sends.
    const held = await connectFrom("127.0.0.2", gateway.port, flood);
    const normal = await normalCall(gateway.port);
    await sleep(300);
    expect(held.received().length).toBe(0);
    expect(held.socket.destroyed).toBe(false);
    // Another address is served meanwhile, on the same port.
    expect(normal).toBeGreaterThanOrEqual(200);
    const other = await connectFrom("127.0.0.3", gateway.port, [CLIENT_PREFACE, settingsFrame([])]);
    await sleep(200);
    expect(other.received()[3]).toBe(FrameType.settings);
    // The held connection is dropped after the header timeout, unanswered.
    const started = Date.now();
    await held.closed;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(held.received().length).toBe(0);
  });

  it("serves the address again once its budget refills", async () => {
    const gateway = await gatewayWith({
      http2: { settingsBudget: { burst: 2, perSecond: 1 }, abuseBudget: { burst: 1, perSecond: 5 } },
    });
    const attacker = await connectFrom("127.0.0.4", gateway.port, flood);
    await attacker.closed;
    await sleep(400);
    const again = await connectFrom("127.0.0.4", gateway.port, [CLIENT_PREFACE, settingsFrame([])]);
    await sleep(200);
    expect(again.received()[3]).toBe(FrameType.settings);
  });

  it("closes connections beyond maxConnectionsPerAddress at once, other addresses unaffected", async () => {
    const gateway = await gatewayWith({ http2: { maxConnectionsPerAddress: 2 } });
    const open = [CLIENT_PREFACE, settingsFrame([])];
    await connectFrom("127.0.0.5", gateway.port, open);
    await connectFrom("127.0.0.5", gateway.port, open);
    const third = await connectFrom("127.0.0.5", gateway.port, open);
    await third.closed;
    expect(third.received().length).toBe(0);
    expect(await normalCall(gateway.port)).toBeGreaterThanOrEqual(200);
  });

  it("refuses to start with a bad budget, naming it", async () => {
    await expect(gatewayWith({ http2: { abuseBudget: { burst: 0, perSecond: 1 } } })).rejects.toThrow(
      /abuseBudget\.burst must be a positive number, got 0/,
    );
  });
});

// A config reload applies changed limits to connections accepted from then on; the ones already
// open keep the limits they were accepted with (as nghttp2 and Envoy do).
describe("a config reload of the HTTP/2 limits", { timeout: 20_000 }, () => {
  it("applies changed session limits and per-address budgets to new connections, keeping the open ones", async () => {
    const config: GatewayConfig = {
      upstreams: { "portico.auth.v1.AuthService": { targets: [`http://127.0.0.1:${await freePort()}`], protocol: "connect" } },
      http2: { maxConcurrentStreams: 7, maxConnectionsPerAddress: 3 },
    };
    const gateway = await gatewayWith(config);
    const open = [CLIENT_PREFACE, settingsFrame([])];
    const before = await connectFrom("127.0.0.6", gateway.port, open);
    await connectFrom("127.0.0.6", gateway.port, open);
    expect((await advertised(gateway.port)).get(SettingId.maxConcurrentStreams)).toBe(7);

    gateway.reload({ ...config, http2: { maxConcurrentStreams: 3, maxConnectionsPerAddress: 2 } });
    // A new connection is offered the new stream limit.
    expect((await advertised(gateway.port)).get(SettingId.maxConcurrentStreams)).toBe(3);
    // 127.0.0.6 already has two open, the new maximum: its third is closed at once, unread.
    const third = await connectFrom("127.0.0.6", gateway.port, open);
    await third.closed;
    expect(third.received().length).toBe(0);
    // The connection opened before the reload keeps its own: it was offered 7 streams, and is still served.
    await sleep(100);
    expect(settingsOf(before.received()).get(SettingId.maxConcurrentStreams)).toBe(7);
    expect(before.socket.destroyed).toBe(false);
    expect(await normalCall(gateway.port)).toBeGreaterThanOrEqual(200);
  });

  it("refuses a reload with a bad limit, naming it, and keeps the running limits", async () => {
    const config: GatewayConfig = {
      upstreams: { "portico.auth.v1.AuthService": { targets: [`http://127.0.0.1:${await freePort()}`], protocol: "connect" } },
      http2: { maxConcurrentStreams: 5 },
    };
    const gateway = await gatewayWith(config);
    expect(() => gateway.reload({ ...config, http2: { resetBudget: { burst: 0, perSecond: 10 } } })).toThrow(
      /resetBudget\.burst must be a positive number, got 0/,
    );
    expect(() => gateway.reload({ ...config, http2: { abuseBudget: { burst: 1, perSecond: 0 } } })).toThrow(
      /abuseBudget\.perSecond must be a positive number, got 0/,
    );
    expect((await advertised(gateway.port)).get(SettingId.maxConcurrentStreams)).toBe(5);
  });

  it("spends the new abuse budget once an address's connections are closed for abuse after the reload", async () => {
    const config: GatewayConfig = {
      upstreams: { "portico.auth.v1.AuthService": { targets: [`http://127.0.0.1:${await freePort()}`], protocol: "connect" } },
      http2: { settingsBudget: { burst: 2, perSecond: 1 }, abuseBudget: { burst: 100, perSecond: 1 } },
    };
    const gateway = await gatewayWith(config);
    gateway.reload({ ...config, http2: { settingsBudget: { burst: 2, perSecond: 1 }, abuseBudget: { burst: 1, perSecond: 1 } } });
    const attacker = await connectFrom("127.0.0.7", gateway.port, flood);
    await attacker.closed;
    expect(goawayCode(attacker.received())).toBe(H2Error.enhanceYourCalm);
    // One abusive connection spent the new budget of one: the next is held unread.
    const held = await connectFrom("127.0.0.7", gateway.port, flood);
    await sleep(300);
    expect(held.received().length).toBe(0);
    expect(held.socket.destroyed).toBe(false);
  });
});
