// Traces across services: the real gateway, auth, greeter and lang (each on its database) in this
// process with tracing on, exporting over OTLP/HTTP to a loopback endpoint the test runs; one
// Greet's spans must form the tree gateway → greeter → lang → database.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { GreeterService } from "@portico/gen/portico/greeter/v1/greeter_pb.js";
import { startGreeter } from "@portico/greeter";
import { startTracing, traceDatabase } from "@portico/kit";
import { startLang } from "@portico/lang";
import { startTestPlatform } from "@portico/testing";
import { afterAll, describe, expect, it } from "vitest";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string } }[];
}
const SERVER = 2;
const CLIENT = 3;

/** An OTLP/HTTP JSON receiver on loopback: every span it was sent, with its resource's service.name. */
async function startOtlpSink() {
  const spans: (OtlpSpan & { service: string })[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      paths.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] };
          scopeSpans: { spans: OtlpSpan[] }[];
        }[];
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const ss of rs.scopeSpans) for (const span of ss.spans) spans.push({ ...span, service });
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, paths, close: () => server.close() };
}

const closers: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe("traces across services", () => {
  it("one Greet through the gateway is one trace: gateway → greeter → lang → database, parent and child linked", async () => {
    const sink = await startOtlpSink();
    closers.push(() => sink.close());
    const tracing = await startTracing({ service: "portico-test", env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } });
    expect(tracing.enabled).toBe(true);
    closers.push(() => tracing.close());

    const platform = await startTestPlatform({
      label: "tracing",
      services: {
        // As each service's main.ts does: its database's queries in spans.
        lang: (deps) => startLang({ ...deps, db: traceDatabase(deps.db) }),
        greeter: (deps) =>
          startGreeter({ ...deps, db: traceDatabase(deps.db), lang: { url: deps.urlOf("lang"), timeoutMs: 5000 } }),
      },
    });
    closers.push(() => platform.close());
    const ada = await platform.signUp("Ada");
    // The caller's own trace context: the gateway continues it.
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const res = await platform
      .client(GreeterService)
      .greet({ name: "Ada" }, { headers: { ...ada.headers, traceparent: `00-${traceId}-${callerSpan}-01` } });
    expect(res.greeting).toBe("Hello, Ada!");

    await tracing.close();
    expect(sink.paths.every((p) => p.startsWith("POST /v1/traces application/json"))).toBe(true);
    const trace = sink.spans.filter((s) => s.traceId === traceId);
    const child = (parent: OtlpSpan, name: string | RegExp, kind: number) => {
      const found = trace.filter(
        (s) =>
          s.parentSpanId === parent.spanId && s.kind === kind && (typeof name === "string" ? s.name === name : name.test(s.name)),
      );
      expect(found, `a ${kind === SERVER ? "server" : "client"} span ${name} under ${parent.name}`).toHaveLength(1);
      return found[0] as OtlpSpan;
    };
    const root = { spanId: callerSpan, name: "the caller" } as OtlpSpan;
    const atGateway = child(root, "portico.greeter.v1.GreeterService/Greet", SERVER);
    const atGreeter = child(atGateway, "portico.greeter.v1.GreeterService/Greet", SERVER);
    const toLang = child(atGreeter, "portico.lang.v1.LanguageService/Translate", CLIENT);
    const atLang = child(toLang, "portico.lang.v1.LanguageService/Translate", SERVER);
    const langQuery = child(atLang, /^SELECT$/, CLIENT);
    expect(langQuery.attributes.find((a) => a.key === "db.system.name")?.value.stringValue).toBe("postgresql");
    expect(langQuery.attributes.find((a) => a.key === "db.query.text")?.value.stringValue).toMatch(/select/i);
    // The greeter records the greeting in its own database, inside its call's span.
    child(atGreeter, /^INSERT$/, CLIENT);
    expect(atGateway.attributes.find((a) => a.key === "rpc.method")?.value.stringValue).toBe("Greet");
    // Four services and three databases start in this test: generous on a loaded machine.
  }, 120_000);
});
