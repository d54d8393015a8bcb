import { describe, expect, test } from "bun:test";
import { type SyncAction, SyncSession, type SyncView } from "../../src/history/sync-session.ts";
import { MAX_SKETCH_CELLS } from "../../src/protocol/sync.ts";
import { seededRandom } from "../helpers/random.ts";

const NOW = 1_800_000_000_000;
const KEEP_MS = 7 * 86_400_000;

/** A store's ids: `n` random 16-byte ids (latin1) sent over the last day. */
function ids(random: () => number, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    let id = "";
    for (let j = 0; j < 16; j++) id += String.fromCharCode(Math.floor(random() * 256));
    m.set(id, NOW - Math.floor(random() * 86_400_000));
  }
  return m;
}

function view(m: Map<string, number>, maxMessages = 200_000): SyncView {
  return { ids: () => m, horizon: (now) => now - KEEP_MS, maxMessages };
}

/**
 * Runs one round between two stores, in memory: returns what each side pushed, the
 * frames each way and their bytes, and the round trips (a reply to the other side's
 * frames is one more half trip).
 */
function round(a: Map<string, number>, b: Map<string, number>, maxMessages?: number) {
  const [initiator, begin] = SyncSession.begin(7, [1, 2], view(a, maxMessages), NOW);
  let responder: SyncSession | undefined;
  const pushed = { a: [] as string[], b: [] as string[] };
  const bytes = { a: begin.length, b: 0 };
  let halfTrips = 1;
  let toB: Uint8Array[] = [begin];
  let toA: Uint8Array[] = [];
  const take = (actions: SyncAction[], side: "a" | "b", out: Uint8Array[]) => {
    for (const action of actions) {
      if (action.kind === "send") {
        out.push(action.frame);
        bytes[side] += action.frame.length;
      } else if (action.kind === "push") pushed[side].push(...action.ids);
    }
  };
  while (toB.length > 0 || toA.length > 0) {
    const next: Uint8Array[] = [];
    for (const frame of toB) {
      const message = SyncSession.decode(frame.subarray(5));
      if (responder === undefined && message.op === 1) {
        const [session, actions] = SyncSession.answer(message, view(b, maxMessages), NOW);
        responder = session;
        take(actions, "b", next);
      } else take((responder as SyncSession).receive(message), "b", next);
    }
    toB = [];
    if (next.length > 0) halfTrips++;
    toA = next;
    const back: Uint8Array[] = [];
    for (const frame of toA)
      take(initiator.receive(SyncSession.decode(frame.subarray(5))), "a", back);
    toA = [];
    if (back.length > 0) halfTrips++;
    toB = back;
  }
  return {
    initiator,
    responder: responder as SyncSession,
    pushed,
    bytes,
    roundTrips: halfTrips / 2,
  };
}

/** Two stores sharing `common` ids, each with `extra` of its own. */
function pair(seed: number, common: number, extraA: number, extraB: number) {
  const random = seededRandom(seed);
  const shared = ids(random, common);
  const onlyA = ids(random, extraA);
  const onlyB = ids(random, extraB);
  return {
    a: new Map([...shared, ...onlyA]),
    b: new Map([...shared, ...onlyB]),
    onlyA: [...onlyA.keys()].sort(),
    onlyB: [...onlyB.keys()].sort(),
  };
}

describe("a reconciliation round", () => {
  test("two stores of 100,000 in sync: one round trip, a few dozen bytes each way", () => {
    const { a, b } = pair(1, 100_000, 0, 0);
    const r = round(a, b);
    expect(r.roundTrips).toBe(1);
    expect(r.bytes.a).toBeLessThan(100);
    expect(r.bytes.b).toBeLessThan(100);
    expect(r.pushed).toEqual({ a: [], b: [] });
    expect(r.initiator.done && r.responder.done).toBe(true);
  });

  test.each([
    [10, 0],
    [0, 10],
    [500, 500],
    [1, 999],
  ])(
    "a difference (%i, %i) in 100,000: each side pushes exactly what the other lacks, and the bytes beyond the keys stay small",
    (extraA, extraB) => {
      const { a, b, onlyA, onlyB } = pair(
        2 + extraA,
        100_000 - Math.max(extraA, extraB),
        extraA,
        extraB,
      );
      const r = round(a, b);
      expect(r.pushed.a.sort()).toEqual(onlyA);
      expect(r.pushed.b.sort()).toEqual(onlyB);
      const total = r.bytes.a + r.bytes.b;
      // 1,000 differences: under 64 KB in all (strata, sketch, wants).
      expect(total).toBeLessThan(64 * 1024);
      console.log(
        `difference ${extraA}+${extraB}: ${r.bytes.a} + ${r.bytes.b} bytes, ${r.roundTrips} round trips`,
      );
    },
  );

  test("an empty store against a full one: the full side's keys are listed, everything is pushed", () => {
    const { a, b, onlyB } = pair(3, 0, 0, 20_000);
    const r = round(a, b);
    expect(r.pushed.b.sort()).toEqual(onlyB);
    expect(r.pushed.a).toEqual([]);
  });

  test("a difference too large for one sketch falls back to listing keys", () => {
    const { a, b, onlyA, onlyB } = pair(4, 1000, 6000, 100);
    const r = round(a, b);
    expect(r.pushed.a.sort()).toEqual(onlyA);
    expect(r.pushed.b.sort()).toEqual(onlyB);
    expect(MAX_SKETCH_CELLS).toBeLessThan(6100 * 1.5);
  });

  test("a neighbour listing more keys than the store may hold is a protocol error", () => {
    const { a, b } = pair(5, 0, 3000, 0);
    expect(() => round(a, b, 2000)).toThrow("SYNC");
  });

  test("the responder expects exactly the messages it asked for, once each", () => {
    const { a, b, onlyA } = pair(6, 1000, 3, 0);
    const r = round(a, b);
    const bytes = (id: string) => Uint8Array.from(id, (c) => c.charCodeAt(0));
    expect(r.responder.expects(bytes("x".repeat(16)), 0)).toBe(false);
    for (const id of onlyA) expect(r.responder.expects(bytes(id), 0)).toBe(true);
    for (const id of onlyA) expect(r.responder.expects(bytes(id), 0)).toBe(false);
  });
});
