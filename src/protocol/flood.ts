import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, writeU32 } from "./byte-writer.ts";
import { FRAME_HEADER_BYTES, FrameType, MESSAGE_ID_BYTES, NODE_ID_BYTES } from "./constants.ts";

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
  readonly body: Uint8Array;
}

/** Bytes of the FLOOD envelope before the body. */
export const FLOOD_HEADER_BYTES = MESSAGE_ID_BYTES + NODE_ID_BYTES + 4 + 8 + 1 + 1;

/** Offset of the `hops` byte within a FLOOD payload. */
export const FLOOD_HOPS_OFFSET = MESSAGE_ID_BYTES + NODE_ID_BYTES + 4 + 8;

/** Encodes a FLOOD frame. */
export function encodeFlood(flood: Flood): Uint8Array {
  return ByteWriter.frame(FrameType.Flood, FLOOD_HEADER_BYTES + flood.body.length)
    .bytes(flood.id)
    .bytes(flood.origin)
    .u32(flood.seq)
    .u64(flood.sentAt)
    .u8(flood.hops)
    .u8(flood.kind)
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
  return { id, origin, seq, sentAt, hops, kind, body: r.rest() };
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
