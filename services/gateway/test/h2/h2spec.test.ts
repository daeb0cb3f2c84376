import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameType } from "../../src/h2/frame.js";
import type { Gateway } from "../../src/start-gateway.js";
import { createTestCertificate } from "../test-certificate.js";
import { startLoneGateway } from "../test-platform.js";

/*
 * h2spec (the HTTP/2 conformance suite, summerwind/h2spec 2.0.0) against a real gateway, over h2c
 * and over TLS with ALPN h2. It is not part of the project: a checkout finds it at
 * `../shared/tools/h2spec` next to the repository. Without it these tests are skipped with a line
 * that says so, unless PORTICO_REQUIRE_H2SPEC=1 (CI), which makes its absence a failure.
 */

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../..");
const h2spec = resolve(repoRoot, "../shared/tools/h2spec");
const present = existsSync(h2spec);
const required = process.env.PORTICO_REQUIRE_H2SPEC === "1";
if (!present && !required) {
  console.log(`h2spec.test.ts: skipped, no h2spec at ${h2spec} (set PORTICO_REQUIRE_H2SPEC=1 to make that a failure)`);
}

/**
 * The one case whose h2c answer differs, and why: the public port serves HTTP/1.1 and h2c on one
 * socket and tells them apart by the connection preface (dual-listener.ts). Bytes that are not the
 * HTTP/2 preface are HTTP/1.1 to it, so `INVALID CONNECTION PREFACE\r\n\r\n` gets an HTTP/1.1 400
 * and a close, where h2spec wants a GOAWAY or a bare close. Over TLS, ALPN says h2 before the
 * first byte and the engine answers GOAWAY PROTOCOL_ERROR (checked by h2spec and below).
 */
const sharedPortCase = "http2/3.5: Sends invalid connection preface";

let dir: string;
let h2c: Gateway;
let h2: Gateway;
let cert: string;

beforeAll(async () => {
  if (!present) return;
  dir = mkdtempSync(join(tmpdir(), "portico-h2spec-"));
  const created = await createTestCertificate(dir);
  cert = created.cert;
  const key = created.key;
  // h2spec asks for `/`: the gateway answers it itself (no route), so no backend is needed.
  h2c = await startLoneGateway({ shutdownGraceMs: 200 });
  h2 = await startLoneGateway({ shutdownGraceMs: 200, tls: { cert, key } });
});
afterAll(async () => {
  await h2c?.close();
  await h2?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface CaseResult {
  name: string;
  failure?: string;
}

/** Runs h2spec against `port` and reads its JUnit report: one entry per case. */
async function runH2spec(port: number, secure: boolean): Promise<CaseResult[]> {
  const report = join(dir, `report-${port}.xml`);
  const args = ["-h", "127.0.0.1", "-p", String(port), "-P", "/", "--timeout", "2", "-j", report];
  if (secure) args.push("-t", "-k");
  // h2spec exits non-zero when a case fails; the report says which.
  await promisify(execFile)(h2spec, args, { timeout: 120_000 }).catch(() => {});
  const xml = readFileSync(report, "utf8");
  const cases: CaseResult[] = [];
  const testcase = /<testcase package="([^"]*)" classname="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const [, pkg, classname, body] of xml.matchAll(testcase)) {
    const failure = body?.match(/<(?:failure|error)[^>]*>([\s\S]*?)<\/(?:failure|error)>/)?.[1];
    const failed = failure !== undefined || /<(?:failure|error)\b/.test(body ?? "");
    const name = `${pkg}: ${unescapeXml(classname ?? "")}`;
    cases.push(failed ? { name, failure: unescapeXml(failure ?? "failed").trim() } : { name });
  }
  return cases;
}

const unescapeXml = (text: string) =>
  text
    .replace(/&#34;|&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&#xA;|&#10;/g, "\n")
    .replace(/&amp;/g, "&");

const describeOf = (cases: CaseResult[]) =>
  cases.map((c) => `${c.name}\n    ${(c.failure ?? "").replace(/\n/g, "\n    ")}`).join("\n");

describe("h2spec is available", () => {
  it("is there when PORTICO_REQUIRE_H2SPEC=1 asks for it", () => {
    expect(present || !required, `no h2spec at ${h2spec}; see ../shared/tools/README.md`).toBe(true);
  });
});

describe.runIf(present)("h2spec against the gateway", { timeout: 180_000 }, () => {
  it("passes every case over TLS (ALPN h2)", async () => {
    const cases = await runH2spec(h2.port, true);
    expect(cases.length).toBeGreaterThanOrEqual(146);
    const failed = cases.filter((c) => c.failure !== undefined);
    expect(failed, `h2spec over TLS failed ${failed.length} of ${cases.length}:\n${describeOf(failed)}`).toEqual([]);
  });

  it("passes every case over h2c but the one the shared HTTP/1.1 port answers", async () => {
    const cases = await runH2spec(h2c.port, false);
    expect(cases.length).toBeGreaterThanOrEqual(146);
    const failed = cases.filter((c) => c.failure !== undefined && c.name !== sharedPortCase);
    expect(failed, `h2spec over h2c failed ${failed.length} of ${cases.length}:\n${describeOf(failed)}`).toEqual([]);
    expect(cases.some((c) => c.name === sharedPortCase)).toBe(true);
  });

  it("answers an invalid preface on h2c as HTTP/1.1 (400, the shared port's answer) and over TLS with GOAWAY PROTOCOL_ERROR", async () => {
    const invalid = "INVALID CONNECTION PREFACE\r\n\r\n";
    const plain = await exchange(net.connect({ host: "127.0.0.1", port: h2c.port }), invalid);
    expect(plain.toString("latin1")).toMatch(/^HTTP\/1\.1 400 /);
    const secure = await exchange(
      tls.connect({ host: "127.0.0.1", port: h2.port, ca: cert, ALPNProtocols: ["h2"], servername: "localhost" }),
      invalid,
    );
    // After the server's SETTINGS (and WINDOW_UPDATE): GOAWAY with PROTOCOL_ERROR.
    const goaway = findFrame(secure, FrameType.goaway);
    expect(goaway?.readUInt32BE(4)).toBe(1);
  });
});

/** Writes `text` once connected and answers everything the gateway sent until it closed. */
function exchange(socket: net.Socket, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.once(socket instanceof tls.TLSSocket ? "secureConnect" : "connect", () => socket.write(text));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
    setTimeout(() => socket.destroy(), 5000).unref();
  });
}

/** The payload of the first frame of `type` in a run of frames. */
function findFrame(bytes: Buffer, type: number): Buffer | undefined {
  for (let off = 0; off + 9 <= bytes.length; ) {
    const length = bytes.readUIntBE(off, 3);
    if (bytes[off + 3] === type) return bytes.subarray(off + 9, off + 9 + length);
    off += 9 + length;
  }
  return undefined;
}
