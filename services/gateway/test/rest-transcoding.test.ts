import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { DescMessage, DescService, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGatewayConfig } from "../src/gateway-config.js";
import { loadImage } from "../src/load-image.js";
import type { Gateway } from "../src/start-gateway.js";
import { startLoneGateway } from "./test-platform.js";
import { buildTestImage } from "./test-rest-image.js";

// The transcoding rules on a test service whose methods answer their request back, so each test
// sees the message the gateway built from the path, query and body: path templates with typed and
// multi-segment variables, nested and repeated query parameters, enums, `body: "book"`,
// `response_body`, `additional_bindings`, and a stream the client walks away from.

const proto = `syntax = "proto3";
package rest.test.v1;
import "google/api/annotations.proto";
import "google/protobuf/timestamp.proto";
import "portico/gateway/v1/options.proto";

service LibraryService {
  option (portico.gateway.v1.default_policy) = {access: ACCESS_PUBLIC};
  rpc GetShelf(GetShelfRequest) returns (GetShelfRequest) {
    option (google.api.http) = {get: "/v1/shelves/{shelf_id}"};
  }
  rpc GetBook(GetBookRequest) returns (GetBookRequest) {
    option (google.api.http) = {
      get: "/v1/{name=shelves/*/books/*}"
      additional_bindings {get: "/v1/books/{name=**}"}
    };
  }
  rpc UpdateBook(UpdateBookRequest) returns (UpdateBookRequest) {
    option (google.api.http) = {patch: "/v1/{book.name=shelves/*/books/*}" body: "book" response_body: "book"};
  }
  rpc WatchShelf(GetShelfRequest) returns (stream GetShelfRequest) {
    option (google.api.http) = {get: "/v1/shelves/{shelf_id}:watch"};
  }
  rpc TailShelf(GetShelfRequest) returns (stream GetShelfRequest) {
    option (google.api.http) = {get: "/v1/shelves/{shelf_id}:tail"};
    option (portico.gateway.v1.policy) = {timeout: {seconds: 1}};
  }
}
enum View {
  VIEW_UNSPECIFIED = 0;
  VIEW_BASIC = 1;
  VIEW_FULL = 2;
}
message GetShelfRequest { int64 shelf_id = 1; }
message Filter {
  string author = 1;
  google.protobuf.Timestamp published_after = 2;
}
message GetBookRequest {
  string name = 1;
  View view = 2;
  repeated string tags = 3;
  Filter filter = 4;
  bool include_drafts = 5;
}
message Book {
  string name = 1;
  string title = 2;
  uint32 pages = 3;
}
message UpdateBookRequest {
  Book book = 1;
  bool validate_only = 2;
}
`;

let gateway: Gateway;
let upstream: http2.Http2Server;
let watchEnded: Promise<{ aborted: boolean }>;
let image: string;
let upstreamUrl: string;

beforeAll(async () => {
  image = buildTestImage("rest/test/v1/library.proto", proto);
  const service = loadImage(image).registry.getService("rest.test.v1.LibraryService") as DescService;
  let ended!: (result: { aborted: boolean }) => void;
  watchEnded = new Promise((resolve) => {
    ended = resolve;
  });
  const echo = (request: MessageShape<DescMessage>) => request;
  const routes = (router: ConnectRouter) =>
    router.service(service, {
      getShelf: echo,
      getBook: echo,
      updateBook: echo,
      async *tailShelf(request: MessageShape<DescMessage> & { shelfId: bigint }, ctx: HandlerContext) {
        for (;;) {
          yield create(service.method.tailShelf.output, { shelfId: request.shelfId });
          await sleep(100, undefined, { signal: ctx.signal }).catch(() => {});
          if (ctx.signal.aborted) return;
        }
      },
      async *watchShelf(request: MessageShape<DescMessage> & { shelfId: bigint }, ctx: HandlerContext) {
        try {
          for (let i = 0; ; i++) {
            yield create(service.method.watchShelf.output, { shelfId: request.shelfId + BigInt(i) });
            await sleep(20, undefined, { signal: ctx.signal });
          }
        } finally {
          ended({ aborted: ctx.signal.aborted });
        }
      },
    } as never);
  upstream = http2.createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gateway = await startLoneGateway({
    imagePath: image,
    upstreams: { "rest.test.v1.LibraryService": { targets: [upstreamUrl], protocol: "connect" } },
  });
});

afterAll(async () => {
  await gateway?.close();
  await new Promise((resolve) => upstream?.close(resolve));
});

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${gateway.url}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe("REST transcoding", () => {
  it("reads a typed path variable: an int64 comes back as protojson writes it", async () => {
    expect(await get("/v1/shelves/12")).toEqual({ status: 200, body: { shelfId: "12" } });
  });

  it("refuses a path variable of the wrong type with 400 naming the variable", async () => {
    const res = await get("/v1/shelves/twelve");
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message).toMatch(/^path variable {shelf_id}: "twelve" is not a valid shelf_id \(int64\)/);
  });

  it("builds the request from a multi-segment variable and nested, repeated and enum query parameters", async () => {
    const query =
      "view=VIEW_FULL&tags=a&tags=b&filter.author=Ada&filter.published_after=2024-01-01T00:00:00Z&include_drafts=true";
    expect(await get(`/v1/shelves/1/books/2?${query}`)).toEqual({
      status: 200,
      body: {
        name: "shelves/1/books/2",
        view: "VIEW_FULL",
        tags: ["a", "b"],
        filter: { author: "Ada", publishedAfter: "2024-01-01T00:00:00Z" },
        includeDrafts: true,
      },
    });
    // An enum by number works too; a name it does not have is 400 listing the ones it has.
    expect((await get("/v1/shelves/1/books/2?view=1")).body.view).toBe("VIEW_BASIC");
    const bad = await get("/v1/shelves/1/books/2?view=VIEW_HUGE");
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(
      /query parameter view: "VIEW_HUGE" is not a valid view \(one of VIEW_UNSPECIFIED, VIEW_BASIC, VIEW_FULL\)/,
    );
  });

  it("serves additional_bindings; a ** variable keeps its slashes and an escaped one", async () => {
    expect((await get("/v1/books/a/b/c%2Fd")).body.name).toBe("a/b/c%2Fd");
  });

  it('maps body: "book" and response_body: "book", with the path variable inside the body field', async () => {
    const res = await get("/v1/shelves/3/books/4", {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: "Dune", pages: 412 }),
    });
    expect(res).toEqual({ status: 200, body: { name: "shelves/3/books/4", title: "Dune", pages: 412 } });
  });

  it("a path that does not fit the template's shape is 404, not a match of a shorter one", async () => {
    expect((await get("/v1/shelves/1/books")).status).toBe(404);
    expect((await get("/v1/shelves/1/books/2/pages")).status).toBe(404);
  });

  it("ends a stream the gateway cuts (its deadline) with an error line, or an error event", async () => {
    const [ndjson, sse] = await Promise.all([
      fetch(`${gateway.url}/v1/shelves/7:tail`).then((r) => r.text()),
      fetch(`${gateway.url}/v1/shelves/7:tail`, { headers: { accept: "text/event-stream" } }).then((r) => r.text()),
    ]);
    const lines = ndjson
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ result: { shelfId: "7" } });
    expect(lines[lines.length - 1]).toEqual({ error: { code: "deadline_exceeded", message: "deadline of 1000 ms exceeded" } });
    const events = sse.trim().split("\n\n");
    expect(events[events.length - 1]).toBe(
      'event: error\ndata: {"code":"deadline_exceeded","message":"deadline of 1000 ms exceeded"}',
    );
  });

  it("answers with the .proto's field names when the config says restUseProtoNames, and refuses a non-boolean", async () => {
    const protoNames = await startLoneGateway({
      imagePath: image,
      restUseProtoNames: true,
      upstreams: { "rest.test.v1.LibraryService": { targets: [upstreamUrl], protocol: "connect" } },
    });
    try {
      const res = await fetch(`${protoNames.url}/v1/shelves/1/books/2?include_drafts=true`);
      expect(await res.json()).toEqual({ name: "shelves/1/books/2", include_drafts: true });
    } finally {
      await protoNames.close();
    }
    expect(() => parseGatewayConfig({ upstreams: {}, restUseProtoNames: "yes" }, "gateway.config.json")).toThrow(
      'gateway.config.json: restUseProtoNames: "yes" is not valid; expected true or false',
    );
  });

  it("resets the upstream stream when the client of a streaming REST call goes away", async () => {
    const controller = new AbortController();
    const res = await fetch(`${gateway.url}/v1/shelves/5:watch`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(first.value).split("\n")[0] as string)).toEqual({ result: { shelfId: "5" } });
    controller.abort();
    // The upstream handler sees its call cancelled (it would stream forever otherwise).
    expect(await watchEnded).toEqual({ aborted: true });
  });
});
