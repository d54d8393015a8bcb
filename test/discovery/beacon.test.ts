import { describe, expect, test } from "bun:test";
import {
  BEACON_BUCKET_MS,
  BEACON_BYTES,
  type BeaconProblem,
  bucketOf,
  decodeBeacon,
  encodeBeacon,
  roomTag,
} from "../../src/discovery/beacon.ts";
import { hex } from "../../src/protocol/hex.ts";
import { roomKey } from "../../src/secure/room.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

const TAG = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const NODE_ID = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

function beaconBytes(port = 9000): Uint8Array {
  return encodeBeacon({ tag: TAG, nodeId: NODE_ID, port });
}

describe("beacon codec", () => {
  test("beacon - lays out magic, version, flags, tag, node id and port", () => {
    const bytes = beaconBytes(0x2328);
    expect(bytes.length).toBe(BEACON_BYTES);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe("PCHB");
    expect([bytes[4], bytes[5]]).toEqual([1, 0]);
    expect(bytes.subarray(6, 22)).toEqual(TAG);
    expect(bytes.subarray(22, 54)).toEqual(NODE_ID);
    expect([bytes[54], bytes[55]]).toEqual([0x23, 0x28]);
  });

  test.each([0, 1, 9000, 65535])("beacon - port %d survives a round trip", (port) => {
    const decoded = decodeBeacon(beaconBytes(port));
    expect(decoded).toEqual({ ok: true, beacon: { tag: TAG, nodeId: NODE_ID, port } });
  });

  test("beacon - decoded fields are copies, not views of the datagram", () => {
    const bytes = beaconBytes();
    const decoded = decodeBeacon(bytes);
    bytes.fill(0xff);
    expect(decoded.ok && decoded.beacon.nodeId).toEqual(NODE_ID);
    expect(decoded.ok && decoded.beacon.tag).toEqual(TAG);
  });

  test("beacon - flags are ignored, for a later minor change to use", () => {
    const bytes = beaconBytes();
    bytes[5] = 0xff;
    expect(decodeBeacon(bytes).ok).toBe(true);
  });

  const malformed: Array<[string, Uint8Array, BeaconProblem]> = [
    ["empty", new Uint8Array(0), "short"],
    ["five bytes of a beacon", beaconBytes().subarray(0, 5), "short"],
    ["another protocol", new TextEncoder().encode("M-SEARCH * HTTP/1.1\r\n"), "magic"],
    ["magic off by one bit", Uint8Array.of(0x51, ...beaconBytes().subarray(1)), "magic"],
    [
      "version 0",
      Uint8Array.of(...beaconBytes().subarray(0, 4), 0, ...beaconBytes().subarray(5)),
      "version",
    ],
    [
      "version 2",
      Uint8Array.of(...beaconBytes().subarray(0, 4), 2, ...beaconBytes().subarray(5)),
      "version",
    ],
    ["one byte short", beaconBytes().subarray(0, BEACON_BYTES - 1), "length"],
    ["one byte long", Uint8Array.of(...beaconBytes(), 0), "length"],
    ["header only", beaconBytes().subarray(0, 6), "length"],
  ];
  test.each(malformed)("beacon - %s is refused as %s", (_, bytes, reason) => {
    expect(decodeBeacon(bytes)).toEqual({ ok: false, reason });
  });

  test("beacon - random datagrams of any length never throw", () => {
    const seed = testSeed(1313);
    const random = seededRandom(seed);
    const valid = beaconBytes();
    try {
      for (let i = 0; i < 5000; i++) {
        const bytes =
          i % 2 === 0
            ? randomBytes(random, randomInt(random, 2 * BEACON_BYTES))
            : valid.map((b) => (random() < 0.05 ? randomInt(random, 256) : b));
        const decoded = decodeBeacon(bytes);
        expect(typeof decoded.ok).toBe("boolean");
      }
    } catch (error) {
      throw new Error(`seed ${seed}: ${error}`);
    }
  });

  test.each([
    ["a short tag", { tag: TAG.subarray(1), nodeId: NODE_ID, port: 1 }],
    ["a long node id", { tag: TAG, nodeId: new Uint8Array(33), port: 1 }],
    ["a negative port", { tag: TAG, nodeId: NODE_ID, port: -1 }],
    ["a port past u16", { tag: TAG, nodeId: NODE_ID, port: 65536 }],
    ["a fractional port", { tag: TAG, nodeId: NODE_ID, port: 1.5 }],
  ])("beacon - encoding %s is a bug", (_, beacon) => {
    expect(() => encodeBeacon(beacon)).toThrow(RangeError);
  });
});

describe("room tag", () => {
  test("tag - is HMAC-SHA256(room key, label || bucket u64 BE), first 16 bytes", () => {
    const key = roomKey("lobby");
    const message = new Uint8Array(15 + 8);
    message.set(new TextEncoder().encode("peerchat beacon"));
    new DataView(message.buffer).setBigUint64(15, 123456n);
    const mac = new Bun.CryptoHasher("sha256", key).update(message).digest("hex");
    expect(hex(roomTag(key, 123456))).toBe(mac.slice(0, 32));
  });

  test("tag - pinned value: changing it splits discovery between versions", () => {
    expect(hex(roomTag(roomKey("lobby"), 0))).toBe("f15a48df91a5bc6652cf134c1adb02b0");
  });

  test("tag - differs between rooms and between buckets", () => {
    const bucket = bucketOf(Date.now());
    const tags = [
      roomTag(roomKey("lobby"), bucket),
      roomTag(roomKey("lobby"), bucket + 1),
      roomTag(roomKey("Lobby"), bucket),
    ].map(hex);
    expect(new Set(tags).size).toBe(3);
    expect(hex(roomTag(roomKey("lobby"), bucket))).toBe(tags[0]!);
  });

  test("tag - never contains the room name", () => {
    const name = "secret";
    const tag = new TextDecoder("latin1").decode(roomTag(roomKey(name), bucketOf(Date.now())));
    expect(tag.includes(name)).toBe(false);
  });

  test.each([
    [0, 0],
    [BEACON_BUCKET_MS - 1, 0],
    [BEACON_BUCKET_MS, 1],
    [1_700_000_000_000, Math.floor(1_700_000_000_000 / BEACON_BUCKET_MS)],
  ])("bucket - %d ms is bucket %d", (ms, bucket) => {
    expect(bucketOf(ms)).toBe(bucket);
  });
});
