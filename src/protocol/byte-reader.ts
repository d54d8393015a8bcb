import { ProtocolError } from "../errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads big-endian fields from one frame payload. Every read is bounds-checked and a
 * short payload throws {@link ProtocolError} `TRUNCATED`: the payload came off the
 * network and is hostile until it has parsed.
 *
 * Byte views (`bytes`, `rest`) share memory with the payload; copy them if they must
 * outlive it.
 */
export class ByteReader {
  private offset = 0;

  constructor(private readonly buf: Uint8Array) {}

  /** Bytes not yet read. */
  get remaining(): number {
    return this.buf.length - this.offset;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  u32(): number {
    this.need(4);
    const v = readU32(this.buf, this.offset);
    this.offset += 4;
    return v;
  }

  /**
   * A u64 as a JS number. Exact up to 2^53; larger values (never produced by honest
   * peers for timestamps) lose low bits, which is harmless for display-only fields.
   */
  u64(): number {
    this.need(8);
    const v = readU64(this.buf, this.offset);
    this.offset += 8;
    return v;
  }

  /** A u64 exactly, for opaque values such as PING nonces. */
  u64BigInt(): bigint {
    this.need(8);
    const hi = readU32(this.buf, this.offset);
    const lo = readU32(this.buf, this.offset + 4);
    this.offset += 8;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A view of the next `n` bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const view = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return view;
  }

  /** `str` = u16 byte length + UTF-8. Invalid UTF-8 throws `BAD_UTF8`. */
  str(field: string): string {
    const n = this.u16();
    return decodeUtf8(this.bytes(n), field);
  }

  /** A view of everything not yet read. */
  rest(): Uint8Array {
    const view = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return view;
  }

  /** Asserts the payload was consumed exactly. */
  end(what: string): void {
    if (this.offset !== this.buf.length) {
      throw new ProtocolError(
        "TRAILING_BYTES",
        `${what}: ${this.buf.length - this.offset} unexpected trailing bytes`,
      );
    }
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new ProtocolError(
        "TRUNCATED",
        `payload ends after ${this.buf.length} bytes, needed ${this.offset + n}`,
      );
    }
  }
}

/** Reads a big-endian u16 at `offset`; the caller has checked bounds. */
export function readU16(b: Uint8Array, offset: number): number {
  return (b[offset]! << 8) | b[offset + 1]!;
}

/** Reads a big-endian u32 at `offset`; the caller has checked bounds. */
export function readU32(b: Uint8Array, offset: number): number {
  return (
    ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0
  );
}

/** Reads a big-endian u64 as a number (exact up to 2^53); the caller has checked bounds. */
export function readU64(b: Uint8Array, offset: number): number {
  return readU32(b, offset) * 0x1_0000_0000 + readU32(b, offset + 4);
}

/** Strict UTF-8 decode; invalid sequences are a protocol error, never replaced. */
export function decodeUtf8(bytes: Uint8Array, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new ProtocolError("BAD_UTF8", `${field} is not valid UTF-8`, { cause });
  }
}
