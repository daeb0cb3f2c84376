import * as net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { CLIENT_PREFACE, FrameType, SettingId, settingsFrame } from "../src/h2/index.js";
import type { Gateway, GatewayOptions } from "../src/start-gateway.js";
import { startLoneGateway } from "./test-platform.js";

// The public port's HTTP/2 limits come from the gateway's options (engine defaults otherwise).

const gateways: Gateway[] = [];
afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
});

async function gatewayWith(options: Partial<GatewayOptions>): Promise<Gateway> {
  // Requests to `/` are answered by the gateway itself: nothing needs to stand behind it.
  const gateway = await startLoneGateway({ shutdownGraceMs: 200, ...options });
  gateways.push(gateway);
  return gateway;
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
      expect(buf[3]).toBe(FrameType.settings);
      const settings = new Map<number, number>();
      for (let i = 9; i < 9 + buf.readUIntBE(0, 3); i += 6) settings.set(buf.readUInt16BE(i), buf.readUInt32BE(i + 2));
      socket.destroy();
      resolve(settings);
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
