import { describe, expect, test } from "bun:test";
import {
  BEACON_BUCKET_MS,
  bucketOf,
  decodeBeacon,
  encodeBeacon,
  roomTag,
} from "../../src/discovery/beacon.ts";
import {
  ANSWER_INTERVAL_MS,
  BEACON_INTERVAL_MS,
  DIAL_INTERVAL_MS,
  DISCOVERED_TTL_MS,
  DISCOVERY_TICK_MS,
  Discovery,
  type DiscoveryAction,
  HOST_DIAL_WINDOW_MS,
  MAX_DIAL_BURST,
  MAX_DIALS_PER_HOST,
  MAX_DISCOVERED,
  MAX_DISCOVERED_PER_HOST,
} from "../../src/discovery/discovery.ts";
import { fromHex } from "../../src/protocol/hex.ts";
import { roomKey } from "../../src/secure/room.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

/** Mid-bucket, so that a test's few minutes stay in one bucket unless it moves on purpose. */
const T0 = (bucketOf(1_700_000_000_000) + 0.5) * BEACON_BUCKET_MS;
const ROOM = "lobby";
const ME = "aa".repeat(32);

/** A node id of `n`, as hex. */
function nodeId(n: number): string {
  return n.toString(16).padStart(64, "0");
}

function beaconOf(id: string, port: number, at = T0, room = ROOM, bucketShift = 0): Uint8Array {
  const tag = roomTag(roomKey(room), bucketOf(at) + bucketShift);
  return encodeBeacon({ tag, nodeId: fromHex(id), port });
}

/** A discovery with knobs for the node's state, and helpers to feed it. */
function setup() {
  const neighbours = new Set<string>();
  const state = { wantsMore: true };
  const discovery = new Discovery({
    nodeIdHex: ME,
    port: 7000,
    roomKey: roomKey(ROOM),
    isNeighbour: (id) => neighbours.has(id),
    wantsMore: () => state.wantsMore,
  });
  const hear = (host: string, bytes: Uint8Array, now: number) =>
    discovery.handle({ type: "beacon", host, bytes }, now);
  const tick = (now: number) => discovery.handle({ type: "tick" }, now);
  return { discovery, neighbours, state, hear, tick };
}

const sends = (actions: DiscoveryAction[]) => actions.filter((a) => a.type === "send-beacon");
const dials = (actions: DiscoveryAction[]) =>
  actions.flatMap((a) => (a.type === "dial" ? [a] : []));

describe("discovery - sending", () => {
  test("discovery - beacons at 0, 0.5, 1.5 and 3.5 s, then every 30 s", () => {
    const { discovery, tick } = setup();
    const sentAt: number[] = [];
    if (sends(discovery.handle({ type: "start" }, T0)).length > 0) sentAt.push(0);
    for (let t = DISCOVERY_TICK_MS; t <= 70_000; t += DISCOVERY_TICK_MS) {
      if (sends(tick(T0 + t)).length > 0) sentAt.push(t);
    }
    expect(sentAt).toEqual([
      0,
      500,
      1500,
      3500,
      3500 + BEACON_INTERVAL_MS,
      3500 + 2 * BEACON_INTERVAL_MS,
    ]);
    expect(discovery.stats.beaconsSent).toBe(6);
  });

  test("discovery - nothing is sent before start", () => {
    const { tick } = setup();
    expect(tick(T0)).toEqual([]);
  });

  test("discovery - the beacon carries this node, its port and the current bucket's tag", () => {
    const { discovery } = setup();
    const [send] = discovery.handle({ type: "start" }, T0);
    if (send?.type !== "send-beacon") throw new Error("no beacon sent");
    const decoded = decodeBeacon(send.bytes);
    expect(decoded).toEqual({
      ok: true,
      beacon: { tag: roomTag(roomKey(ROOM), bucketOf(T0)), nodeId: fromHex(ME), port: 7000 },
    });
  });

  test("discovery - the tag follows the clock into the next bucket", () => {
    const { discovery, tick } = setup();
    const start = (bucketOf(T0) + 1) * BEACON_BUCKET_MS - 10_000;
    discovery.handle({ type: "start" }, start);
    for (let t = start; t <= start + 40_000; t += DISCOVERY_TICK_MS) {
      for (const send of sends(tick(t))) {
        const decoded = decodeBeacon(send.type === "send-beacon" ? send.bytes : new Uint8Array());
        expect(decoded.ok && decoded.beacon.tag).toEqual(roomTag(roomKey(ROOM), bucketOf(t)));
      }
    }
    expect(discovery.stats.beaconsSent).toBeGreaterThan(4);
  });

  test("discovery - a new node id's beacon is answered at once, a known one's is not", () => {
    const { discovery, hear } = setup();
    discovery.handle({ type: "start" }, T0);
    const t = T0 + 2000;
    expect(sends(hear("10.0.0.2", beaconOf(nodeId(1), 9000), t))).toHaveLength(1);
    expect(sends(hear("10.0.0.2", beaconOf(nodeId(1), 9000), t + 1500))).toHaveLength(0);
  });

  test("discovery - answers go out at most once a second; a newcomer heard meanwhile is answered later", () => {
    const { discovery, hear, tick } = setup();
    discovery.handle({ type: "start" }, T0);
    for (let at = T0; at <= T0 + 4000; at += DISCOVERY_TICK_MS) tick(at); // the start schedule
    const t = T0 + 10_000;
    expect(sends(hear("10.0.0.2", beaconOf(nodeId(1), 9000), t))).toHaveLength(1);
    expect(sends(hear("10.0.0.3", beaconOf(nodeId(2), 9000), t + 100))).toHaveLength(0);
    expect(sends(hear("10.0.0.4", beaconOf(nodeId(3), 9000), t + 200))).toHaveLength(0);
    expect(sends(tick(t + ANSWER_INTERVAL_MS - DISCOVERY_TICK_MS))).toHaveLength(0);
    expect(sends(tick(t + ANSWER_INTERVAL_MS))).toHaveLength(1);
    expect(sends(tick(t + 2 * ANSWER_INTERVAL_MS))).toHaveLength(0);
  });

  test("discovery - a scheduled beacon serves as the answer to newcomers heard before it", () => {
    const { discovery, hear, tick } = setup();
    discovery.handle({ type: "start" }, T0);
    expect(sends(hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0 + 100))).toHaveLength(1);
    expect(sends(hear("10.0.0.3", beaconOf(nodeId(2), 9000), T0 + 200))).toHaveLength(0);
    expect(sends(tick(T0 + 500))).toHaveLength(1); // scheduled
    expect(sends(tick(T0 + 1250))).toHaveLength(0); // nothing left to answer
  });
});

describe("discovery - what is ignored", () => {
  test("discovery - own beacons, other rooms, port 0 and garbage are counted and ignored", () => {
    const { discovery, hear } = setup();
    const t = T0 + 60_000;
    const cases: Array<[Uint8Array, string]> = [
      [beaconOf(ME, 7000, t), "own"],
      [beaconOf(nodeId(1), 9000, t, "another room"), "wrong-room"],
      [beaconOf(nodeId(1), 9000, t, ROOM, 2), "wrong-room"],
      [beaconOf(nodeId(1), 9000, t, ROOM, -2), "wrong-room"],
      [beaconOf(nodeId(1), 0, t), "port-zero"],
      [new Uint8Array(57), "too-big"],
      [new Uint8Array(65_000), "too-big"],
      [new Uint8Array(3), "short"],
      [new TextEncoder().encode("NOTIFY * HTTP/1.1\r\n"), "magic"],
    ];
    for (const [bytes] of cases) expect(hear("10.0.0.2", bytes, t)).toEqual([]);
    const expected: Record<string, number> = {};
    for (const [, reason] of cases) expected[reason] = (expected[reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(expected)) {
      expect(discovery.stats.ignored[reason as keyof typeof discovery.stats.ignored]).toBe(n);
    }
    expect(discovery.stats.beaconsAccepted).toBe(0);
    expect(discovery.discovered()).toEqual([]);
  });

  test.each([-1, 0, 1])(
    "discovery - a tag of bucket %d from ours is accepted (clock skew)",
    (shift) => {
      const { discovery, hear } = setup();
      const actions = hear("10.0.0.2", beaconOf(nodeId(1), 9000, T0, ROOM, shift), T0);
      expect(dials(actions)).toHaveLength(1);
      expect(discovery.stats.beaconsAccepted).toBe(1);
    },
  );

  test("discovery - random datagrams from many hosts never throw and never dial", () => {
    const seed = testSeed(4242);
    const random = seededRandom(seed);
    const { discovery, hear, tick } = setup();
    discovery.handle({ type: "start" }, T0);
    let t = T0;
    try {
      for (let i = 0; i < 3000; i++) {
        t += randomInt(random, 50);
        const host = `10.0.${randomInt(random, 4)}.${randomInt(random, 256)}`;
        const bytes = randomBytes(random, randomInt(random, 80));
        if (random() < 0.5) bytes.set([0x50, 0x43, 0x48, 0x42, 1].slice(0, bytes.length));
        expect(dials(hear(host, bytes, t))).toEqual([]);
        if (i % 10 === 0) expect(dials(tick(t))).toEqual([]);
      }
    } catch (error) {
      throw new Error(`seed ${seed}: ${error}`);
    }
    expect(discovery.stats.beaconsAccepted).toBe(0);
  });
});

describe("discovery - dialling", () => {
  test("discovery - a peer heard is dialled at its source host and beacon port", () => {
    const { hear } = setup();
    expect(dials(hear("192.168.1.7", beaconOf(nodeId(1), 9001), T0))).toEqual([
      { type: "dial", endpoint: { host: "192.168.1.7", port: 9001 }, nodeIdHex: nodeId(1) },
    ]);
  });

  test("discovery - a neighbour is not dialled, nor anyone once the node has enough", () => {
    const { hear, neighbours, state } = setup();
    neighbours.add(nodeId(1));
    expect(dials(hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0))).toEqual([]);
    state.wantsMore = false;
    expect(dials(hear("10.0.0.3", beaconOf(nodeId(2), 9000), T0))).toEqual([]);
  });

  test("discovery - a node id is dialled at most once per 10 s while it is not a neighbour", () => {
    const { hear, tick } = setup();
    const bytes = beaconOf(nodeId(1), 9000);
    const dialledAt: number[] = [];
    for (let t = 0; t <= 25_000; t += DISCOVERY_TICK_MS) {
      const actions = t % 1000 === 0 ? hear("10.0.0.2", bytes, T0 + t) : tick(T0 + t);
      if (dials(actions).length > 0) dialledAt.push(t);
    }
    expect(dialledAt).toEqual([0, DIAL_INTERVAL_MS, 2 * DIAL_INTERVAL_MS]);
  });

  test("discovery - a peer heard while the node was full is dialled once it wants more", () => {
    const { hear, tick, state } = setup();
    state.wantsMore = false;
    expect(dials(hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0))).toEqual([]);
    expect(dials(tick(T0 + 250))).toEqual([]);
    state.wantsMore = true;
    expect(dials(tick(T0 + 500)).map((d) => d.nodeIdHex)).toEqual([nodeId(1)]);
  });

  test("discovery - a flood of node ids from one host dials at most 4 of its endpoints per 10 s", () => {
    const { discovery, hear, tick } = setup();
    const dialled: string[] = [];
    for (let i = 0; i < 200; i++) {
      const t = T0 + i * 20; // 200 beacons in 4 s
      const actions = [...hear("10.6.6.6", beaconOf(nodeId(1000 + i), 20_000 + i), t), ...tick(t)];
      for (const d of dials(actions)) dialled.push(`${d.endpoint.host}:${d.endpoint.port}`);
    }
    expect(new Set(dialled).size).toBe(MAX_DIALS_PER_HOST);
    expect(discovery.stats.hostLimited).toBeGreaterThan(0);
    // Another host is not held back by it.
    expect(dials(hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0 + 5000))).toHaveLength(1);
    // And the flooding host gets a new allowance once the window has passed.
    const later = T0 + HOST_DIAL_WINDOW_MS + 5000;
    expect(dials(hear("10.6.6.6", beaconOf(nodeId(5000), 30_000), later))).toHaveLength(1);
  });

  test("discovery - dials come in bursts of at most 4 a second; the rest follow on later ticks", () => {
    const { hear, tick } = setup();
    let n = 0;
    for (let i = 0; i < 10; i++)
      n += dials(hear(`10.0.0.${10 + i}`, beaconOf(nodeId(i + 1), 9000), T0)).length;
    expect(n).toBe(MAX_DIAL_BURST);
    expect(dials(tick(T0 + 250))).toHaveLength(0);
    expect(dials(tick(T0 + 1000))).toHaveLength(MAX_DIAL_BURST);
    expect(dials(tick(T0 + 2000))).toHaveLength(10 - 2 * MAX_DIAL_BURST);
  });
});

describe("discovery - the table", () => {
  test("discovery - holds at most 256 node ids, the least recently heard go first", () => {
    const { discovery, hear, state } = setup();
    state.wantsMore = false;
    const total = MAX_DISCOVERED + 50;
    for (let i = 0; i < total; i++) {
      hear(`10.1.${i >> 8}.${i & 0xff}`, beaconOf(nodeId(i + 1), 9000), T0 + i);
    }
    const ids = discovery.discovered().map((p) => p.nodeIdHex);
    expect(ids).toHaveLength(MAX_DISCOVERED);
    expect(ids[0]).toBe(nodeId(51));
    expect(discovery.stats.evicted).toBe(50);
  });

  test("discovery - one host's made-up node ids push out its own entries, not others'", () => {
    const { discovery, hear, state } = setup();
    state.wantsMore = false;
    for (let i = 0; i < 10; i++) hear(`10.0.0.${i + 1}`, beaconOf(nodeId(i + 1), 9000), T0);
    for (let i = 0; i < 1000; i++) hear("10.6.6.6", beaconOf(nodeId(1000 + i), 9000), T0 + 1 + i);
    const peers = discovery.discovered();
    expect(peers.filter((p) => p.endpoint.host === "10.6.6.6")).toHaveLength(
      MAX_DISCOVERED_PER_HOST,
    );
    expect(peers.filter((p) => p.endpoint.host !== "10.6.6.6")).toHaveLength(10);
  });

  test("discovery - a node id not heard for a while is forgotten, and answered again when back", () => {
    const { discovery, hear, tick, state } = setup();
    state.wantsMore = false;
    discovery.handle({ type: "start" }, T0);
    hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0 + 5000);
    tick(T0 + 5000 + DISCOVERED_TTL_MS - DISCOVERY_TICK_MS);
    expect(discovery.discovered()).toHaveLength(1);
    tick(T0 + 5000 + DISCOVERED_TTL_MS);
    expect(discovery.discovered()).toHaveLength(0);
    const back = T0 + 5000 + DISCOVERED_TTL_MS + 100;
    expect(sends(hear("10.0.0.2", beaconOf(nodeId(1), 9000, back), back))).toHaveLength(1);
  });

  test("discovery - a peer's latest source address and port are the ones dialled", () => {
    const { discovery, hear, state } = setup();
    state.wantsMore = false;
    hear("10.0.0.2", beaconOf(nodeId(1), 9000), T0);
    hear("10.0.0.3", beaconOf(nodeId(1), 9001), T0 + 100);
    expect(discovery.discovered().map((p) => p.endpoint)).toEqual([
      { host: "10.0.0.3", port: 9001 },
    ]);
  });

  test("discovery - a node id that is not 64 hex digits is a bug", () => {
    expect(
      () =>
        new Discovery({
          nodeIdHex: "abc",
          port: 1,
          roomKey: roomKey(ROOM),
          isNeighbour: () => false,
          wantsMore: () => true,
        }),
    ).toThrow(RangeError);
  });
});
