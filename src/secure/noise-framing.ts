/**
 * How Noise messages go on the wire (docs/PROTOCOL.md §2a, "Framing"): each as
 * `length:u16 | message`, and the node's plaintext cut into transport messages.
 */

import type { CipherState } from "../noise/cipher-state.ts";
import {
  MAX_NOISE_MESSAGE_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
  TAG_BYTES,
} from "../noise/constants.ts";
import {
  FIRST_MESSAGE_BYTES,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  NOISE_LENGTH_BYTES,
} from "./constants.ts";

const EMPTY = new Uint8Array(0);

/**
 * Whether a handshake message may be `length` bytes: message 1, as the responder reads
 * it (`firstInbound`), has one size; later ones are small. Checked before buffering.
 */
export function plausibleHandshakeLength(length: number, firstInbound: boolean): boolean {
  return firstInbound ? length === FIRST_MESSAGE_BYTES : length <= MAX_HANDSHAKE_MESSAGE_BYTES;
}

/** Bytes of lengths and tags added to `plainBytes` of plaintext, in full-size chunks. */
export function overheadFor(plainBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plainBytes / MAX_TRANSPORT_PLAINTEXT_BYTES));
  return chunks * (NOISE_LENGTH_BYTES + TAG_BYTES);
}

/** `message` with its u16 length in front. */
export function withLength(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(NOISE_LENGTH_BYTES + message.length);
  putFramed(out, 0, message);
  return out;
}

/**
 * `plain` encrypted with `cipher` as transport messages of at most
 * {@link MAX_TRANSPORT_PLAINTEXT_BYTES} plaintext each, every one length-prefixed. At least
 * one message: empty plaintext gives one empty message (the responder's confirmation).
 */
export function sealTransport(cipher: CipherState, plain: Uint8Array): Uint8Array {
  const out = new Uint8Array(plain.length + overheadFor(plain.length));
  let at = 0;
  let from = 0;
  do {
    const sealed = cipher.encrypt(
      plain.subarray(from, Math.min(plain.length, from + MAX_TRANSPORT_PLAINTEXT_BYTES)),
    );
    at = putFramed(out, at, sealed);
    from += MAX_TRANSPORT_PLAINTEXT_BYTES;
  } while (from < plain.length);
  return out;
}

/** Writes `u16 length | message` into `out` at `at`; returns the offset after it. */
function putFramed(out: Uint8Array, at: number, message: Uint8Array): number {
  if (message.length > MAX_NOISE_MESSAGE_BYTES) throw new RangeError("Noise message too large");
  out[at] = message.length >> 8;
  out[at + 1] = message.length & 0xff;
  out.set(message, at + NOISE_LENGTH_BYTES);
  return at + NOISE_LENGTH_BYTES + message.length;
}

/** What {@link NoiseMessageReader.read} asks of its owner, message by message. */
export interface NoiseMessageSink {
  /** A message's length, as soon as its two bytes are in; false stops reading. */
  length(bytes: number): boolean;
  /** A whole message (a view of the buffer: copy it to keep it); false stops reading. */
  message(message: Uint8Array): boolean;
}

/**
 * Cuts incoming bytes into Noise messages, across chunks of any size. Each length is
 * shown to the owner before any of its message is buffered; only an incomplete tail
 * (under one message) is kept between chunks.
 */
export class NoiseMessageReader {
  private partial: Uint8Array = EMPTY;

  /** `chunk` after what earlier chunks left incomplete: the bytes to {@link read}. */
  join(chunk: Uint8Array): Uint8Array {
    if (this.partial.length === 0) return chunk;
    const buf = new Uint8Array(this.partial.length + chunk.length);
    buf.set(this.partial);
    buf.set(chunk, this.partial.length);
    return buf;
  }

  /** Hands `sink` every whole message in `buf` (from {@link join}), keeps the tail. */
  read(buf: Uint8Array, sink: NoiseMessageSink): void {
    let offset = 0;
    while (buf.length - offset >= NOISE_LENGTH_BYTES) {
      const length = ((buf[offset] as number) << 8) | (buf[offset + 1] as number);
      if (!sink.length(length)) return;
      if (buf.length - offset - NOISE_LENGTH_BYTES < length) break;
      const start = offset + NOISE_LENGTH_BYTES;
      offset = start + length;
      if (!sink.message(buf.subarray(start, offset))) return;
    }
    // Copied: `buf` may be the socket's chunk, which it may reuse.
    this.partial = offset === buf.length ? EMPTY : buf.slice(offset);
  }
}
