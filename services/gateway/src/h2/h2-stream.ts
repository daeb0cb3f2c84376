import type { OutgoingHttpHeaders } from "node:http2";
import { FrameFlag, FrameType, frame, H2Error, wordsFrame, writeFrameHeader } from "./frame.js";
import type { H2Session } from "./h2-session.js";
import { toHeaderList } from "./header-object.js";
import type { HeaderList } from "./hpack.js";
import { ownedCopy, ownedJoin } from "./shared-read-buffer.js";
import { StreamEvents } from "./stream-events.js";

/** One HTTP/2 stream: a request the gateway serves (server role) or one it sends upstream (client role). */
export class H2Stream extends StreamEvents {
  readonly session: H2Session;
  id: number;
  /** Response headers went out (server role). */
  headersSent = false;
  destroyed = false;
  closed = false;
  /** `end()` was called. */
  writableEnded = false;
  /** 'end' was emitted: the peer's data is all delivered. */
  readableEnded = false;
  /** The RST_STREAM code that ended the stream, 0 otherwise. */
  rstCode = 0;
  /** @internal */ remoteEnded = false;
  /** @internal */ localEnded = false;
  /** @internal */ sendWindow: number;
  /** @internal */ responded = false;
  /** @internal */ opened: boolean;
  /** @internal Server role: the answer is complete, the request is not; over for the application, still open for the protocol. */
  lingering = false;
  /** @internal When the stream last became unable to send what it queued (0: it is not stalled). */
  stalledSince = 0;
  /** @internal This side sent RST_STREAM for it. */
  resetHere = false;
  /** @internal The request's content-length, -1 when it has none. */
  expectedLength = -1;
  /** @internal DATA bytes received (without padding). */
  receivedLength = 0;
  /** @internal What is left of the receive window the peer may still fill. */
  recvWindow: number;
  private flowing = false;
  private paused = false;
  private inbox: Buffer[] = [];
  private inboxBytes = 0;
  /** Data of the current read, emitted as one chunk when the read is parsed (see `gather`). */
  private gathered: Buffer[] | undefined;
  private gatheredBytes = 0;
  private unacked = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private endQueued = false;
  private waitForTrailers = false;
  private trailersSent = false;
  private wantDrain = false;
  /** @internal */ queuedHeaders: HeaderList | undefined;

  constructor(session: H2Session, id: number, opened: boolean) {
    super();
    this.session = session;
    this.id = id;
    this.opened = opened;
    this.sendWindow = session.peerInitialWindow;
    this.recvWindow = session.localInitialWindow;
  }

  /** Whether the peer lets this stream send DATA now (its window for the stream is open). */
  get sendWindowOpen(): boolean {
    return this.sendWindow > 0;
  }

  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === "data" && !this.flowing) {
      this.flowing = true;
      if (this.inbox.length > 0 || this.remoteEnded) queueMicrotask(() => this.drainInbox());
    }
    return this;
  }

  // --- reading ---

  /**
   * @internal Data from the peer: `chunk` without padding, `frameLength` the whole DATA payload
   * (what the windows count). Answers false when the stream was reset for it.
   */
  receive(chunk: Buffer, frameLength: number): boolean {
    if (!this.admit(frameLength)) return false;
    if (frameLength > chunk.length) this.credit(frameLength - chunk.length);
    return this.deliver(chunk);
  }

  /**
   * @internal A DATA frame of `frameLength` bytes is arriving: counted against the receive window
   * (all of it, before any of its bytes are delivered). Answers false when it overflows the window:
   * the stream is reset (FLOW_CONTROL_ERROR).
   */
  admit(frameLength: number): boolean {
    const session = this.session;
    this.recvWindow -= frameLength;
    // Client role: the connection window is credited as data arrives (see `creditsOnArrival`).
    const early = session.creditsOnArrival;
    if (early) session.creditConnection(frameLength);
    if (this.recvWindow < session.recvSlack) {
      // More than the window it was given: flow control is broken (and the buffer would grow without bound).
      if (!early) session.creditConnection(frameLength);
      this.close(H2Error.flowControlError);
      return false;
    }
    return true;
  }

  /** @internal Admitted data (a whole DATA payload or a piece of one) for the application. False when the stream was reset for it. */
  deliver(bytes: Buffer): boolean {
    if (bytes.length === 0) return true;
    if (this.flowing && !this.paused && this.inbox.length === 0) {
      // Gathered: every DATA frame of this stream in the read goes to the reader as one chunk.
      if (this.gathered === undefined) {
        this.gathered = [bytes];
        gathering.push(this);
      } else this.gathered.push(bytes);
      this.gatheredBytes += bytes.length;
      return true;
    }
    // Bytes of the shared read buffer are valid only during the read: the stream's reader may keep them.
    const chunk = ownedCopy(bytes);
    // Held until the application reads it; credited back only then.
    const session = this.session;
    if (!session.reserve(chunk.length)) {
      if (!session.creditsOnArrival) session.creditConnection(chunk.length);
      this.close(H2Error.enhanceYourCalm);
      return false;
    }
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    return true;
  }

  /**
   * @internal What the current read gathered for this stream, as one chunk (one copy out of the
   * read buffer, one 'data'): to the reader, or to the front of the inbox when it stopped reading
   * meanwhile. Runs when the read is parsed, and before anything that must come after the data
   * (trailers, the end, a reset).
   */
  flushGathered(): void {
    const parts = this.gathered;
    if (parts === undefined) return;
    this.gathered = undefined;
    const n = this.gatheredBytes;
    this.gatheredBytes = 0;
    if (this.closed) {
      // Reset here meanwhile: never to be read, back to the connection window.
      if (!this.session.creditsOnArrival) this.session.creditConnection(n);
      return;
    }
    const chunk = ownedJoin(parts, n);
    if (this.paused || this.inbox.length > 0) {
      const session = this.session;
      if (!session.reserve(n)) {
        if (!session.creditsOnArrival) session.creditConnection(n);
        this.close(H2Error.enhanceYourCalm);
        return;
      }
      this.inbox.unshift(chunk);
      this.inboxBytes += n;
      return;
    }
    this.credit(n);
    this.emit("data", chunk);
  }

  /** @internal END_STREAM from the peer. */
  receiveEnd(): void {
    if (this.remoteEnded) return;
    if (this.gathered !== undefined) this.flushGathered();
    this.remoteEnded = true;
    if (this.flowing && !this.paused && this.inbox.length === 0) this.emitEnd();
    // An answer that ended in its HEADERS frame, with nobody reading, is over too.
    else if (!this.flowing) this.maybeClose();
  }

  private drainInbox(): void {
    if (this.gathered !== undefined) this.flushGathered();
    while (this.inbox.length > 0 && !this.paused && !this.closed) {
      const chunk = this.inbox.shift() as Buffer;
      this.inboxBytes -= chunk.length;
      this.session.release(chunk.length);
      this.credit(chunk.length);
      this.emit("data", chunk);
    }
    if (this.inbox.length === 0 && this.remoteEnded && !this.paused) this.emitEnd();
  }

  private emitEnd(): void {
    if (this.readableEnded) return;
    this.readableEnded = true;
    this.emit("end");
    this.maybeClose();
  }

  /** Consumed bytes go back to the peer's windows (in batches of half a window). */
  private credit(n: number): void {
    if (!this.session.creditsOnArrival) this.session.creditConnection(n);
    if (this.remoteEnded) return;
    this.unacked += n;
    if (this.unacked >= this.session.localInitialWindow >>> 1) {
      this.session.send(wordsFrame(FrameType.windowUpdate, 0, this.id, this.unacked));
      this.recvWindow += this.unacked;
      this.unacked = 0;
    }
  }

  /**
   * Stops 'data'. What the peer sends meanwhile waits in the stream, and is credited back to the
   * peer's windows only once `resume()` delivers it: a paused stream holds the peer back to its
   * window (and the connection to the connection window), the engine's receive-side flow control.
   */
  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.flowing = true;
    if (this.paused || this.inbox.length > 0 || this.remoteEnded) {
      this.paused = false;
      this.drainInbox();
    }
    return this;
  }

  // --- writing ---

  /** Response headers (server role). */
  respond(headers: OutgoingHttpHeaders, options?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    const list: HeaderList = [[":status", String(headers[":status"] ?? 200)]];
    toHeaderList(headers, list);
    const end = options?.endStream === true;
    this.waitForTrailers = options?.waitForTrailers === true && !end;
    this.session.sendHeaders(this.id, list, end);
    if (end) {
      this.writableEnded = true;
      this.endLocal();
    }
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed || this.localEnded || chunk.length === 0) return !this.closed;
    const buf = asBuffer(chunk);
    if (this.pendingBytes === 0 && this.opened) this.sendData(buf, false);
    else this.queue(buf);
    if (this.closed) return false;
    if (this.pendingBytes > 0 || this.session.blocked) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  end(chunk?: Uint8Array): this {
    if (this.closed || this.writableEnded) return this;
    this.writableEnded = true;
    this.endQueued = true;
    if (chunk !== undefined && chunk.length > 0) {
      const buf = asBuffer(chunk);
      if (this.pendingBytes > 0 || !this.opened) {
        // Goes out (and the end after it) when the windows open.
        this.queue(buf);
        return this;
      }
      // Without trailers the last DATA frame carries END_STREAM.
      if (!this.sendData(buf, !this.waitForTrailers) || !this.waitForTrailers) return this;
    }
    this.finishWriting();
    return this;
  }

  sendTrailers(headers: OutgoingHttpHeaders): void {
    if (this.closed || this.localEnded || this.trailersSent) return;
    this.trailersSent = true;
    this.session.sendHeaders(this.id, toHeaderList(headers), true);
    this.endLocal();
  }

  /** Resets the stream with RST_STREAM (default NO_ERROR). */
  close(code: number = H2Error.noError): void {
    if (this.closed) return;
    if (this.opened && !(this.localEnded && this.remoteEnded)) {
      this.resetHere = true;
      this.session.sendControl(wordsFrame(FrameType.rstStream, 0, this.id, code));
    }
    this.rstCode = code;
    this.destroyed = true;
    this.finalize();
  }

  /**
   * Sends as much of `buf` as the flow-control windows and the socket allow; queues the rest.
   * Answers true when all of it went out (with END_STREAM when `end`).
   */
  private sendData(buf: Buffer, end: boolean): boolean {
    const session = this.session;
    let offset = 0;
    while (offset < buf.length && session.writable()) {
      const allowed = Math.min(buf.length - offset, this.sendWindow, session.sendWindow, session.peerMaxFrame);
      if (allowed <= 0) break;
      const last = offset + allowed === buf.length;
      const header = Buffer.allocUnsafe(9);
      writeFrameHeader(header, 0, allowed, FrameType.data, last && end ? FrameFlag.endStream : 0, this.id);
      session.send(header);
      session.queuedData(this, header);
      session.send(offset === 0 && last ? buf : buf.subarray(offset, offset + allowed));
      this.sendWindow -= allowed;
      session.sendWindow -= allowed;
      offset += allowed;
    }
    if (offset === buf.length) {
      if (this.stalledSince !== 0) session.unstall(this);
      if (end) this.endLocal();
      return true;
    }
    const rest = buf.subarray(offset);
    if (!this.queue(rest, true)) return false;
    // Waits for a window (WINDOW_UPDATE) or for the socket to drain.
    session.starved ??= new Set();
    session.starved.add(this);
    if (offset > 0 || this.stalledSince === 0) session.stall(this);
    return false;
  }

  /**
   * Data that waits for the windows (or for the stream to open); `first` puts it before what waits.
   * Answers false when the buffer budget is spent: the stream is reset (ENHANCE_YOUR_CALM).
   */
  private queue(buf: Buffer, first = false): boolean {
    if (!this.session.reserve(buf.length)) {
      this.close(H2Error.enhanceYourCalm);
      return false;
    }
    if (first) this.pending.unshift(buf);
    else this.pending.push(buf);
    this.pendingBytes += buf.length;
    return true;
  }

  /** @internal The windows grew, the socket drained or the stream opened: sends what waits. */
  flushPending(): void {
    if (this.closed || !this.opened) return;
    while (this.pending.length > 0) {
      const chunk = this.pending.shift() as Buffer;
      this.pendingBytes -= chunk.length;
      this.session.release(chunk.length);
      if (!this.sendData(chunk, false)) return;
    }
    if (this.endQueued) this.finishWriting();
    this.maybeDrain();
  }

  /** @internal */
  maybeDrain(): void {
    if (this.wantDrain && this.pendingBytes === 0 && !this.session.blocked && !this.closed) {
      this.wantDrain = false;
      this.emit("drain");
    }
  }

  private finishWriting(): void {
    if (this.localEnded || this.pendingBytes > 0 || !this.opened || this.closed) return;
    if (this.waitForTrailers && !this.trailersSent) {
      // As with node:http2, a listener may send the trailers later (or close the stream).
      const listened = this.listenerCount("wantTrailers") > 0;
      this.emit("wantTrailers");
      if (this.trailersSent || this.closed || listened) return;
    }
    if (!this.session.endQueuedData(this)) this.session.send(frame(FrameType.data, FrameFlag.endStream, this.id));
    this.endLocal();
  }

  private endLocal(): void {
    if (this.localEnded) return;
    this.localEnded = true;
    this.maybeClose();
    this.session.flushAlone();
  }

  /** @internal */
  maybeClose(): void {
    if (this.closed) return;
    if (this.localEnded && this.remoteEnded && (this.readableEnded || !this.flowing)) {
      this.finalize();
    } else if (this.localEnded && !this.remoteEnded && this.session.isServer) {
      // The answer is complete, the request is not: over for the application; the stream stays
      // half-closed (local) until the client ends it, so what it still sends gets the RFC's answers.
      this.lingering = true;
      this.finalize();
    } else if (this.remoteEnded && this.readableEnded && !this.localEnded && !this.session.isServer && this.responded) {
      // The upstream answered in full while the request body was still going: nothing more to send.
      this.resetHere = true;
      this.session.send(wordsFrame(FrameType.rstStream, 0, this.id, H2Error.noError));
      this.finalize();
    }
  }

  /** @internal The stream is over: forget it and tell the listeners ('close') on the next tick. */
  finalize(announce = true): void {
    if (this.closed) return;
    this.closed = true;
    if (this.inboxBytes > 0) {
      // Never to be read: back to the connection window and the budgets.
      if (!this.session.creditsOnArrival) this.session.creditConnection(this.inboxBytes);
      this.session.release(this.inboxBytes);
    }
    if (this.pendingBytes > 0) this.session.release(this.pendingBytes);
    this.inbox.length = 0;
    this.inboxBytes = 0;
    this.pending.length = 0;
    this.pendingBytes = 0;
    if (this.stalledSince !== 0) this.session.unstall(this);
    this.session.forget(this);
    if (announce) announceClose(this);
  }

  /** @internal The peer reset the stream or the connection went away. */
  abort(code: number, error?: Error): void {
    if (this.closed) return;
    // What arrived before the reset is still delivered, as it was frame by frame.
    if (this.gathered !== undefined) this.flushGathered();
    if (this.closed) return;
    this.rstCode = code;
    this.destroyed = true;
    const unfinished = !(this.localEnded && this.remoteEnded);
    this.finalize(false);
    process.nextTick(() => {
      if (unfinished) this.emit("aborted");
      if (error !== undefined && this.listenerCount("error") > 0) this.emit("error", error);
      this.emit("close");
    });
  }
}

// Streams that gathered data during the read being parsed; emptied when it is (H2Session.receive).
// Reads are parsed one at a time, and a read's bytes stay valid until its parse is done.
let gathering: H2Stream[] = [];
/** Hands each stream what the read just parsed gathered for it (`flushGathered`). */
export function flushGathering(): void {
  if (gathering.length === 0) return;
  const streams = gathering;
  gathering = [];
  for (const stream of streams) stream.flushGathered();
}

// 'close' comes on the next tick, as with node:http2; one tick for all streams that ended together.
let closedStreams: H2Stream[] = [];
function announceClose(stream: H2Stream): void {
  if (closedStreams.push(stream) === 1) process.nextTick(emitCloses);
}
function emitCloses(): void {
  const streams = closedStreams;
  closedStreams = [];
  for (const stream of streams) stream.emit("close");
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
}

/** The error a stream's 'error' listeners get when the peer reset it with `code`. */
export function streamError(code: number): Error {
  return Object.assign(new Error(`stream closed with error code ${code}`), { code: "ERR_HTTP2_STREAM_ERROR" });
}
