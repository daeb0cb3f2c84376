// Whether a port can be listened on, checked before a service (re)starts, so that a taken port
// ends with one line that names the setting to change.
import { createServer } from "node:net";

/** Rejects with "port 8080 is already in use (set GATEWAY_PORT to use another)" when it is taken. */
export async function checkPortFree(env: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new Error(error.code === "EADDRINUSE" ? `port ${port} is already in use (set ${env} to use another)` : error.message),
      ),
    );
    probe.listen(port, "0.0.0.0", () => probe.close(() => resolve()));
  });
}
