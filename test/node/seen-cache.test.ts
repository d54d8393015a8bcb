import { describe, expect, test } from "bun:test";
import { SeenCache } from "../../src/node/seen-cache.ts";
import { randomInt, seededRandom, testSeed } from "../helpers/random.ts";

/** A 16-byte id whose last four bytes hold `n`, inside a larger buffer at `offset`. */
function id(n: number, offset = 0): Uint8Array {
  const b = new Uint8Array(offset + 16);
  new DataView(b.buffer).setUint32(offset + 12, n);
  return b;
}

describe("SeenCache", () => {
  test("remembers ids for its time-to-live, then forgets them", () => {
    const cache = new SeenCache(120_000, 1000);
    cache.add(id(1), 0, 0);
    expect(cache.has(id(1), 0)).toBe(true);
    expect(cache.has(id(2), 0)).toBe(false);
    cache.add(id(3), 0, 119_999);
    expect(cache.has(id(1), 0)).toBe(true);
    cache.add(id(4), 0, 120_000); // forgetting happens as new ids arrive
    expect(cache.has(id(1), 0)).toBe(false);
    expect(cache.has(id(3), 0)).toBe(true);
    expect(cache.size).toBe(2);
  });

  test("bounded by count: the oldest go first", () => {
    const cache = new SeenCache(120_000, 3);
    for (const n of [1, 2, 3, 4]) cache.add(id(n), 0, 0);
    expect(cache.size).toBe(3);
    expect(cache.has(id(1), 0)).toBe(false);
    expect([2, 3, 4].every((n) => cache.has(id(n), 0))).toBe(true);
  });

  test("reads the id wherever it sits in a buffer", () => {
    const cache = new SeenCache();
    cache.add(id(7, 5), 5, 0);
    expect(cache.has(id(7), 0)).toBe(true);
    expect(cache.has(id(7, 61), 61)).toBe(true);
  });

  test("ids differing in any single byte are different", () => {
    const cache = new SeenCache();
    const base = new Uint8Array(16).fill(0xab);
    cache.add(base, 0, 0);
    for (let i = 0; i < 16; i++) {
      const other = base.slice();
      other[i] = 0xac;
      expect(cache.has(other, 0)).toBe(false);
    }
  });

  test("agrees with a plain model through 300,000 seeded adds, expiries and evictions", () => {
    const seed = testSeed(0x5ee);
    const random = seededRandom(seed);
    const max = 5000;
    const ttl = 10_000;
    const cache = new SeenCache(ttl, max);
    // The model: ids in arrival order with times, forgotten the same way.
    const order: Array<[number, number]> = [];
    const present = new Set<number>();
    let now = 0;
    for (let i = 0; i < 300_000; i++) {
      now += randomInt(random, 3);
      const n = randomInt(random, 40_000); // repeats happen: an id arriving again
      if (random() < 0.5) {
        expect(cache.has(id(n), 0), `seed ${seed} step ${i}`).toBe(present.has(n));
        continue;
      }
      while (order.length > 0 && (order[0] as [number, number])[1] <= now - ttl)
        present.delete((order.shift() as [number, number])[0]);
      if (!present.has(n)) {
        if (order.length === max) present.delete((order.shift() as [number, number])[0]);
        order.push([n, now]);
        present.add(n);
      }
      cache.add(id(n), 0, now);
      expect(cache.size, `seed ${seed} step ${i}`).toBe(present.size);
    }
  });

  test("stays bounded through two million distinct ids", () => {
    const cache = new SeenCache(120_000, 100_000);
    const buf = new Uint8Array(16);
    const view = new DataView(buf.buffer);
    for (let i = 0; i < 2_000_000; i++) {
      view.setUint32(0, i);
      cache.add(buf, 0, i / 100);
    }
    expect(cache.size).toBe(100_000);
    view.setUint32(0, 1_999_999);
    expect(cache.has(buf, 0)).toBe(true);
    view.setUint32(0, 1_899_999);
    expect(cache.has(buf, 0)).toBe(false);
  });
});
