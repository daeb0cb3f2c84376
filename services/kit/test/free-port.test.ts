import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePorts } from "../src/free-port.js";

describe("freePorts", () => {
  it("answers different ports, each of which can be bound at once", async () => {
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) {
      const server = createServer();
      await new Promise<void>((listening, failed) => {
        server.once("error", failed);
        server.listen(port, "127.0.0.1", listening);
      });
      await new Promise((closed) => server.close(closed));
    }
  });
});
