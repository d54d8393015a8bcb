import { FRAME_HEADER_BYTES } from "./constants.ts";

const utf8 = new TextEncoder();

/** UTF-8 bytes of `s`. */
export function encodeUtf8(s: string): Uint8Array {
  return utf8.encode(s);
}

/**
 * Writes big-endian fields into a buffer allocated once at its final size. Encoders
 * compute the size first, so nothing is copied twice. {@link ByteWriter.frame} starts a
 * complete frame (length prefix and type byte written).
 */
export class ByteWriter {
  /** The buffer being filled. */
  readonly buf: Uint8Array;
  private offset = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  /** A writer for a whole frame of `payloadBytes`, positioned after the type byte. */
  static frame(type: number, payloadBytes: number): ByteWriter {
    return new ByteWriter(FRAME_HEADER_BYTES + 1 + payloadBytes).u32(1 + payloadBytes).u8(type);
  }

  u8(v: number): this {
    this.buf[this.offset++] = v;
    return this;
  }

  u16(v: number): this {
    const f = this.buf;
    f[this.offset] = v >>> 8;
    f[this.offset + 1] = v;
    this.offset += 2;
    return this;
  }

  u32(v: number): this {
    writeU32(this.buf, this.offset, v);
    this.offset += 4;
    return this;
  }

  /** A non-negative integer up to 2^53 as u64. */
  u64(v: number): this {
    writeU32(this.buf, this.offset, Math.floor(v / 0x1_0000_0000));
    writeU32(this.buf, this.offset + 4, v >>> 0);
    this.offset += 8;
    return this;
  }

  u64BigInt(v: bigint): this {
    writeU32(this.buf, this.offset, Number((v >> 32n) & 0xffff_ffffn));
    writeU32(this.buf, this.offset + 4, Number(v & 0xffff_ffffn));
    this.offset += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.buf.set(b, this.offset);
    this.offset += b.length;
    return this;
  }

  /** Leaves `n` bytes (zero) to be filled in later, by whoever knows them. */
  skip(n: number): this {
    this.offset += n;
    return this;
  }

  /** `str`: u16 length, then the bytes (already UTF-8). */
  str(utf8Bytes: Uint8Array): this {
    return this.u16(utf8Bytes.length).bytes(utf8Bytes);
  }

  /** Returns the buffer, asserting the size computed up front was exact. */
  done(): Uint8Array {
    if (this.offset !== this.buf.length) {
      throw new Error(`size mismatch: wrote ${this.offset} of ${this.buf.length} bytes`);
    }
    return this.buf;
  }
}

/** Writes a big-endian u32 at `offset`. */
export function writeU32(b: Uint8Array, offset: number, v: number): void {
  b[offset] = v >>> 24;
  b[offset + 1] = v >>> 16;
  b[offset + 2] = v >>> 8;
  b[offset + 3] = v;
}
