/**
 * The most recently closed streams of a server session and who closed them, so that a frame on a
 * closed stream gets the answer RFC 9113 §5.1 asks for: ignored when this side reset the stream
 * (the peer may have sent it before it saw the reset), STREAM_CLOSED otherwise. A fixed ring:
 * recording costs two array writes per stream; only frames on streams no longer open read it.
 */
export class ClosedStreams {
  private readonly ids: Int32Array;
  private readonly resetHere: Uint8Array;
  private next = 0;

  constructor(size = 256) {
    this.ids = new Int32Array(size);
    this.resetHere = new Uint8Array(size);
  }

  add(id: number, resetHere: boolean): void {
    this.ids[this.next] = id;
    this.resetHere[this.next] = resetHere ? 1 : 0;
    this.next = (this.next + 1) % this.ids.length;
  }

  /** "reset-here" (this side sent RST_STREAM), "closed" (ended or reset by the peer), or undefined (not remembered). */
  find(id: number): "reset-here" | "closed" | undefined {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === id) return this.resetHere[i] === 1 ? "reset-here" : "closed";
    }
    return undefined;
  }
}
