import type { Random } from "./mutators.ts";
import { fastRandomBytes } from "./mutators.ts";

/**
 * Follows a length-prefixed byte stream exactly as the receiver will cut it, so the
 * fuzzer knows, for the mutated bytes it has written, whether the receiver is between
 * units, waiting for more, or has refused the stream.
 *
 * A mutated length prefix makes the receiver swallow what follows, or wait for bytes
 * that never come. After each case the fuzzer asks for {@link completion}: the bytes
 * that finish the unit the receiver is reading (random, as the mutated header asked for
 * them), so every case starts on a unit boundary and the probe written after it is read
 * as a probe.
 */
export class LengthTracker {
  /** Set once the receiver has seen a length it refuses: it closes without reading on. */
  dead = false;
  /** Units whose header has been read in full. */
  units = 0;
  private readonly header: Uint8Array;
  private headerFilled = 0;
  /** Body bytes still to come for the unit being read. */
  private remaining = 0;

  /**
   * @param lengthBytes width of the big-endian length prefix
   * @param accepts whether the receiver takes a unit of `length` as its `index`-th
   */
  constructor(
    private readonly lengthBytes: 2 | 4,
    private readonly accepts: (length: number, index: number) => boolean,
  ) {
    this.header = new Uint8Array(lengthBytes);
  }

  /** True between units: nothing partial pending. */
  get aligned(): boolean {
    return !this.dead && this.headerFilled === 0 && this.remaining === 0;
  }

  /** Follows `bytes` as the receiver will read them. */
  feed(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length && !this.dead) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, bytes.length - at);
        this.remaining -= n;
        at += n;
        continue;
      }
      this.header[this.headerFilled++] = bytes[at++] as number;
      if (this.headerFilled === this.lengthBytes) this.onHeader();
    }
  }

  /**
   * What to write so the receiver is between units again: the rest of a partial header
   * (zeros), then the rest of the body (random). Empty if aligned or dead; may leave the
   * stream dead (a header completed with zeros can be a refused length).
   */
  completion(random: Random): Uint8Array {
    if (this.dead) return new Uint8Array(0);
    const parts: number[] = [];
    while (this.headerFilled > 0 && !this.dead) {
      parts.push(0);
      this.header[this.headerFilled++] = 0;
      if (this.headerFilled === this.lengthBytes) this.onHeader();
    }
    const head = Uint8Array.from(parts);
    if (this.dead || this.remaining === 0) return head;
    const body = fastRandomBytes(random, this.remaining);
    this.remaining = 0;
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  }

  private onHeader(): void {
    let length = 0;
    for (const b of this.header) length = length * 256 + b;
    this.headerFilled = 0;
    if (!this.accepts(length, this.units)) {
      this.dead = true;
      return;
    }
    this.units++;
    this.remaining = length;
  }
}
