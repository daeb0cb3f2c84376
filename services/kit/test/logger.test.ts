import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const loggerModule = fileURLToPath(new URL("../src/logger.ts", import.meta.url));

// A service on its way out after its supervisor died: the reader of its stdout is gone, and it logs
// twice (a lost database connection, say) before it exits.
const child = `
import { createLogger } from ${JSON.stringify(loggerModule)};
const logger = createLogger({ service: "child" });
logger.info("ready");
process.stdin.on("end", () => {
  logger.warn({ err: new Error("the database went away") }, "first line after the reader left");
  logger.warn("second line after the reader left");
  process.exit(0);
});
process.stdin.resume();
`;

describe("logger", () => {
  it("lets a process exit when the reader of its stdout is gone, whatever it logged on the way", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", child], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
    // "ready" arrived: the logger writes; now the reader goes away and the child is told to stop.
    await new Promise((resolve) => proc.stdout.once("data", resolve));
    proc.stdout.destroy();
    proc.stdin.end();
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    const code = await exited;
    clearTimeout(timer);
    // Killed after 5 s (code null) is the hang: pino's buffered lines retried on EPIPE forever.
    expect(code).toBe(0);
  }, 15_000);
});
