import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, startTestPlatform, type TestPlatform } from "./test-platform.js";
import { repoRoot } from "./test-rest-image.js";

// REST through the gateway, from the google.api.http bindings in the protos, called as curl
// would: plain HTTP/1.1 requests with JSON bodies (fetch), against the real auth service and greeter.

let platform: TestPlatform;
let webRoot: string;
let base: string;

beforeAll(async () => {
  webRoot = mkdtempSync(join(tmpdir(), "portico-rest-web-"));
  mkdirSync(join(webRoot, "assets"));
  writeFileSync(join(webRoot, "index.html"), "<!doctype html><title>web app</title>");
  platform = await startTestPlatform("rest", { webRoot, corsOrigins: ["https://app.example.com"] });
  base = platform.gateway.url;
});

afterAll(async () => {
  await platform?.close();
  rmSync(webRoot, { recursive: true, force: true });
});

const json = { "content-type": "application/json" };

interface ErrorJson {
  code: string;
  message: string;
}
interface AuthJson {
  user: { id: string; email: string; displayName: string };
  tokens: { accessToken: string; refreshToken: string };
}
interface ListJson {
  greetings: { message: string; createdAt: string }[];
  nextPageToken: string;
}

interface SchemaJson {
  properties: Record<string, unknown>;
}
interface OpenApiOperation {
  operationId: string;
  security: unknown[];
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface OpenApiJson {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const errorOf = async (res: Response) => (await res.json()) as ErrorJson;

async function signUpRest(name: string): Promise<{ token: string; body: AuthJson }> {
  const email = `${name}-${Math.random().toString(36).slice(2)}@example.com`;
  const res = await fetch(`${base}/v1/auth/signup`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ email, password: "correct horse battery staple", displayName: name }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as AuthJson;
  return { token: body.tokens.accessToken as string, body };
}

describe("REST bindings of the existing services", () => {
  it("signs up, logs in and reads /v1/me (response_body: the user alone) in proto3 JSON", async () => {
    const { body } = await signUpRest("ada");
    expect(body.user.displayName).toBe("ada");
    expect(typeof body.tokens.refreshToken).toBe("string");
    const login = await fetch(`${base}/v1/auth/login`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ email: body.user.email, password: "correct horse battery staple" }),
    });
    expect(login.status).toBe(200);
    const token = ((await login.json()) as AuthJson).tokens.accessToken;
    const me = await fetch(`${base}/v1/me`, { headers: bearer(token) });
    expect(me.status).toBe(200);
    expect(me.headers.get("content-type")).toBe("application/json");
    const user = (await me.json()) as Record<string, unknown>;
    expect(user.id).toBe(body.user.id);
    expect(user.email).toBe(body.user.email);
    expect(user).not.toHaveProperty("user");
  });

  it("greets with POST /v1/greetings (body *) and lists with GET /v1/greetings?page_size=", async () => {
    const { token } = await signUpRest("grace");
    for (const name of ["one", "two", "three"]) {
      const res = await fetch(`${base}/v1/greetings`, {
        method: "POST",
        headers: { ...json, ...bearer(token) },
        body: JSON.stringify({ name }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { greeting: string }).greeting).toBe(`Hello, ${name}!`);
    }
    const page = await fetch(`${base}/v1/greetings?page_size=2`, { headers: bearer(token) });
    expect(page.status).toBe(200);
    const first = (await page.json()) as ListJson;
    expect(first.greetings.map((g) => g.message)).toEqual(["Hello, three!", "Hello, two!"]);
    expect(typeof first.greetings[0].createdAt).toBe("string");
    // The JSON name works in the query as well as the proto name.
    const next = await fetch(`${base}/v1/greetings?pageSize=2&pageToken=${encodeURIComponent(first.nextPageToken)}`, {
      headers: bearer(token),
    });
    expect(((await next.json()) as ListJson).greetings.map((g) => g.message)).toEqual(["Hello, one!"]);
  });

  it("applies the rpc's policy: no token is 401 in JSON, as the Connect call would be", async () => {
    const res = await fetch(`${base}/v1/greetings`, { method: "POST", headers: json, body: '{"name":"Ada"}' });
    expect(res.status).toBe(401);
    const error = await errorOf(res);
    expect(error.code).toBe("unauthenticated");
    expect(error.message).toMatch(/missing access token/);
  });

  it("streams GET /v1/greetings:stream as NDJSON, and as server-sent events when asked", async () => {
    const { token } = await signUpRest("linus");
    const res = await fetch(`${base}/v1/greetings:stream?name=Ada&count=3`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.result.greeting)).toEqual(["Hello, Ada! (1/3)", "Hello, Ada! (2/3)", "Hello, Ada! (3/3)"]);
    expect(lines.map((l) => l.result.index ?? 0)).toEqual([0, 1, 2]);

    const sse = await fetch(`${base}/v1/greetings/Bob:stream?count=2`, {
      headers: { ...bearer(token), accept: "text/event-stream" },
    });
    expect(sse.headers.get("content-type")).toBe("text/event-stream");
    const events = (await sse.text()).split("\n\n").filter((e) => e !== "");
    expect(events).toHaveLength(2);
    expect(JSON.parse((events[0] as string).replace(/^data: /, "")).greeting).toBe("Hello, Bob! (1/2)");
  });

  it("answers 404 in JSON for a path under /v1/ that no binding matches, never the web app", async () => {
    const res = await fetch(`${base}/v1/nothing/here`);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("not_found");
    // Outside the bindings' prefixes the web app still answers.
    const app = await fetch(`${base}/some/client/route`);
    expect(app.status).toBe(200);
    expect(await app.text()).toContain("web app");
  });

  it("answers 405 with Allow for a bound path and a method it is not bound for", async () => {
    const res = await fetch(`${base}/v1/greetings`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, POST");
    expect((await errorOf(res)).message).toMatch(/DELETE is not allowed on \/v1\/greetings/);
  });
  it("lets a browser app on an allowed origin use the REST methods (CORS preflight)", async () => {
    const res = await fetch(`${base}/v1/me/language`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "PUT" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("access-control-allow-methods")?.split(", ")).toContain("PUT");
  });
});

describe("REST bad input", () => {
  it("refuses a query value of the wrong type with 400 naming the parameter", async () => {
    const { token } = await signUpRest("q");
    const res = await fetch(`${base}/v1/greetings?page_size=lots`, { headers: bearer(token) });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toMatch(/query parameter page_size: "lots" is not a valid page_size \(uint32\)/);
  });

  it("refuses an unknown query parameter with 400 listing the ones the route takes", async () => {
    const { token } = await signUpRest("u");
    const res = await fetch(`${base}/v1/greetings?page_sise=2`, { headers: bearer(token) });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toBe(
      'unknown query parameter "page_sise": GET /v1/greetings takes page_size, page_token',
    );
  });

  it("refuses a body on GET with 400", async () => {
    const { token } = await signUpRest("g");
    // fetch refuses a GET with a body; curl -X GET -d does not.
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const body = '{"user":"someone else"}';
      const headers = { ...json, ...bearer(token), "content-length": String(body.length) };
      const req = http.request(`${base}/v1/me`, { method: "GET", headers }, (r) => {
        let body = "";
        r.on("data", (c: Buffer) => {
          body += c.toString();
        });
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end(body);
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).message).toMatch(/GET \/v1\/me takes no request body/);
  });

  it("refuses a JSON body over the method's size limit before it reaches the greeter", async () => {
    const { token } = await signUpRest("big");
    const body = JSON.stringify({ name: "x".repeat(5000) }); // Greet: max_request_bytes 4096
    const res = await fetch(`${base}/v1/greetings`, { method: "POST", headers: { ...json, ...bearer(token) }, body });
    expect(res.status).toBe(429);
    const error = await errorOf(res);
    expect(error.code).toBe("resource_exhausted");
    expect(error.message).toMatch(/exceeds the limit of 4096 bytes/);
  });

  it("refuses a body field of the wrong type with 400 naming the field", async () => {
    const { token } = await signUpRest("t");
    const res = await fetch(`${base}/v1/greetings`, {
      method: "POST",
      headers: { ...json, ...bearer(token) },
      body: '{"name": 12}',
    });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/GreetRequest\.name/);
  });

  it("refuses a form-encoded body with 415 (curl -d without a JSON content type)", async () => {
    const res = await fetch(`${base}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "email=a&password=b",
    });
    expect(res.status).toBe(415);
    expect((await errorOf(res)).message).toMatch(/send the body as application\/json/);
  });
});

describe("OpenAPI", () => {
  const validator = async (document: unknown) => {
    const v = new Validator();
    return { result: await v.validate(document as Parameters<Validator["validate"]>[0]), version: v.version };
  };

  it("gen/openapi.json is a valid OpenAPI 3.1 document", async () => {
    const document = JSON.parse(readFileSync(join(repoRoot, "gen/openapi.json"), "utf8")) as object;
    expect(await validator(document)).toEqual({ result: { valid: true }, version: "3.1" });
  });

  it("the gateway serves a valid document of what it routes, and calls one REST route the way it says", async () => {
    const served = await fetch(`${base}/openapi.json`);
    expect(served.headers.get("content-type")).toBe("application/json");
    const document = (await served.json()) as OpenApiJson;
    expect(await validator(document)).toEqual({ result: { valid: true }, version: "3.1" });
    // The test platform routes auth and greeter, not lang; INTERNAL methods never appear.
    expect(document.paths["/v1/languages"]).toBeUndefined();
    expect(document.paths["/portico.auth.v1.AuthService/Authenticate"]).toBeUndefined();

    // Find Greet's REST operation and call it as described: its path and method, the bearer
    // scheme it names, a JSON body with the properties of its request schema.
    const [path, verb, operation] = Object.entries(document.paths)
      .flatMap(([p, item]) => Object.entries(item).map(([m, op]) => [p, m, op] as const))
      .find(([, , op]) => op.operationId === "GreeterService_Greet_Rest") as [string, string, OpenApiOperation];
    expect([path, verb]).toEqual(["/v1/greetings", "post"]);
    expect(operation.security).toEqual([{ bearerAuth: [] }]);
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    const requestRef = operation.requestBody?.content["application/json"]?.schema.$ref as string;
    const requestSchema = document.components.schemas[requestRef.split("/").pop() as string] as SchemaJson;
    expect(Object.keys(requestSchema.properties)).toEqual(["name"]);
    const { token } = await signUpRest("openapi");
    const res = await fetch(`${base}${path}`, {
      method: verb.toUpperCase(),
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ name: "Spec" }),
    });
    expect(res.status).toBe(200);
    const responseRef = operation.responses["200"]?.content?.["application/json"]?.schema.$ref as string;
    const responseSchema = document.components.schemas[responseRef.split("/").pop() as string] as SchemaJson;
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.greeting).toBe("Hello, Spec!");
    for (const key of Object.keys(body)) expect(Object.keys(responseSchema.properties)).toContain(key);
  });

  it("serves the interactive reference at /docs from the installed swagger-ui-dist, no CDN", async () => {
    const page = await fetch(`${base}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ["/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js"]) {
      expect(html).toContain(asset);
      const res = await fetch(`${base}${asset}`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(asset === "/docs/init.js" ? 10 : 10_000);
    }
    const init = await (await fetch(`${base}/docs/init.js`)).text();
    expect(init).toContain('url: "/openapi.json"');
    expect(init).toContain("validatorUrl: null"); // no call to validator.swagger.io either
  });
});
