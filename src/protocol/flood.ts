import { ByteReader, readU32, readU64 } from "./byte-reader.ts";
import { ByteWriter, writeU32 } from "./byte-writer.ts";
import {
  FloodKind,
  FRAME_HEADER_BYTES,
  FrameType,
  MESSAGE_ID_BYTES,
  NODE_ID_BYTES,
  SIGNATURE_BYTES,
} from "./constants.ts";
import { latin1 } from "./hex.ts";

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

// The envelope, the one home of its layout: id 16 | origin 32 | seq u32 | sentAt u64 |
// hops u8 | kind u8 | signature 64 | body. Offsets are within the FLOOD payload; every
// other module reads and writes the envelope through the functions below.

/** Offset of the origin's node id within a FLOOD payload (the id comes first). */
export const FLOOD_ORIGIN_OFFSET = MESSAGE_ID_BYTES;

/** Offset of `seq` within a FLOOD payload. */
export const FLOOD_SEQ_OFFSET = FLOOD_ORIGIN_OFFSET + NODE_ID_BYTES;

/** Offset of `sentAt` within a FLOOD payload. */
export const FLOOD_SENT_AT_OFFSET = FLOOD_SEQ_OFFSET + 4;

/** Offset of the `hops` byte within a FLOOD payload. */
export const FLOOD_HOPS_OFFSET = FLOOD_SENT_AT_OFFSET + 8;

/** Offset of the `kind` byte within a FLOOD payload. */
export const FLOOD_KIND_OFFSET = FLOOD_HOPS_OFFSET + 1;

/** Offset of the origin's signature within a FLOOD payload. */
export const FLOOD_SIGNATURE_OFFSET = FLOOD_KIND_OFFSET + 1;

/** Bytes of the FLOOD envelope before the body. */
export const FLOOD_HEADER_BYTES = FLOOD_SIGNATURE_OFFSET + SIGNATURE_BYTES;

/** Where a FLOOD frame's payload starts: after the u32 length and the type byte. */
export const FLOOD_PAYLOAD_OFFSET = FRAME_HEADER_BYTES + 1;

/** The envelope fields of the FLOOD payload at `bytes[at…]`, read in place. */
export const floodId = (bytes: Uint8Array, at: number): Uint8Array =>
  bytes.subarray(at, at + MESSAGE_ID_BYTES);
export const floodOrigin = (bytes: Uint8Array, at: number): Uint8Array =>
  bytes.subarray(at + FLOOD_ORIGIN_OFFSET, at + FLOOD_ORIGIN_OFFSET + NODE_ID_BYTES);
export const floodSeq = (bytes: Uint8Array, at: number): number =>
  readU32(bytes, at + FLOOD_SEQ_OFFSET);
export const floodSentAt = (bytes: Uint8Array, at: number): number =>
  readU64(bytes, at + FLOOD_SENT_AT_OFFSET);
export const floodHops = (bytes: Uint8Array, at: number): number =>
  bytes[at + FLOOD_HOPS_OFFSET] as number;
export const floodKind = (bytes: Uint8Array, at: number): number =>
  bytes[at + FLOOD_KIND_OFFSET] as number;
export const floodSignature = (bytes: Uint8Array, at: number): Uint8Array =>
  bytes.subarray(at + FLOOD_SIGNATURE_OFFSET, at + FLOOD_SIGNATURE_OFFSET + SIGNATURE_BYTES);
/** The origin of the FLOOD payload at `at` as a latin1 string: a cheap map key. */
export const floodOriginKey = (bytes: Uint8Array, at: number): string =>
  latin1(bytes, at + FLOOD_ORIGIN_OFFSET, NODE_ID_BYTES);
/** Where the body of the FLOOD payload at `at` begins. */
export const floodBodyAt = (at: number): number => at + FLOOD_HEADER_BYTES;

/** Sets the `hops` byte of the FLOOD payload at `bytes[at…]`, in place. */
export function setFloodHops(bytes: Uint8Array, at: number, hops: number): void {
  bytes[at + FLOOD_HOPS_OFFSET] = hops;
}

/** The envelope of a FLOOD being built: all but the signature, which is signed last. */
export interface FloodEnvelope {
  readonly origin: Uint8Array;
  readonly seq: number;
  readonly sentAt: number;
  readonly hops: number;
  readonly kind: number;
}

/**
 * Writes the envelope of `e` into the FLOOD payload at `bytes[at…]`, after an id the
 * caller has already put there, with a zero signature (see {@link signFloodFrame}).
 * Returns where the body begins.
 */
export function writeFloodEnvelope(bytes: Uint8Array, at: number, e: FloodEnvelope): number {
  bytes.set(e.origin, at + FLOOD_ORIGIN_OFFSET);
  writeU32(bytes, at + FLOOD_SEQ_OFFSET, e.seq);
  writeU32(bytes, at + FLOOD_SENT_AT_OFFSET, Math.floor(e.sentAt / 0x1_0000_0000));
  writeU32(bytes, at + FLOOD_SENT_AT_OFFSET + 4, e.sentAt >>> 0);
  bytes[at + FLOOD_HOPS_OFFSET] = e.hops;
  bytes[at + FLOOD_KIND_OFFSET] = e.kind;
  bytes.fill(0, at + FLOOD_SIGNATURE_OFFSET, at + FLOOD_HEADER_BYTES);
  return at + FLOOD_HEADER_BYTES;
}

/**
 * Kinds kept in history: stored by every peer and reconciled by sync. CHAT is counted by
 * the origin's `seq` (other kinds repeat the latest value), so that a gap in an origin's
 * `seq` is a message some peer never got; DIRECT is written by one-time origins with
 * `seq` 0, counted by nobody (§6a).
 */
export function keptInHistory(kind: number): boolean {
  return kind === FloodKind.Chat || kind === FloodKind.Direct;
}

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
  const start = FLOOD_PAYLOAD_OFFSET;
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
 * The frame to forward for a received FLOOD whose payload is `bytes[start, end)`, with
 * `hops` set. When `framed` (its length prefix is in `bytes` just before `start`), that
 * is `bytes` itself, its hops byte changed in place: the frame runs from
 * `start − FLOOD_PAYLOAD_OFFSET` to `end`. Otherwise (it was reassembled from several
 * chunks) a copy, the whole of which is the frame.
 */
export function forwardFlood(
  bytes: Uint8Array,
  start: number,
  end: number,
  framed: boolean,
  hops: number,
): Uint8Array {
  if (!framed) return encodeFloodForward(bytes, start, end, hops);
  setFloodHops(bytes, start, hops);
  return bytes;
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
  const frame = new Uint8Array(FLOOD_PAYLOAD_OFFSET + end - start);
  writeU32(frame, 0, 1 + end - start);
  frame[FRAME_HEADER_BYTES] = FrameType.Flood;
  frame.set(bytes.subarray(start, end), FLOOD_PAYLOAD_OFFSET);
  setFloodHops(frame, FLOOD_PAYLOAD_OFFSET, hops);
  return frame;
}
