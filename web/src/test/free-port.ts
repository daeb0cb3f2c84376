import { createServer } from "node:net";

/** A port on 127.0.0.1 that was free a moment ago (and that nothing listens on until someone binds it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}
