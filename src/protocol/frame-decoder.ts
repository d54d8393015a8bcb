import { ProtocolError } from "../errors.ts";
import { readU32 } from "./byte-reader.ts";
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from "./constants.ts";

/**
 * One decoded frame: its type byte and its payload, `bytes[start, end)`. The bytes are
 * the chunk the frame arrived in (or the decoder's reassembly buffer, for a frame split
 * across chunks): copy them to keep them. `payload` is a view made on first use, so
 * code that reads in place (the relay) does not pay for one.
 */
export class Frame {
  private view: Uint8Array | undefined;

  /**
   * @param framed true when the frame's length prefix and type byte still precede its
   *   payload in `bytes` (`bytes[start - 5, end)` is the whole frame as received)
   */
  constructor(
    readonly type: number,
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly end: number,
    readonly framed = false,
  ) {}

  /** The bytes after the type byte. */
  get payload(): Uint8Array {
    this.view ??= this.bytes.subarray(this.start, this.end);
    return this.view;
  }
}

/**
 * Splits a TCP byte stream into frames (`length:u32 | type:u8 | payload`).
 *
 * Chunks may split or merge frames anywhere. Whole frames inside a chunk are returned
 * as views without copying; only a frame that straddles chunks is reassembled, into a
 * buffer allocated once at its exact size after its length has been checked. So a
 * large frame arriving byte by byte costs linear, not quadratic, copying, and a header
 * announcing a length of 0 or more than {@link MAX_FRAME_BYTES} is rejected as soon as
 * its four bytes are in, before anything is allocated for the body.
 *
 * After a bad header the decoder is failed: `push` returns the frames that preceded the
 * bad header, {@link error} is set, and every later `push` throws it.
 */
export class FrameDecoder {
  /** Set once the stream broke the framing rules; the connection must close. */
  error: ProtocolError | undefined;

  /** Header bytes of a frame whose length prefix is not complete yet. */
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** Body (type + payload) of a frame being reassembled across chunks. */
  private body: Uint8Array | undefined;
  private bodyFilled = 0;

  /** Bytes held for an incomplete frame (for tests and memory accounting). */
  get bufferedBytes(): number {
    return this.headerFilled + this.bodyFilled;
  }

  /** Feeds one chunk; returns every frame completed by it, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (this.error) throw this.error;
    const frames: Frame[] = [];
    let offset = 0;
    const n = chunk.length;

    // 1. Finish a frame left incomplete by earlier chunks.
    if (this.headerFilled > 0 || this.body) {
      offset = this.continuePartial(chunk, frames);
      if (offset < 0) return frames;
    }

    // 2. Whole frames inside this chunk: zero-copy views.
    while (n - offset >= FRAME_HEADER_BYTES) {
      const length = readU32(chunk, offset);
      if (!this.checkLength(length)) return frames;
      const end = offset + FRAME_HEADER_BYTES + length;
      if (end > n) break;
      frames.push(
        new Frame(
          chunk[offset + FRAME_HEADER_BYTES]!,
          chunk,
          offset + FRAME_HEADER_BYTES + 1,
          end,
          true,
        ),
      );
      offset = end;
    }

    // 3. Keep the tail: a partial header, or a checked header plus part of its body.
    const tail = n - offset;
    if (tail === 0) return frames;
    if (tail < FRAME_HEADER_BYTES) {
      this.header.set(chunk.subarray(offset), 0);
      this.headerFilled = tail;
      return frames;
    }
    // The length was checked by the loop above before it broke out.
    const body = new Uint8Array(readU32(chunk, offset));
    body.set(chunk.subarray(offset + FRAME_HEADER_BYTES), 0);
    this.body = body;
    this.bodyFilled = tail - FRAME_HEADER_BYTES;
    return frames;
  }

  /**
   * Continues a partial header or body with the start of `chunk`. Returns the offset of
   * the first unconsumed byte, or -1 if the chunk was used up (or the header was bad).
   */
  private continuePartial(chunk: Uint8Array, frames: Frame[]): number {
    let offset = 0;
    if (!this.body) {
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length);
      this.header.set(chunk.subarray(0, take), this.headerFilled);
      this.headerFilled += take;
      offset = take;
      if (this.headerFilled < FRAME_HEADER_BYTES) return -1;
      const length = readU32(this.header, 0);
      this.headerFilled = 0;
      if (!this.checkLength(length)) return -1;
      this.body = new Uint8Array(length);
      this.bodyFilled = 0;
    }
    const body = this.body;
    const take = Math.min(body.length - this.bodyFilled, chunk.length - offset);
    body.set(chunk.subarray(offset, offset + take), this.bodyFilled);
    this.bodyFilled += take;
    offset += take;
    if (this.bodyFilled < body.length) return -1;
    frames.push(new Frame(body[0]!, body, 1, body.length));
    this.body = undefined;
    this.bodyFilled = 0;
    return offset;
  }

  private checkLength(length: number): boolean {
    if (length >= 1 && length <= MAX_FRAME_BYTES) return true;
    this.error =
      length === 0
        ? new ProtocolError("FRAME_EMPTY", "frame length 0")
        : new ProtocolError(
            "FRAME_TOO_LARGE",
            `frame length ${length} exceeds the maximum of ${MAX_FRAME_BYTES}`,
          );
    this.headerFilled = 0;
    this.body = undefined;
    this.bodyFilled = 0;
    return false;
  }
}
