import * as http2 from "node:http2";
import type { ServiceImpl } from "@connectrpc/connect";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";
import { connectionWindowBytes, type ServiceServer, startServiceServer, streamWindowBytes } from "../src/service-server.js";
import { createTestKeys } from "../testing/index.js";

const keys = createTestKeys(["greeter"]);
const echo: Partial<ServiceImpl<typeof GreeterService>> = {
  echo: (req) => ({ payload: req.payload }),
};

describe("startServiceServer's HTTP/2 connections", () => {
  let server: ServiceServer;
  beforeAll(async () => {
    server = await startServiceServer({
      name: "greeter",
      port: 0,
      logger: createLogger({ service: "test", level: "silent" }),
      identity: keys.identity("greeter"),
      routes: (router) => router.service(GreeterService, echo),
      shutdownGraceMs: 200,
    });
  });
  afterAll(() => server.close());

  it("let a caller send 1 MiB on one connection, all of it on one stream if it likes, before the server reads any (node's default is 64 KiB)", async () => {
    const session = http2.connect(server.url);
    try {
      await new Promise<void>((resolve, reject) => {
        session.once("error", reject);
        session.once("remoteSettings", () => resolve());
      });
      // The server's WINDOW_UPDATE on stream 0 follows its SETTINGS; a PING's answer comes after it.
      await new Promise<void>((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve())));
      expect(connectionWindowBytes).toBe(1024 * 1024);
      expect(session.state.remoteWindowSize).toBe(connectionWindowBytes);
      // Each stream may take the connection's whole window (node's default is 65,535 bytes).
      expect(streamWindowBytes).toBe(1024 * 1024);
      expect(session.remoteSettings.initialWindowSize).toBe(streamWindowBytes);
    } finally {
      session.close();
    }
  });
});
