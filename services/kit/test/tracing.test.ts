import { execFileSync } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/config-error.js";
import { createLogger } from "../src/logger.js";
import { activeTracing, otlpTracesUrl, startTracing } from "../src/tracing.js";

const closers: (() => unknown)[] = [];
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** Log lines written to it, parsed. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe("tracing", () => {
  it("is off without OTEL_EXPORTER_OTLP_ENDPOINT: no hook is active and log lines carry no trace_id", async () => {
    const tracing = await startTracing({ service: "test", env: {} });
    expect(tracing.enabled).toBe(false);
    expect(activeTracing()).toBeUndefined();
    const { lines, stream } = capture();
    createLogger({ service: "test", destination: stream }).info("hello");
    expect(lines[0]).not.toHaveProperty("trace_id");
    expect(
      (await startTracing({ service: "test", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://x:4318", OTEL_SDK_DISABLED: "true" } }))
        .enabled,
    ).toBe(false);
  });

  it("gives each log line only its own fields: the trace_id mixin shares nothing between lines", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: "test", destination: stream });
    logger.info({ port: 8081 }, "listening");
    logger.warn({ kids: ["k1"] }, "keys withdrawn");
    logger.info("plain");
    expect(lines.map(({ level, msg, port, kids }) => ({ level, msg, port, kids }))).toEqual([
      { level: "info", msg: "listening", port: 8081, kids: undefined },
      { level: "warn", msg: "keys withdrawn", port: undefined, kids: ["k1"] },
      { level: "info", msg: "plain", port: undefined, kids: undefined },
    ]);
  });

  it("loads nothing of OpenTelemetry in a process that does not trace, and the SDK in one that does", () => {
    // A fresh process that starts tracing as a service's main does, then lists the OpenTelemetry modules it loaded.
    const probe = `
      import { createRequire } from "node:module";
      const kit = await import(${JSON.stringify(fileURLToPath(new URL("../src/index.ts", import.meta.url)))});
      const tracing = await kit.startTracing({ service: "probe" });
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes("@opentelemetry"));
      await tracing.close();
      console.log(JSON.stringify({ enabled: tracing.enabled, loaded }));`;
    const run = (env: Record<string, string>) => {
      const { OTEL_EXPORTER_OTLP_ENDPOINT: _, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: __, ...rest } = process.env;
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", probe], {
        env: { ...rest, ...env },
        encoding: "utf8",
      });
      return JSON.parse(out.trim().split("\n").pop() as string) as { enabled: boolean; loaded: string[] };
    };
    expect(run({})).toEqual({ enabled: false, loaded: [] });
    const on = run({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" });
    expect(on.enabled).toBe(true);
    expect(on.loaded.some((path) => path.includes("@opentelemetry/sdk-trace-node"))).toBe(true);
    // Two node processes that compile TypeScript: generous on a loaded machine.
  }, 90_000);

  it("sends spans to <endpoint>/v1/traces, or the traces endpoint as given, and refuses what is not an http URL", () => {
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })).toBe("http://collector:4318/v1/traces");
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://c.example/otlp/traces" })).toBe(
      "https://c.example/otlp/traces",
    );
    expect(() => otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" })).toThrow(ConfigError);
    expect(() => otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" is not valid; expected an http:\/\/ or https:\/\/ URL/,
    );
  });

  it("on: a log line written inside a span carries its trace_id, and the span reaches the OTLP endpoint", async () => {
    const received: string[] = [];
    const sink = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString("utf8");
      });
      req.on("end", () => {
        received.push(body);
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", () => resolve()));
    closers.push(() => sink.close());
    const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
    const tracing = await startTracing({ service: "test", env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    closers.push(() => tracing.close());
    const active = activeTracing();
    expect(active).toBeDefined();

    const { lines, stream } = capture();
    const logger = createLogger({ service: "test", destination: stream });
    let traceId: string | undefined;
    await active?.query("select 1", async () => {
      traceId = active.traceId();
      logger.info("inside");
    });
    logger.info("outside");
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[0]?.trace_id).toBe(traceId);
    expect(lines[1]).not.toHaveProperty("trace_id");

    await tracing.close();
    expect(activeTracing()).toBeUndefined();
    expect(received.join("")).toContain(traceId);
    expect(received.join("")).toContain('"service.name"');
  });
});
