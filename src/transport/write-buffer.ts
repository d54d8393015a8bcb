/**
 * A byte queue: appended at the tail, consumed from the head, stored contiguously so a
 * flush is one `socket.write` of one view. It grows by doubling and compacts instead of
 * growing when the consumed head frees enough room. Once empty, an oversized backing
 * store is released so an idle connection holds only {@link RETAINED_BYTES}.
 */
export class WriteBuffer {
  private buf: Uint8Array = new Uint8Array(0);
  private head = 0;
  private tail = 0;

  /** Bytes queued and not yet consumed. */
  get length(): number {
    return this.tail - this.head;
  }

  /** Copies `bytes` to the tail. */
  append(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.tail + n > this.buf.length) this.makeRoom(n);
    this.buf.set(bytes, this.tail);
    this.tail += n;
  }

  /** The underlying store and the queued range, for a zero-copy `socket.write(buf, offset, length)`. */
  get store(): Uint8Array {
    return this.buf;
  }
  get offset(): number {
    return this.head;
  }

  /** Drops `n` bytes from the head (they were written). */
  consume(n: number): void {
    this.head += n;
    if (this.head < this.tail) return;
    this.head = 0;
    this.tail = 0;
    if (this.buf.length > RETAINED_BYTES) this.buf = new Uint8Array(0);
  }

  /** Drops everything. */
  clear(): void {
    this.head = 0;
    this.tail = 0;
    this.buf = new Uint8Array(0);
  }

  private makeRoom(n: number): void {
    const live = this.tail - this.head;
    if (live + n <= this.buf.length && this.head >= this.buf.length / 2) {
      this.buf.copyWithin(0, this.head, this.tail);
    } else {
      const grown = new Uint8Array(Math.max(INITIAL_BYTES, this.buf.length * 2, live + n));
      grown.set(this.buf.subarray(this.head, this.tail), 0);
      this.buf = grown;
    }
    this.head = 0;
    this.tail = live;
  }
}

const INITIAL_BYTES = 16 * 1024;

/** Largest backing store kept by an empty buffer. */
export const RETAINED_BYTES = 64 * 1024;
