/**
 * Watches the 5-byte length prefixes of an enveloped body as it streams past, without buffering,
 * and reports the first message that declares more than `maxBytes`.
 */
export interface EnvelopeLimit {
  /** Scans a chunk; false when a message in it declares more than the limit. */
  push(chunk: Uint8Array): boolean;
  /** The declared size of the offending message, after `push` returned false. */
  readonly declared: number;
}

export function createEnvelopeLimit(maxBytes: number): EnvelopeLimit {
  // Bytes of the current message body still to skip; -1..-5: reading the prefix (byte index = -n-1).
  let remaining = 0;
  let headerPos = 0;
  let length = 0;
  let declared = 0;
  return {
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (remaining > 0) {
          const skip = Math.min(remaining, n - i);
          remaining -= skip;
          i += skip;
          continue;
        }
        // Prefix byte 0 is the flags; bytes 1..4 the big-endian length.
        if (headerPos > 0) length = length * 256 + (chunk[i] as number);
        headerPos++;
        i++;
        if (headerPos === 5) {
          if (length > maxBytes) {
            declared = length;
            return false;
          }
          remaining = length;
          headerPos = 0;
          length = 0;
        }
      }
      return true;
    },
    get declared() {
      return declared;
    },
  };
}
