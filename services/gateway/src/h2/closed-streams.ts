/**
 * The most recently closed streams of a server session and who closed them, so that a frame on a
 * closed stream gets the answer RFC 9113 §5.1 asks for: ignored when this side reset the stream
 * (the peer may have sent it before it saw the reset), STREAM_CLOSED otherwise. A ring of the last
 * `size` ids, each negated when this side reset it (stream ids are positive, 0 marks an empty
 * slot): recording costs one array write per stream; only frames on streams no longer open read it.
 *
 * The ring starts at 8 ids and doubles each time it fills, up to `size`: a connection that has
 * closed few streams holds 32 bytes inside the object (V8 keeps typed arrays of up to 64 bytes on
 * its heap) instead of 1.25 KB of buffer memory, which at 1,000 mostly idle connections is over a
 * megabyte. It remembers the same streams a full-size ring would.
 */
export class ClosedStreams {
  private ids: Int32Array;
  private next = 0;

  constructor(private readonly size = 256) {
    this.ids = new Int32Array(Math.min(8, size));
  }

  add(id: number, resetHere: boolean): void {
    if (this.next === this.ids.length) {
      if (this.ids.length < this.size) {
        const grown = new Int32Array(Math.min(this.size, this.ids.length * 2));
        grown.set(this.ids);
        this.ids = grown;
      } else {
        this.next = 0;
      }
    }
    this.ids[this.next++] = resetHere ? -id : id;
  }

  /** "reset-here" (this side sent RST_STREAM), "closed" (ended or reset by the peer), or undefined (not remembered). */
  find(id: number): "reset-here" | "closed" | undefined {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) {
      const at = ids[i];
      if (at === id) return "closed";
      if (at === -id) return "reset-here";
    }
    return undefined;
  }
}
