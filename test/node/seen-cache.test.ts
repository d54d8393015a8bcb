import { describe, expect, test } from "bun:test";
import { messageKey, SeenCache } from "../../src/node/seen-cache.ts";

const id = (n: number) => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(12, n);
  return b;
};

describe("SeenCache", () => {
  test("remembers ids for its time-to-live, then forgets them", () => {
    let now = 0;
    const cache = new SeenCache(() => now, 120_000, 1000);
    cache.add("a");
    now = 119_999;
    expect(cache.has("a")).toBe(true);
    now = 120_000;
    expect(cache.has("a")).toBe(false);
    expect(cache.size).toBe(0);
  });

  test("bounded by count: the oldest go first", () => {
    const now = 0;
    const cache = new SeenCache(() => now, 120_000, 3);
    for (const k of ["a", "b", "c", "d"]) cache.add(k);
    expect(cache.size).toBe(3);
    expect(cache.has("a")).toBe(false);
    expect(["b", "c", "d"].every((k) => cache.has(k))).toBe(true);
  });

  test("adding an id twice keeps its first arrival time", () => {
    let now = 0;
    const cache = new SeenCache(() => now, 100, 10);
    cache.add("a");
    now = 60;
    cache.add("a");
    now = 100;
    expect(cache.has("a")).toBe(false);
  });

  test("stays bounded over a million distinct ids", () => {
    let now = 0;
    const cache = new SeenCache(() => now, 120_000, 100_000);
    for (let i = 0; i < 1_000_000; i++) {
      cache.add(messageKey(id(i)));
      now += 0.01;
    }
    expect(cache.size).toBe(100_000);
    expect(cache.has(messageKey(id(999_999)))).toBe(true);
    expect(cache.has(messageKey(id(899_999)))).toBe(false);
  });

  test("message keys are exact: equal ids collide, different ids never do", () => {
    const a = id(1);
    expect(messageKey(a)).toBe(messageKey(a.slice()));
    expect(messageKey(a)).not.toBe(messageKey(id(2)));
    const high = new Uint8Array(16).fill(0xff);
    const low = new Uint8Array(16).fill(0xfe);
    expect(messageKey(high)).not.toBe(messageKey(low));
    expect(messageKey(high)).toHaveLength(16);
  });
});
