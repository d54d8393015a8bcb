/** Size of each block of a {@link WriteBuffer}. */
export const BLOCK_BYTES = 64 * 1024;

/**
 * A byte queue: appended at the tail, consumed from the head, kept as a list of
 * fixed-size blocks. Appending copies bytes once, into the tail block; nothing is ever
 * moved or regrown afterwards, however large the backlog gets. A flush writes one block
 * (one syscall for up to 64 KiB of frames) at a time. One emptied block is kept for
 * reuse, so an idle connection holds at most {@link BLOCK_BYTES}.
 */
export class WriteBuffer {
  private readonly blocks: Uint8Array[] = [];
  /** Read position in the first block. */
  private head = 0;
  /** Write position in the last block. */
  private tail = 0;
  private spare: Uint8Array | undefined;
  private bytes = 0;

  /** Bytes queued and not yet consumed. */
  get length(): number {
    return this.bytes;
  }

  /** Copies `bytes[start, end)` to the tail. */
  append(bytes: Uint8Array, start = 0, end = bytes.length): void {
    let from = start;
    const n = end;
    while (from < n) {
      let block = this.blocks[this.blocks.length - 1];
      if (block === undefined || this.tail === BLOCK_BYTES) {
        block = this.spare ?? new Uint8Array(BLOCK_BYTES);
        this.spare = undefined;
        this.blocks.push(block);
        this.tail = 0;
      }
      const take = Math.min(n - from, BLOCK_BYTES - this.tail);
      if (from === 0 && take === bytes.length) {
        block.set(bytes, this.tail);
      } else if (take <= 256) {
        // Small pieces (a chat frame) copy faster by hand than through a subarray view.
        const at = this.tail;
        for (let i = 0; i < take; i++) block[at + i] = bytes[from + i] as number;
      } else {
        block.set(bytes.subarray(from, from + take), this.tail);
      }
      this.tail += take;
      from += take;
    }
    this.bytes += end - start;
  }

  /** The block holding the head; write `store[offset, offset + segment)` next. */
  get store(): Uint8Array {
    return this.blocks[0] as Uint8Array;
  }
  get offset(): number {
    return this.head;
  }
  /** Contiguous bytes from the head: the rest of the first block. */
  get segment(): number {
    if (this.blocks.length === 0) return 0;
    return (this.blocks.length === 1 ? this.tail : BLOCK_BYTES) - this.head;
  }

  /** Drops `n` bytes from the head (they were written); `n` ≤ {@link segment}. */
  consume(n: number): void {
    this.head += n;
    this.bytes -= n;
    const full = this.blocks.length === 1 ? this.tail : BLOCK_BYTES;
    if (this.head < full) return;
    const done = this.blocks.shift() as Uint8Array;
    this.head = 0;
    if (this.blocks.length === 0) this.tail = 0;
    this.spare ??= done;
  }

  /** Drops everything, and the spare block too. */
  clear(): void {
    this.blocks.length = 0;
    this.head = 0;
    this.tail = 0;
    this.bytes = 0;
    this.spare = undefined;
  }
}
