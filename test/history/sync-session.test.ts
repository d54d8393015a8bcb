import { describe, expect, test } from "bun:test";
import { MAX_SKETCH_CELLS } from "../../src/protocol/sync.ts";
import { seededRandom } from "../helpers/random.ts";
import { ids, round } from "../helpers/sync-round.ts";

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

  test("a neighbour listing more than twice the keys the store may hold is a protocol error; a little over is not", () => {
    const { a, b } = pair(5, 0, 5000, 0);
    expect(() => round(a, b, 2000)).toThrow("SYNC");
    const close = pair(6, 0, 2100, 0);
    expect(round(close.a, close.b, 2000).pushed.a.length).toBe(2100);
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
