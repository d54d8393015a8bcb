import { createHmac } from "node:crypto";
import { ByteWriter, encodeUtf8 } from "../protocol/byte-writer.ts";

/**
 * LAN discovery beacons (docs/PROTOCOL.md, "LAN discovery"): one UDP datagram of
 *
 *     "PCHB" | version u8 = 1 | flags u8 = 0 | tag 16 | nodeId 32 | tcpPort u16
 *
 * The tag tells peers of one room apart without naming the room: only a peer that knows
 * the room key can compute it. The only home of these offsets.
 */

/** UDP port beacons are sent to and received on. */
export const DISCOVERY_PORT = 9077;

/** IPv4 multicast group of beacons: administratively scoped (RFC 2365), so it stays local. */
export const DISCOVERY_GROUP = "239.255.70.77";

/** Width of a tag's time bucket. A receiver accepts the bucket before and after its own. */
export const BEACON_BUCKET_MS = 5 * 60 * 1000;

/** Bytes of a version 1 beacon; anything longer is dropped before it is decoded. */
export const BEACON_BYTES = 56;

/** Bytes of a room tag. */
export const BEACON_TAG_BYTES = 16;

/** Bytes of a node id (an X25519 public key). */
export const BEACON_NODE_ID_BYTES = 32;

/** The beacon version this code speaks. */
export const BEACON_VERSION = 1;

const MAGIC = [0x50, 0x43, 0x48, 0x42]; // "PCHB"
const HEADER_BYTES = MAGIC.length + 2; // magic, version, flags
const TAG_LABEL = encodeUtf8("peerchat beacon");

/** What a beacon says. Byte fields are copies: they may outlive the datagram. */
export interface Beacon {
  /** Room tag for one time bucket ({@link roomTag}). */
  readonly tag: Uint8Array;
  readonly nodeId: Uint8Array;
  /** TCP port the sender listens on; its host is the datagram's source address. */
  readonly port: number;
}

/** Why a datagram is not a beacon. */
export type BeaconProblem =
  /** Shorter than the magic, version and flags. */
  | "short"
  /** Does not start with "PCHB": some other protocol's packet. */
  | "magic"
  /** A version this code does not speak. */
  | "version"
  /** A version 1 beacon of the wrong length. */
  | "length";

/** Outcome of {@link decodeBeacon}. */
export type BeaconDecode =
  | { readonly ok: true; readonly beacon: Beacon }
  | { readonly ok: false; readonly reason: BeaconProblem };

/**
 * The datagram announcing `beacon`. Throws RangeError on fields of the wrong size (a bug:
 * the caller builds them from its own identity).
 */
export function encodeBeacon(beacon: Beacon): Uint8Array {
  const { tag, nodeId, port } = beacon;
  if (tag.length !== BEACON_TAG_BYTES) throw new RangeError(`tag is ${tag.length} bytes`);
  if (nodeId.length !== BEACON_NODE_ID_BYTES) {
    throw new RangeError(`node id is ${nodeId.length} bytes`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`port ${port} is not a u16`);
  }
  const w = new ByteWriter(BEACON_BYTES);
  for (const b of MAGIC) w.u8(b);
  return w.u8(BEACON_VERSION).u8(0).bytes(tag).bytes(nodeId).u16(port).done();
}

/**
 * Reads a datagram off the discovery port: any length, any bytes (it is hostile until it
 * parsed). Never throws. Flags are ignored, so that a later minor change can set them.
 * Port 0 and foreign tags parse: what to make of them is the caller's decision.
 */
export function decodeBeacon(bytes: Uint8Array): BeaconDecode {
  if (bytes.length < HEADER_BYTES) return { ok: false, reason: "short" };
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) return { ok: false, reason: "magic" };
  }
  if (bytes[MAGIC.length] !== BEACON_VERSION) return { ok: false, reason: "version" };
  if (bytes.length !== BEACON_BYTES) return { ok: false, reason: "length" };
  const tagAt = HEADER_BYTES;
  const nodeIdAt = tagAt + BEACON_TAG_BYTES;
  const portAt = nodeIdAt + BEACON_NODE_ID_BYTES;
  return {
    ok: true,
    beacon: {
      tag: bytes.slice(tagAt, nodeIdAt),
      nodeId: bytes.slice(nodeIdAt, portAt),
      port: (bytes[portAt]! << 8) | bytes[portAt + 1]!,
    },
  };
}

/**
 * The room tag for time bucket `bucket`: the first 16 bytes of
 * HMAC-SHA256(roomKey, "peerchat beacon" || bucket as u64 big-endian). It changes every
 * bucket, so a tag heard on a LAN names the room for minutes, not for ever.
 */
export function roomTag(roomKey: Uint8Array, bucket: number): Uint8Array {
  const message = new ByteWriter(TAG_LABEL.length + 8).bytes(TAG_LABEL).u64(bucket).done();
  const mac = createHmac("sha256", roomKey).update(message).digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, BEACON_TAG_BYTES).slice();
}

/** The tag time bucket `nowMs` (unix ms) falls in. */
export function bucketOf(nowMs: number): number {
  return Math.floor(nowMs / BEACON_BUCKET_MS);
}
