import { EventEmitter } from "node:events";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import type * as net from "node:net";
import { type BufferBudget, processBufferBudget } from "./buffer-budget.js";
import { ClosedStreams } from "./closed-streams.js";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  FrameFlag,
  FrameType,
  frame,
  H2Error,
  MAX_WINDOW,
  SettingId,
  settingsFrame,
  wordsFrame,
} from "./frame.js";
import { flushGathering, H2Stream, streamError } from "./h2-stream.js";
import { toHeaderList, toHeaderObject } from "./header-object.js";
import { createHpackDecoder, createHpackEncoder, type HeaderList, HpackError } from "./hpack.js";
import { joinSmall } from "./join-small.js";
import { parseContentLength, requestHeadersProblem, responseHeadersProblem, trailersProblem } from "./request-headers.js";
import type { H2ServerOptions } from "./serve-h2.js";
import { ownedCopy, readIntoShared } from "./shared-read-buffer.js";
import { StreamTable } from "./stream-table.js";
import { TokenBucket } from "./token-bucket.js";
import { flushAtTurnEnd } from "./turn-end.js";

export interface H2Settings {
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS we allow the peer to open (server role; default 128, as Envoy's
   * and nghttp2's servers choose 100–256). Counts streams open or half-closed, never closed or
   * reset ones; a stream beyond it is refused with RST_STREAM REFUSED_STREAM.
   */
  maxConcurrentStreams?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: per-stream receive window (default 65 535). */
  initialWindowSize?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: bigger request headers are answered 431 (server) or reset (default 64 KiB). */
  maxHeaderListSize?: number;
}

export interface H2SessionOptions {
  settings?: H2Settings;
  /**
   * The connection-level receive window (default 8 MiB). Credited back as the application consumes
   * data (reads it from a stream, or the stream ends), not as it arrives: a peer can never park more
   * than this on one connection.
   */
  connectionWindowSize?: number;
  /**
   * The most bytes one connection may hold: data queued for writing plus data received and not yet
   * consumed (default 16 MiB, or twice the connection window when that is larger). A stream whose
   * write or receive would go over it is reset with RST_STREAM ENHANCE_YOUR_CALM.
   */
  maxConnectionBufferBytes?: number;
  /**
   * The budget shared with every other connection of the process (default `processBufferBudget`,
   * 128 MiB). A stream that would take it over its limit is reset with ENHANCE_YOUR_CALM.
   */
  bufferBudget?: BufferBudget;
}

/** One HTTP/2 connection, server or client role. */
export class H2Session extends EventEmitter {
  readonly socket: net.Socket;
  readonly isServer: boolean;
  closed = false;
  destroyed = false;
  /** @internal */ sendWindow = DEFAULT_WINDOW;
  /** @internal */ peerInitialWindow = DEFAULT_WINDOW;
  /** @internal */ peerMaxFrame = DEFAULT_MAX_FRAME;
  /** @internal */ localInitialWindow: number;
  /**
   * @internal How far below zero a stream's receive window may go: a peer may fill the default
   * window of 65 535 before it sees a smaller one in our SETTINGS.
   */
  recvSlack: number;
  /** @internal The socket's buffer is full. */ blocked = false;
  /** @internal When the socket stopped draining (0: it drains). */ blockedSince = 0;
  // The three collections below are made when a stream first needs one: most connections never
  // wait for a window, stall or linger, and an empty Set or Map costs ~150 B (~0.5 KB for the three
  // on every one of W5's 1,000 connections).
  /** @internal Streams waiting for connection window or for the socket to drain. */ starved: Set<H2Stream> | undefined;
  /** @internal Streams that cannot send what they queued, with `stalledSince` set. */ stalled: Set<H2Stream> | undefined;
  /** @internal Server role: streams answered in full whose request is still open, with when. */
  lingering: Map<H2Stream, number> | undefined;
  /** @internal Bytes this connection holds (queued to send, received and unread). */ buffered = 0;
  /**
   * Server role: why the connection was closed for breaching a limit (GOAWAY ENHANCE_YOUR_CALM, or a
   * socket that stopped draining); undefined while it has not been. The listener counts such
   * closes per client address.
   */
  abuse: string | undefined;
  /**
   * @internal Client role (upstream connections): the connection receive window is credited as DATA
   * arrives, only the stream windows as the application reads. One upstream connection carries many
   * callers' streams, and a caller that stops reading pauses its stream: crediting the connection
   * only on reads would let a few paused streams (a zero-window reader's) fill the shared
   * connection window and stall every other caller's answers behind them (Envoy's per-stream
   * buffer watermarks do the same). What a paused stream holds stays bounded by its stream window
   * and the buffer budgets. Server role: credited on reads, so a client can never park more than
   * the connection window.
   */
  readonly creditsOnArrival: boolean;
  private readonly streams = new StreamTable<H2Stream>();
  /**
   * Server role: requests whose HEADERS came in the read being parsed, handed to `onStream` once the
   * whole read is parsed, so a stream the client resets in the same read (rapid reset,
   * CVE-2023-44487: HEADERS and RST_STREAM in pairs) never reaches the application or an upstream.
   * What arrives for them meanwhile waits in the stream, as for any stream not yet read.
   */
  private readonly arrived: [H2Stream, IncomingHttpHeaders][] = [];
  private readonly decoder = createHpackDecoder();
  private readonly encoder = createHpackEncoder();
  private readonly maxHeaderListSize: number;
  private readonly maxConcurrentStreams: number;
  private readonly connectionWindow: number;
  private readonly maxBuffered: number;
  private readonly budget: BufferBudget;
  private readonly maxContinuations: number;
  private readonly maxControlQueued: number;
  private readonly resets: TokenBucket | undefined;
  private readonly settingsFrames: TokenBucket | undefined;
  private readonly closedStreams: ClosedStreams | undefined;
  /** One stream until the peer's first SETTINGS: a burst on a new connection must not exceed a limit not known yet. */
  private peerMaxConcurrent = 1;
  private peerSettingsSeen = false;
  /** The first frame after the preface must be SETTINGS (RFC 9113 §3.4). */
  private settingsFirst = true;
  private inbuf: Buffer | undefined;
  /**
   * A DATA frame cut by the end of a read is delivered in pieces as its bytes arrive (as nghttp2
   * does), not copied together once complete: `dataLeft` bytes of it are still to come, for
   * `dataStream` (undefined: dropped, and credited back when it started), END_STREAM when `dataEnd`.
   */
  private dataLeft = 0;
  private dataStream: H2Stream | undefined;
  private dataEnd = false;
  private prefaceNeeded: boolean;
  private out: Buffer[] = [];
  /** @internal */ outBytes = 0;
  // The header of the last DATA frame queued in `out`, and its stream: until the flush, END_STREAM
  // can still be set on it instead of following it in an empty DATA frame of its own.
  private lastDataStream: H2Stream | undefined;
  private lastDataHeader: Buffer | undefined;
  /** Control replies queued since the socket last drained. */
  private controlQueued = 0;
  /** The socket is paused: what was read cannot be answered yet. */
  private readPaused = false;
  /** Handed to `flushAtTurnEnd` and not yet flushed. */
  private queued = false;
  private connUnacked = 0;
  /** What is left of the connection receive window the peer may still fill. */
  private connRecvWindow: number;
  private nextStreamId = 1;
  private lastPeerStreamId = 0;
  private goawaySent = false;
  private waiting: H2Stream[] = [];
  /** A header block in CONTINUATION frames: its stream, flags, parts and count of CONTINUATION frames. */
  private continuation:
    | { id: number; flags: number; parts: Buffer[]; bytes: number; frames: number; selfDependent: boolean }
    | undefined;
  /** @internal When the current preface, frame header or header block started arriving (0: none is). */
  headerStartedAt = 0;
  /** @internal */ lastActive = Date.now();
  private readonly onStream: ((stream: H2Stream, headers: IncomingHttpHeaders) => void) | undefined;
  private readonly authority: string;
  /** The `:scheme` of the requests this session sends (client role). */
  readonly scheme: string;

  constructor(
    socket: net.Socket,
    isServer: boolean,
    options: H2SessionOptions & Partial<H2ServerOptions>,
    extra: { onStream?: H2ServerOptions["onStream"]; authority?: string; scheme?: string },
  ) {
    super();
    this.socket = socket;
    this.isServer = isServer;
    this.prefaceNeeded = isServer;
    this.creditsOnArrival = !isServer;
    this.onStream = extra.onStream;
    this.authority = extra.authority ?? "";
    this.scheme = extra.scheme ?? ("encrypted" in socket && socket.encrypted ? "https" : "http");
    const settings = options.settings ?? {};
    this.localInitialWindow = settings.initialWindowSize ?? DEFAULT_WINDOW;
    this.recvSlack = Math.min(0, this.localInitialWindow - DEFAULT_WINDOW);
    this.maxHeaderListSize = settings.maxHeaderListSize ?? 64 * 1024;
    this.maxConcurrentStreams = settings.maxConcurrentStreams ?? 128;
    this.connectionWindow = options.connectionWindowSize ?? 8 * 1024 * 1024;
    this.connRecvWindow = Math.max(this.connectionWindow, DEFAULT_WINDOW);
    // Room for a full connection window of unread data plus as much queued to send.
    this.maxBuffered = options.maxConnectionBufferBytes ?? Math.max(16 * 1024 * 1024, 2 * this.connectionWindow);
    this.budget = options.bufferBudget ?? processBufferBudget;
    this.maxContinuations = options.maxContinuationFrames ?? 16;
    this.maxControlQueued = options.maxQueuedControlFrames ?? 1000;
    if (isServer) {
      const resets = options.resetBudget ?? { burst: 100, perSecond: 10 };
      const settingsBudget = options.settingsBudget ?? { burst: 100, perSecond: 10 };
      this.resets = new TokenBucket(resets.burst, resets.perSecond);
      this.settingsFrames = new TokenBucket(settingsBudget.burst, settingsBudget.perSecond);
      this.closedStreams = new ClosedStreams();
      // The preface is timed like a header block.
      this.headerStartedAt = this.lastActive;
    }

    const initial: Array<readonly [number, number]> = [
      [SettingId.initialWindowSize, this.localInitialWindow],
      [SettingId.maxHeaderListSize, this.maxHeaderListSize],
    ];
    if (isServer) initial.unshift([SettingId.maxConcurrentStreams, this.maxConcurrentStreams]);
    else initial.unshift([SettingId.enablePush, 0]);
    if (!isServer) this.send(CLIENT_PREFACE);
    this.send(settingsFrame(initial));
    if (this.connectionWindow > DEFAULT_WINDOW) {
      this.send(wordsFrame(FrameType.windowUpdate, 0, 0, this.connectionWindow - DEFAULT_WINDOW));
    }

    // Bytes read before (a sniffed preface) and TLS sockets' reads come as 'data'; plain TCP sockets
    // read into the process's shared read buffer.
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    readIntoShared(socket, (bytes) => this.receive(bytes));
    socket.on("drain", () => this.onDrain());
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
    socket.on("end", () => this.destroy());
    // The dual listener paused it while it sniffed the preface.
    socket.resume();
  }

  // --- streams ---

  /**
   * Opens a request stream (client role). Throws when the session is closing or gone. Its receive
   * window is the session's SETTINGS_INITIAL_WINDOW_SIZE.
   */
  request(headers: OutgoingHttpHeaders, options?: { endStream?: boolean }): H2Stream {
    const list: HeaderList = [
      [":method", String(headers[":method"] ?? "GET")],
      [":scheme", String(headers[":scheme"] ?? this.scheme)],
      [":authority", String(headers[":authority"] ?? this.authority)],
      [":path", String(headers[":path"] ?? "/")],
    ];
    return this.requestFields(toHeaderList(headers, list), options);
  }

  /**
   * `request` with the header block given as the HPACK list to send: the pseudo-headers first, then
   * lowercase names without connection-specific fields (a proxy's request, built as a list).
   */
  requestFields(list: HeaderList, options?: { endStream?: boolean }): H2Stream {
    if (this.closed || this.destroyed) throw new Error("the HTTP/2 session is closed");
    const stream = new H2Stream(this, 0, false);
    stream.queuedHeaders = list;
    if (options?.endStream === true) {
      stream.writableEnded = true;
      stream.localEnded = true;
    }
    if (this.streams.size >= this.peerMaxConcurrent) this.waiting.push(stream);
    else this.open(stream);
    return stream;
  }

  private open(stream: H2Stream): void {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    stream.id = id;
    stream.opened = true;
    stream.sendWindow = this.peerInitialWindow;
    this.streams.set(id, stream);
    this.sendHeaders(id, stream.queuedHeaders as HeaderList, stream.localEnded);
    stream.queuedHeaders = undefined;
    stream.flushPending();
    // Stream ids run out after 2^30 requests: a new connection takes over.
    if (this.nextStreamId > 0x7ffffff0) this.close();
  }

  /** @internal */
  forget(stream: H2Stream): void {
    this.starved?.delete(stream);
    if (stream.lingering && !this.closed) {
      this.lingering ??= new Map();
      this.lingering.set(stream, this.lastActive);
      return;
    }
    if (stream.opened) {
      this.streams.delete(stream.id);
      this.closedStreams?.add(stream.id, stream.resetHere);
    } else this.waiting = this.waiting.filter((s) => s !== stream);
    if (stream.lingering) {
      this.lingering?.delete(stream);
      if (!stream.remoteEnded && !stream.resetHere) this.resetLingering(stream, H2Error.noError);
    }
    while (this.waiting.length > 0 && this.streams.size < this.peerMaxConcurrent) {
      this.open(this.waiting.shift() as H2Stream);
    }
    if (this.closed && this.streams.size === 0 && this.waiting.length === 0) this.finishClose();
  }

  /** @internal A lingering stream is over: the client ended it (`code` undefined) or it gets RST_STREAM `code`. */
  endLingering(stream: H2Stream, code?: number): void {
    if (code !== undefined) this.resetLingering(stream, code);
    else stream.remoteEnded = true;
    stream.lingering = false;
    this.lingering?.delete(stream);
    this.streams.delete(stream.id);
    this.closedStreams?.add(stream.id, stream.resetHere);
    if (this.closed && this.streams.size === 0 && this.waiting.length === 0) this.finishClose();
  }

  private resetLingering(stream: H2Stream, code: number): void {
    stream.resetHere = true;
    this.sendControl(wordsFrame(FrameType.rstStream, 0, stream.id, code));
  }

  /** A stream error: RST_STREAM `code`, whether the application still has the stream or not. */
  private resetStream(stream: H2Stream, code: number): void {
    if (stream.lingering) this.endLingering(stream, code);
    else stream.close(code);
  }

  /** @internal Holds `bytes` in this connection's and the process's budgets; false when either is spent. */
  reserve(bytes: number): boolean {
    if (this.buffered + bytes > this.maxBuffered || !this.budget.tryReserve(bytes)) return false;
    this.buffered += bytes;
    return true;
  }

  /** @internal */
  release(bytes: number): void {
    this.buffered -= bytes;
    this.budget.release(bytes);
  }

  /** @internal Consumed (or discarded) bytes go back to the connection window, in batches of half of it. */
  creditConnection(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked >= this.connectionWindow >>> 1) {
      this.send(wordsFrame(FrameType.windowUpdate, 0, 0, this.connUnacked));
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  /** @internal The stream cannot send what it queued (from now). */
  stall(stream: H2Stream): void {
    stream.stalledSince = Date.now();
    this.stalled ??= new Set();
    this.stalled.add(stream);
  }

  /** @internal */
  unstall(stream: H2Stream): void {
    stream.stalledSince = 0;
    this.stalled?.delete(stream);
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Client role: a new request would start at once rather than wait for the peer's concurrency
   * limit. True until the peer's first SETTINGS: its limit is not known yet.
   */
  get hasCapacity(): boolean {
    return !this.peerSettingsSeen || this.streams.size + this.waiting.length < this.peerMaxConcurrent;
  }

  /**
   * Client role: a request body started here now would wait, because the peer's connection window
   * is (nearly) spent or the socket does not drain. Peers with the default 64 KiB connection window
   * (node:http2's servers, connect-node) let one connection carry one 64 KiB body per round trip of
   * their window updates, whatever the number of streams.
   */
  get congested(): boolean {
    return this.blocked || this.sendWindow < DEFAULT_MAX_FRAME;
  }

  // --- sending ---

  /** @internal Queues bytes; everything queued in this event-loop turn goes out in one write. */
  send(buf: Buffer): void {
    if (this.destroyed) return;
    this.out.push(buf);
    this.outBytes += buf.length;
    if (!this.queued) {
      this.queued = true;
      flushAtTurnEnd(this);
    }
  }

  /** @internal `header` (in `out`) starts a DATA frame of `stream`. */
  queuedData(stream: H2Stream, header: Buffer): void {
    this.lastDataStream = stream;
    this.lastDataHeader = header;
  }

  /**
   * @internal Ends `stream` on its DATA frame that is the last one queued and not yet written (no
   * other stream's DATA after it, no flush since): a request whose body and end arrive together goes
   * upstream as HEADERS and one DATA frame with END_STREAM, as the caller sent it, instead of
   * HEADERS, DATA and an empty DATA frame. Answers whether it did.
   */
  endQueuedData(stream: H2Stream): boolean {
    const header = this.lastDataHeader;
    if (this.lastDataStream !== stream || header === undefined) return false;
    header[4] = (header[4] as number) | FrameFlag.endStream;
    this.lastDataStream = undefined;
    this.lastDataHeader = undefined;
    return true;
  }

  /**
   * @internal A control reply (PING or SETTINGS ack, RST_STREAM). A peer that makes us queue too many
   * while it does not read (a flood) gets GOAWAY ENHANCE_YOUR_CALM.
   */
  sendControl(buf: Buffer): void {
    if (++this.controlQueued > this.maxControlQueued && this.isServer) {
      this.calm("too many control frames queued (the peer does not read)");
      return;
    }
    this.send(buf);
  }

  /**
   * @internal A stream ended its side (server role). With no other stream open on the connection
   * there is nothing for its answer to share a write with, so it goes out now instead of at the end
   * of the event-loop turn: one call at a time no longer waits for the rest of the turn (the other
   * callbacks, ticks and microtasks) between its last frame and the socket. Answers on a connection
   * with several streams still go out together once per turn, and so do requests (client role): the
   * pooled upstream connection carries many callers' requests, and writing each alone there added
   * about 5 % more writes per call under W1.
   */
  flushAlone(): void {
    if (!this.isServer || this.blocked || !this.queued) return;
    if (this.streams.size - (this.lingering?.size ?? 0) <= 0) this.flush();
  }

  /** @internal DATA may be queued now: the socket drains and this turn has not queued much yet. */
  writable(): boolean {
    return !this.blocked && this.outBytes < 262_144;
  }

  /** @internal */
  flush(): void {
    this.queued = false;
    this.lastDataStream = undefined;
    this.lastDataHeader = undefined;
    const out = this.out;
    if (out.length === 0 || this.destroyed) return;
    this.out = [];
    const bytes = this.outBytes;
    this.outBytes = 0;
    const socket = this.socket;
    if (out.length === 1) socket.write(out[0] as Buffer);
    else {
      const chunks = joinSmall(out, bytes);
      if (chunks.length === 1) socket.write(chunks[0] as Buffer);
      else {
        // One writev(2).
        socket.cork();
        for (const b of chunks) socket.write(b);
        socket.uncork();
      }
    }
    // Emptied, not just dropped: a connection that calls now and then keeps its queue array long enough
    // for it to reach the old generation, and a dead array there still holding this turn's frames would
    // keep them through the scavenges until the next mark-compact (W5's 1,000 connections: most of
    // every call's objects, ~9 MB more at W5's peak).
    out.length = 0;
    // Blocked only when the kernel did not take it all: a write over the socket's high-water mark
    // that completed at once still reports "wait for drain" until the next tick, and taking that for
    // a full socket cost every large answer a stop and a restart of reading (two epoll_ctl calls).
    const ok = socket.writableLength === 0 || !socket.writableNeedDrain;
    if (!ok) {
      if (!this.blocked) {
        this.blocked = true;
        this.blockedSince = Date.now();
        // No reading while the socket cannot be written: a peer that does not read cannot make us queue replies.
        this.pauseReading();
      }
    } else {
      this.controlQueued = 0;
      if (this.readPaused) this.resumeReading();
      if (this.starved !== undefined && this.starved.size > 0) this.flushStarved();
    }
  }

  /** Server role: reads stop while what was read cannot be answered (resumed on 'drain' or after a flush). */
  private pauseReading(): void {
    if (!this.isServer || this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  private resumeReading(): void {
    this.readPaused = false;
    if (!this.destroyed) this.socket.resume();
  }

  private onDrain(): void {
    this.blocked = false;
    this.blockedSince = 0;
    this.controlQueued = 0;
    if (this.readPaused) this.resumeReading();
    if (this.starved !== undefined && this.starved.size > 0) this.flushStarved();
    for (const stream of this.streams.values()) stream.maybeDrain();
  }

  private flushStarved(): void {
    const starved = [...(this.starved ?? [])];
    this.starved?.clear();
    for (const stream of starved) stream.flushPending();
  }

  /** @internal HEADERS (and CONTINUATION when the block is bigger than a frame). */
  sendHeaders(id: number, list: HeaderList, endStream: boolean): void {
    const block = this.encoder.encode(list);
    const max = this.peerMaxFrame;
    const flags = endStream ? FrameFlag.endStream : 0;
    if (block.length <= max) {
      this.send(frame(FrameType.headers, flags | FrameFlag.endHeaders, id, block));
      return;
    }
    for (let offset = 0; offset < block.length; offset += max) {
      const part = block.subarray(offset, offset + max);
      const last = offset + max >= block.length;
      const type = offset === 0 ? FrameType.headers : FrameType.continuation;
      this.send(frame(type, (offset === 0 ? flags : 0) | (last ? FrameFlag.endHeaders : 0), id, part));
    }
  }

  // --- receiving ---

  private receive(chunk: Buffer) {
    this.receiveFrames(chunk);
    flushGathering();
  }

  private receiveFrames(chunk: Buffer) {
    if (this.destroyed) return;
    this.lastActive = Date.now();
    let buf = chunk;
    let off = 0;
    const pending = this.inbuf;
    if (pending !== undefined && !this.prefaceNeeded) {
      // A frame was cut at the end of the last read: complete it with only the bytes it lacks, so a
      // large body is not copied read after read (a 64 KiB read holds several 16 KiB DATA frames).
      let need = 9 - pending.length;
      let header: Buffer | undefined;
      if (need <= 0) need = 9 + frameLength(pending, 0) - pending.length;
      else if (chunk.length >= need) {
        header = Buffer.concat([pending, chunk.subarray(0, need)]);
        if (!this.splitsData(header, 0)) {
          need += frameLength(header, 0);
          header = undefined;
        }
      }
      const take = Math.min(need, chunk.length);
      buf = header ?? Buffer.concat([pending, chunk.subarray(0, take)]);
      if (header !== undefined) {
        // The header of a DATA frame: its payload is delivered from this read in place.
        this.inbuf = undefined;
        if (this.parseFrames(header, 0) < 0) return;
        buf = chunk;
        off = need;
      } else if (take === need) {
        // Exactly one frame: parse it, then the rest of the read in place.
        if (this.parseFrames(buf, 0) < 0) return;
        buf = chunk;
        off = take;
      }
    } else if (pending !== undefined) {
      buf = Buffer.concat([pending, chunk]);
    }
    if (this.prefaceNeeded) {
      const n = Math.min(buf.length, CLIENT_PREFACE.length);
      if (buf.compare(CLIENT_PREFACE, 0, n, 0, n) !== 0) return this.fail(H2Error.protocolError, "invalid connection preface");
      if (buf.length < CLIENT_PREFACE.length) {
        this.inbuf = ownedCopy(buf);
        return;
      }
      this.prefaceNeeded = false;
      off = CLIENT_PREFACE.length;
    }
    const len = buf.length;
    off = this.parseFrames(buf, off);
    if (off < 0) return;
    this.dispatchArrived();
    // Several reads may come in one event-loop turn: replies piling up in it pause reading until they are written.
    if (this.outBytes > 262_144) this.pauseReading();
    if (off < len) {
      this.inbuf = ownedCopy(buf.subarray(off));
      // The header timer runs from the first byte of a frame header until the frame's type is known,
      // and on while a header block is incomplete: a partial HEADERS/CONTINUATION frame (timed from its
      // first bytes) or CONTINUATION frames to come (timed by onHeaders). Not on a partial DATA frame.
      if (this.continuation === undefined) {
        const type = len - off >= 4 ? buf[off + 3] : -1;
        if (type === -1 || type === FrameType.headers || type === FrameType.continuation) {
          if (off > 0 || this.headerStartedAt === 0) this.headerStartedAt = this.lastActive;
        } else this.headerStartedAt = 0;
      }
    } else {
      this.inbuf = undefined;
      if (this.continuation === undefined) this.headerStartedAt = 0;
    }
  }

  /** Parses the whole frames of `buf` from `off`; answers where the unparsed rest begins, or -1 when the session ended. */
  private parseFrames(buf: Buffer, off: number): number {
    const len = buf.length;
    if (this.dataLeft > 0 && off < len) {
      const take = Math.min(this.dataLeft, len - off);
      this.dataLeft -= take;
      this.onDataPiece(buf.subarray(off, off + take));
      if (this.destroyed) {
        this.arrived.length = 0;
        return -1;
      }
      off += take;
    }
    while (len - off >= 9) {
      const length = frameLength(buf, off);
      if (length > DEFAULT_MAX_FRAME) {
        this.arrived.length = 0;
        this.fail(H2Error.frameSizeError, `frame of ${length} bytes`);
        return -1;
      }
      if (len - off < 9 + length) {
        if (!this.splitsData(buf, off)) break;
        // A DATA frame cut by the end of the read: what arrived goes to its stream now, the rest as it comes.
        this.startData(buf[off + 4] as number, buf.readUInt32BE(off + 5) & 0x7fffffff, length);
        if (!this.destroyed && len - off > 9) {
          this.dataLeft -= len - off - 9;
          this.onDataPiece(buf.subarray(off + 9));
        }
        if (this.destroyed) {
          this.arrived.length = 0;
          return -1;
        }
        return len;
      }
      const type = buf[off + 3] as number;
      const flags = buf[off + 4] as number;
      const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + 9, off + 9 + length);
      off += 9 + length;
      this.onFrame(type, flags, id, payload);
      if (this.destroyed) {
        this.arrived.length = 0;
        return -1;
      }
    }
    return off;
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer) {
    if (this.continuation !== undefined && (type !== FrameType.continuation || id !== this.continuation.id)) {
      return this.fail(H2Error.protocolError, "expected CONTINUATION");
    }
    if (this.settingsFirst) {
      if (type !== FrameType.settings || (flags & FrameFlag.ack) !== 0) {
        return this.fail(H2Error.protocolError, "the first frame is not SETTINGS");
      }
      this.settingsFirst = false;
    }
    switch (type) {
      case FrameType.data:
        return this.onData(flags, id, payload);
      case FrameType.headers:
        return this.onHeaders(flags, id, payload);
      case FrameType.continuation:
        return this.onContinuation(flags, payload);
      case FrameType.priority:
        return this.onPriority(id, payload);
      case FrameType.rstStream:
        return this.onRstStream(id, payload);
      case FrameType.settings:
        return this.onSettings(flags, id, payload);
      case FrameType.ping:
        if (id !== 0) return this.fail(H2Error.protocolError, "PING on a stream");
        if (payload.length !== 8) return this.fail(H2Error.frameSizeError, "bad PING");
        if ((flags & FrameFlag.ack) === 0) this.sendControl(frame(FrameType.ping, FrameFlag.ack, 0, payload));
        return;
      case FrameType.goaway:
        if (id !== 0) return this.fail(H2Error.protocolError, "GOAWAY on a stream");
        return this.onGoaway(payload);
      case FrameType.windowUpdate:
        return this.onWindowUpdate(id, payload);
      case FrameType.pushPromise:
        return this.fail(H2Error.protocolError, "PUSH_PROMISE is not accepted");
      default:
        // Unknown frame types are ignored.
        return;
    }
  }

  /** A stream this side has not used yet (RFC 9113 §5.1 "idle"); frames other than HEADERS and PRIORITY on it are connection errors. */
  private isIdle(id: number): boolean {
    if (this.isServer) return (id & 1) === 0 || id > this.lastPeerStreamId;
    return (id & 1) === 0 || id >= this.nextStreamId;
  }

  private onData(flags: number, id: number, payload: Buffer) {
    if (id === 0) return this.fail(H2Error.protocolError, "DATA on stream 0");
    const length = payload.length;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) return this.fail(H2Error.flowControlError, "DATA beyond the connection window");
    let data = payload;
    if ((flags & FrameFlag.padded) !== 0) {
      const pad = length === 0 ? 0 : (payload[0] as number);
      if (length === 0 || pad >= length) return this.fail(H2Error.protocolError, "bad padding");
      data = payload.subarray(1, length - pad);
    }
    const end = (flags & FrameFlag.endStream) !== 0;
    const stream = this.acceptData(id, length, data.length, end);
    if (stream === undefined || !stream.receive(data, length)) return;
    if (end) stream.receiveEnd();
  }

  /** Whether the frame at `off` is a DATA frame that may be delivered in pieces (not padded, and no other frame is due first). */
  private splitsData(buf: Buffer, off: number): boolean {
    return (
      buf[off + 3] === FrameType.data &&
      ((buf[off + 4] as number) & FrameFlag.padded) === 0 &&
      this.continuation === undefined &&
      !this.settingsFirst &&
      frameLength(buf, off) > 0 &&
      (buf.readUInt32BE(off + 5) & 0x7fffffff) !== 0
    );
  }

  /** The header of a DATA frame whose `length` bytes come in pieces: checked and counted whole, as `onData` does. */
  private startData(flags: number, id: number, length: number): void {
    this.dataLeft = length;
    this.dataStream = undefined;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) {
      this.fail(H2Error.flowControlError, "DATA beyond the connection window");
      return;
    }
    const end = (flags & FrameFlag.endStream) !== 0;
    this.dataEnd = end;
    const stream = this.acceptData(id, length, length, end);
    if (stream?.admit(length)) this.dataStream = stream;
  }

  /** A piece of the DATA frame `startData` began; the last one when `dataLeft` is 0. */
  private onDataPiece(piece: Buffer): void {
    const stream = this.dataStream;
    if (stream === undefined) return;
    const last = this.dataLeft === 0;
    if (last) this.dataStream = undefined;
    if (stream.lingering) {
      // The answer completed meanwhile: the rest of the request is dropped.
      this.creditConnection(piece.length);
      if (last && this.dataEnd) this.endLingering(stream);
      return;
    }
    if (stream.closed) {
      // Reset meanwhile: what it will never read goes back to the connection window.
      if (!this.creditsOnArrival) this.creditConnection(piece.length);
      return;
    }
    if (stream.deliver(piece) && last && this.dataEnd) stream.receiveEnd();
  }

  /**
   * The checks of a DATA frame of `length` bytes (`dataLength` without padding) on stream `id`:
   * the stream to deliver it to, or undefined when it is dropped (credited back to the connection
   * window), the stream reset or the connection failed for it.
   */
  private acceptData(id: number, length: number, dataLength: number, end: boolean): H2Stream | undefined {
    const stream = this.streams.get(id);
    if (stream === undefined) {
      this.creditConnection(length);
      if (this.isIdle(id)) this.fail(H2Error.protocolError, "DATA on an idle stream");
      else if (this.closedStreams?.find(id) === "closed") this.fail(H2Error.streamClosed, "DATA on a closed stream");
      return undefined;
    }
    if (stream.remoteEnded) {
      this.creditConnection(length);
      if (this.isServer) this.resetStream(stream, H2Error.streamClosed);
      return undefined;
    }
    if (stream.expectedLength >= 0) {
      stream.receivedLength += dataLength;
      const received = stream.receivedLength;
      if (received > stream.expectedLength || (end && received !== stream.expectedLength)) {
        this.creditConnection(length);
        this.resetStream(stream, H2Error.protocolError);
        return undefined;
      }
    }
    if (stream.lingering) {
      // Answered already: the rest of the request is dropped (and the sweep resets the stream
      // if the client does not end it soon).
      this.creditConnection(length);
      if (end) this.endLingering(stream);
      return undefined;
    }
    return stream;
  }

  private onHeaders(flags: number, id: number, payload: Buffer) {
    if (id === 0) return this.fail(H2Error.protocolError, "HEADERS on stream 0");
    let start = 0;
    let end = payload.length;
    if ((flags & FrameFlag.padded) !== 0) {
      if (end === 0) return this.fail(H2Error.protocolError, "bad HEADERS padding");
      start = 1;
      end -= payload[0] as number;
    }
    let selfDependent = false;
    if ((flags & FrameFlag.priority) !== 0) {
      if (start + 5 > end) return this.fail(H2Error.protocolError, "bad HEADERS priority");
      selfDependent = (payload.readUInt32BE(start) & 0x7fffffff) === id;
      start += 5;
    }
    if (start > end) return this.fail(H2Error.protocolError, "bad HEADERS padding");
    const block = payload.subarray(start, end);
    if ((flags & FrameFlag.endHeaders) === 0) {
      this.continuation = { id, flags, parts: [Buffer.from(block)], bytes: block.length, frames: 0, selfDependent };
      if (this.headerStartedAt === 0) this.headerStartedAt = this.lastActive;
      return;
    }
    this.onHeaderBlock(id, flags, block, selfDependent);
  }

  private onContinuation(flags: number, payload: Buffer) {
    const c = this.continuation;
    if (c === undefined) return this.fail(H2Error.protocolError, "unexpected CONTINUATION");
    // Counted even when empty: a stream of empty CONTINUATION frames costs a frame each.
    if (++c.frames > this.maxContinuations && this.isServer) return this.calm("too many CONTINUATION frames");
    c.parts.push(ownedCopy(payload));
    c.bytes += payload.length;
    if (c.bytes > this.maxHeaderListSize * 4 + 65_536) return this.calm("header block too large");
    if ((flags & FrameFlag.endHeaders) === 0) return;
    this.continuation = undefined;
    this.headerStartedAt = 0;
    return this.onHeaderBlock(c.id, c.flags, Buffer.concat(c.parts, c.bytes), c.selfDependent);
  }

  private onPriority(id: number, payload: Buffer) {
    if (id === 0) return this.fail(H2Error.protocolError, "PRIORITY on stream 0");
    if (payload.length !== 5) return this.resetId(id, H2Error.frameSizeError);
    if ((payload.readUInt32BE(0) & 0x7fffffff) === id) return this.resetId(id, H2Error.protocolError);
    // Priorities are otherwise ignored (RFC 9113 §5.3.2).
  }

  /** A stream error on `id`, whether the stream is known or not. */
  private resetId(id: number, code: number): void {
    const stream = this.streams.get(id);
    if (stream !== undefined) this.resetStream(stream, code);
    else this.sendControl(wordsFrame(FrameType.rstStream, 0, id, code));
  }

  private onRstStream(id: number, payload: Buffer) {
    if (id === 0) return this.fail(H2Error.protocolError, "RST_STREAM on stream 0");
    if (payload.length !== 4) return this.fail(H2Error.frameSizeError, "bad RST_STREAM");
    if (this.isIdle(id)) return this.fail(H2Error.protocolError, "RST_STREAM on an idle stream");
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    if (stream.lingering) return this.endLingering(stream);
    // A stream still being served, cancelled by the client: each costs an upstream call (rapid reset).
    if (this.resets !== undefined && !this.goawaySent && !this.resets.take(this.lastActive)) {
      return this.calm("too many streams reset by the client");
    }
    const code = payload.readUInt32BE(0);
    stream.abort(code, code === H2Error.noError || code === H2Error.cancel ? undefined : streamError(code));
  }

  private onHeaderBlock(id: number, flags: number, block: Buffer, selfDependent: boolean) {
    let list: HeaderList;
    let tooLarge = false;
    try {
      list = this.decoder.decode(block, this.maxHeaderListSize);
    } catch (error) {
      if (!(error instanceof HpackError) || !error.tooLarge) {
        return this.fail(H2Error.compressionError, (error as Error).message);
      }
      tooLarge = true;
      list = [];
    }
    const endStream = (flags & FrameFlag.endStream) !== 0;
    const existing = this.streams.get(id);
    if (this.isServer) return this.onRequestHeaders(id, existing, list, endStream, tooLarge, selfDependent);
    // Client role: a response, then maybe trailers.
    if (existing === undefined) {
      if (this.isIdle(id)) return this.fail(H2Error.protocolError, `HEADERS on idle stream ${id}`);
      return;
    }
    if (tooLarge) {
      existing.resetHere = true;
      this.send(wordsFrame(FrameType.rstStream, 0, id, H2Error.protocolError));
      existing.abort(H2Error.protocolError, new Error("upstream response headers too large"));
      return;
    }
    const problem = responseHeadersProblem(list, existing.responded);
    if (problem !== undefined) {
      existing.resetHere = true;
      this.send(wordsFrame(FrameType.rstStream, 0, id, H2Error.protocolError));
      existing.abort(H2Error.protocolError, new Error(`malformed upstream response: ${problem}`));
      return;
    }
    const headers = toHeaderObject(list);
    existing.flushGathered();
    if (!existing.responded) {
      const status = headers[":status"] as unknown as number;
      if (status >= 100 && status < 200) return;
      existing.responded = true;
      existing.emit("response", headers, flags);
    } else {
      existing.emit("trailers", headers, flags);
    }
    if (endStream) existing.receiveEnd();
  }

  private onRequestHeaders(
    id: number,
    existing: H2Stream | undefined,
    list: HeaderList,
    endStream: boolean,
    tooLarge: boolean,
    selfDependent: boolean,
  ) {
    if (existing !== undefined) {
      // Trailers of a request: they must end it, carry no pseudo-headers, and only the end matters.
      if (existing.remoteEnded) return this.resetStream(existing, H2Error.streamClosed);
      if (!endStream || selfDependent || trailersProblem(list) !== undefined) {
        return this.resetStream(existing, H2Error.protocolError);
      }
      if (existing.lingering) return this.endLingering(existing);
      if (existing.expectedLength >= 0 && existing.receivedLength !== existing.expectedLength) {
        return existing.close(H2Error.protocolError);
      }
      existing.receiveEnd();
      return;
    }
    if ((id & 1) === 0) return this.fail(H2Error.protocolError, `HEADERS on stream ${id}`);
    if (id <= this.lastPeerStreamId) {
      const closed = this.closedStreams?.find(id);
      // Trailers of a stream this side reset: the client sent them before it saw the reset.
      if (closed === "reset-here") return;
      if (closed === "closed") return this.fail(H2Error.streamClosed, `HEADERS on closed stream ${id}`);
      return this.fail(H2Error.protocolError, `HEADERS on stream ${id}, below a stream opened before`);
    }
    this.lastPeerStreamId = id;
    if (this.goawaySent) return;
    if (selfDependent || (!tooLarge && requestHeadersProblem(list) !== undefined)) {
      return this.refuse(id, H2Error.protocolError);
    }
    if (this.streams.size >= this.maxConcurrentStreams) return this.refuse(id, H2Error.refusedStream);
    const stream = new H2Stream(this, id, true);
    this.streams.set(id, stream);
    if (tooLarge) {
      stream.respond({ ":status": 431 }, { endStream: true });
      return;
    }
    // Validated above: no uppercase names.
    const headers = toHeaderObject(list, false);
    const contentLength = headers["content-length"];
    if (contentLength !== undefined) {
      stream.expectedLength = parseContentLength(contentLength);
      if (stream.expectedLength < 0 || (endStream && stream.expectedLength !== 0)) return stream.close(H2Error.protocolError);
    }
    if (endStream) stream.receiveEnd();
    this.arrived.push([stream, headers]);
  }

  /** Hands the requests of the read just parsed to the application, but those already reset. */
  private dispatchArrived(): void {
    const arrived = this.arrived;
    if (arrived.length === 0) return;
    for (let i = 0; i < arrived.length; i++) {
      const [stream, headers] = arrived[i] as [H2Stream, IncomingHttpHeaders];
      if (!stream.closed && !this.destroyed) this.onStream?.(stream, headers);
    }
    arrived.length = 0;
  }

  /**
   * A new stream answered with RST_STREAM `code` before the application sees it. It spends the
   * reset budget too: a client that keeps opening streams it must know are refused or malformed churns.
   */
  private refuse(id: number, code: number): void {
    if (this.resets !== undefined && !this.resets.take(this.lastActive)) {
      this.calm("too many streams refused");
      return;
    }
    this.sendControl(wordsFrame(FrameType.rstStream, 0, id, code));
    this.closedStreams?.add(id, true);
  }

  private onSettings(flags: number, id: number, payload: Buffer) {
    if (id !== 0) return this.fail(H2Error.protocolError, "SETTINGS on a stream");
    if ((flags & FrameFlag.ack) !== 0) {
      if (payload.length !== 0) return this.fail(H2Error.frameSizeError, "SETTINGS ack with a payload");
      return;
    }
    if (payload.length % 6 !== 0) return this.fail(H2Error.frameSizeError, "bad SETTINGS");
    if (payload.length > 6 * 32) return this.calm("SETTINGS with more than 32 entries");
    if (this.settingsFrames !== undefined && !this.settingsFrames.take(this.lastActive)) {
      return this.calm("too many SETTINGS frames");
    }
    if (!this.peerSettingsSeen) {
      // Unlimited unless the first SETTINGS says otherwise.
      this.peerSettingsSeen = true;
      this.peerMaxConcurrent = Number.POSITIVE_INFINITY;
    }
    let grown = false;
    for (let i = 0; i < payload.length; i += 6) {
      const key = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      if (key === SettingId.headerTableSize) this.encoder.setMaxTableSize(Math.min(value, 4096));
      else if (key === SettingId.enablePush) {
        if (value > 1) return this.fail(H2Error.protocolError, "bad ENABLE_PUSH");
      } else if (key === SettingId.maxConcurrentStreams) this.peerMaxConcurrent = value;
      else if (key === SettingId.initialWindowSize) {
        if (value > MAX_WINDOW) return this.fail(H2Error.flowControlError, "initial window too large");
        const delta = value - this.peerInitialWindow;
        if (delta === 0) continue;
        // Only a change walks the streams: a SETTINGS frame costs the same with 1 stream or 1 000.
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) return this.fail(H2Error.flowControlError, "a stream window over 2^31-1");
        }
        if (delta > 0) grown = true;
      } else if (key === SettingId.maxFrameSize) {
        if (value < DEFAULT_MAX_FRAME || value > 16_777_215) return this.fail(H2Error.protocolError, "bad max frame size");
        const max = Math.min(value, 65_536);
        if (max > this.peerMaxFrame) grown = true;
        this.peerMaxFrame = max;
      }
    }
    this.sendControl(settingsFrame([], true));
    if (this.destroyed) return;
    if (!this.isServer) {
      while (this.waiting.length > 0 && this.streams.size < this.peerMaxConcurrent) this.open(this.waiting.shift() as H2Stream);
      this.emit("remoteSettings");
    }
    if (grown) for (const stream of this.streams.values()) stream.flushPending();
  }

  private onWindowUpdate(id: number, payload: Buffer) {
    if (payload.length !== 4) return this.fail(H2Error.frameSizeError, "bad WINDOW_UPDATE");
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) return this.fail(H2Error.protocolError, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) return this.fail(H2Error.flowControlError, "window overflow");
      if (this.starved !== undefined && this.starved.size > 0) this.flushStarved();
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (this.isIdle(id)) return this.fail(H2Error.protocolError, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) return this.resetStream(stream, H2Error.protocolError);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, H2Error.flowControlError);
    if (!stream.lingering) stream.flushPending();
  }

  private onGoaway(payload: Buffer) {
    if (payload.length < 8) return this.fail(H2Error.frameSizeError, "bad GOAWAY");
    const lastStreamId = payload.readUInt32BE(0) & 0x7fffffff;
    const code = payload.readUInt32BE(4);
    const wasClosed = this.closed;
    this.closed = true;
    if (!this.isServer) {
      // Requests the peer never saw may go elsewhere: they end as refused.
      for (const stream of this.streams.values()) {
        if (stream.id > lastStreamId) stream.abort(H2Error.refusedStream, streamError(H2Error.refusedStream));
      }
      for (const stream of this.waiting.splice(0)) stream.abort(H2Error.refusedStream, streamError(H2Error.refusedStream));
    } else {
      for (const stream of [...(this.lingering?.keys() ?? [])]) this.endLingering(stream, H2Error.noError);
    }
    if (!wasClosed) this.emit("goaway", code, lastStreamId);
    if (this.streams.size === 0) this.finishClose();
  }

  // --- ending ---

  private highestStreamId(): number {
    return this.isServer ? this.lastPeerStreamId : this.nextStreamId - 2;
  }

  /** A connection error: GOAWAY with `code`, then the socket closes. */
  private fail(code: number, why: string): void {
    if (this.destroyed) return;
    this.send(wordsFrame(FrameType.goaway, 0, 0, this.highestStreamId(), code));
    this.destroy(new Error(`HTTP/2 connection error ${code}: ${why}`), true);
  }

  /** A peer over one of the limits: GOAWAY ENHANCE_YOUR_CALM, and the connection closes. */
  private calm(why: string): void {
    this.abuse ??= why;
    this.fail(H2Error.enhanceYourCalm, why);
  }

  /** Graceful: GOAWAY, no new streams; the connection closes once the last stream is done. */
  close(): void {
    if (this.destroyed) return;
    if (!this.goawaySent) {
      this.goawaySent = true;
      this.send(wordsFrame(FrameType.goaway, 0, 0, this.isServer ? this.lastPeerStreamId : 0, H2Error.noError));
    }
    this.closed = true;
    for (const stream of [...(this.lingering?.keys() ?? [])]) this.endLingering(stream, H2Error.noError);
    if (this.streams.size === 0 && this.waiting.length === 0) this.finishClose();
  }

  private finishClose(): void {
    if (this.destroyed) return;
    this.flush();
    this.socket.end();
    this.destroy();
  }

  /** Closes at once: every stream still open ends with `error`; `flushFirst` lets queued frames (GOAWAY) out. */
  destroy(error?: Error, flushFirst = false): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.closed = true;
    const lost = error ?? new Error("the HTTP/2 connection closed");
    for (const stream of [...this.streams.values(), ...this.waiting.splice(0)]) {
      stream.lingering = false;
      stream.abort(H2Error.cancel, lost);
    }
    this.lingering = undefined;
    this.stalled = undefined;
    this.starved = undefined;
    if (error !== undefined && !flushFirst) this.socket.destroy();
    else if (!this.socket.destroyed) {
      this.socket.destroySoon();
      // A peer that does not read would keep the socket (and what waits for it) forever.
      if (this.socket.writableLength > 0) setTimeout(() => this.socket.destroy(), 1000).unref();
    }
    if (error !== undefined && this.listenerCount("error") > 0) this.emit("error", error);
    process.nextTick(() => this.emit("close"));
  }

  unref(): void {
    this.socket.unref();
  }
}

/** The payload length in the frame header at `off`. */
function frameLength(buf: Buffer, off: number): number {
  return (buf[off] as number) * 65_536 + ((buf[off + 1] as number) << 8) + (buf[off + 2] as number);
}
