import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, writeU32 } from "./byte-writer.ts";
import {
  FRAME_HEADER_BYTES,
  FrameType,
  MESSAGE_ID_BYTES,
  NODE_ID_BYTES,
  SIGNATURE_BYTES,
} from "./constants.ts";

/**
 * FLOOD: a message relayed to the whole network. The relay needs only this envelope;
 * `body` is interpreted by `kind` (see chat.ts), and unknown kinds are relayed unread.
 */
export interface Flood {
  /** 16 random bytes chosen by the origin; the de-duplication key. */
  readonly id: Uint8Array;
  /** nodeId of the peer that wrote the message. */
  readonly origin: Uint8Array;
  /** Per-origin counter, from 1. */
  readonly seq: number;
  /** Origin's clock at sending, unix milliseconds. */
  readonly sentAt: number;
  /** Relays crossed so far: 0 as sent by the origin. */
  readonly hops: number;
  readonly kind: number;
  /** Ed25519 signature by `origin` over {@link floodSigningBytes}: everything but `hops`. */
  readonly signature: Uint8Array;
  readonly body: Uint8Array;
}

/** Offset of the `hops` byte within a FLOOD payload. */
export const FLOOD_HOPS_OFFSET = MESSAGE_ID_BYTES + NODE_ID_BYTES + 4 + 8;

/** Offset of the `kind` byte within a FLOOD payload. */
export const FLOOD_KIND_OFFSET = FLOOD_HOPS_OFFSET + 1;

/** Offset of the origin's signature within a FLOOD payload. */
export const FLOOD_SIGNATURE_OFFSET = FLOOD_KIND_OFFSET + 1;

/** Bytes of the FLOOD envelope before the body. */
export const FLOOD_HEADER_BYTES = FLOOD_SIGNATURE_OFFSET + SIGNATURE_BYTES;

/** Domain separation: a FLOOD signature can never be mistaken for any other. */
export const FLOOD_SIGNATURE_PREFIX = new TextEncoder().encode("peerchat-flood-v2:");

/** Largest signed message: the prefix, a FLOOD payload without hops and signature. */
const MAX_SIGNING_BYTES = FLOOD_SIGNATURE_PREFIX.length + 65_536;
const signingScratch = new Uint8Array(MAX_SIGNING_BYTES);

/**
 * What the origin signs for the FLOOD payload `bytes[start, end)`:
 * `"peerchat-flood-v2:" | id | origin | seq | sentAt | kind | body`. Everything but `hops`
 * (which relays change) and the signature itself. Returns a view of a scratch buffer,
 * valid until the next call: sign or verify it at once.
 */
export function floodSigningBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = signingScratch;
  const prefix = FLOOD_SIGNATURE_PREFIX.length;
  out.set(FLOOD_SIGNATURE_PREFIX, 0);
  out.set(bytes.subarray(start, start + FLOOD_HOPS_OFFSET), prefix);
  out[prefix + FLOOD_HOPS_OFFSET] = bytes[start + FLOOD_KIND_OFFSET] as number;
  const body = bytes.subarray(start + FLOOD_HEADER_BYTES, end);
  out.set(body, prefix + FLOOD_HOPS_OFFSET + 1);
  return out.subarray(0, prefix + FLOOD_HOPS_OFFSET + 1 + body.length);
}

/**
 * Signs the FLOOD frame `frame` (length, type, payload) in place with `sign`, filling its
 * signature field. Returns the frame.
 */
export function signFloodFrame(
  frame: Uint8Array,
  sign: (message: Uint8Array) => Uint8Array,
): Uint8Array {
  const start = FRAME_HEADER_BYTES + 1;
  const signature = sign(floodSigningBytes(frame, start, frame.length));
  frame.set(signature, start + FLOOD_SIGNATURE_OFFSET);
  return frame;
}

/** Encodes a FLOOD frame. */
export function encodeFlood(flood: Flood): Uint8Array {
  return ByteWriter.frame(FrameType.Flood, FLOOD_HEADER_BYTES + flood.body.length)
    .bytes(flood.id)
    .bytes(flood.origin)
    .u32(flood.seq)
    .u64(flood.sentAt)
    .u8(flood.hops)
    .u8(flood.kind)
    .bytes(flood.signature)
    .bytes(flood.body)
    .done();
}

/**
 * Decodes a FLOOD payload. `id`, `origin` and `body` are views into the payload; the
 * relay keys its seen-cache on a string made from `id`, so nothing needs copying.
 */
export function decodeFlood(payload: Uint8Array): Flood {
  const r = new ByteReader(payload);
  const id = r.bytes(MESSAGE_ID_BYTES);
  const origin = r.bytes(NODE_ID_BYTES);
  const seq = r.u32();
  const sentAt = r.u64();
  const hops = r.u8();
  const kind = r.u8();
  const signature = r.bytes(SIGNATURE_BYTES);
  return { id, origin, seq, sentAt, hops, kind, signature, body: r.rest() };
}

/**
 * The frame to forward for a received FLOOD whose payload is `bytes[start, end)`: the
 * same bytes with `hops` replaced. Relaying never re-encodes the envelope, so unknown
 * kinds pass intact.
 */
export function encodeFloodForward(
  bytes: Uint8Array,
  start: number,
  end: number,
  hops: number,
): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + 1 + end - start);
  writeU32(frame, 0, 1 + end - start);
  frame[FRAME_HEADER_BYTES] = FrameType.Flood;
  frame.set(bytes.subarray(start, end), FRAME_HEADER_BYTES + 1);
  frame[FRAME_HEADER_BYTES + 1 + FLOOD_HOPS_OFFSET] = hops;
  return frame;
}
