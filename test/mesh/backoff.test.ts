import { expect, test } from "bun:test";
import { backoffMs, jitter } from "../../src/mesh/backoff.ts";

test("back-off doubles from 1 s and stops at 30 s", () => {
  expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffMs(n))).toEqual([
    1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
  ]);
});

test("jitter takes off up to 40 %, never adds: no delay passes the 30 s cap", () => {
  expect(jitter(1000, () => 0)).toBe(1000);
  expect(jitter(1000, () => 0.5)).toBe(800);
  expect(jitter(1000, () => 0.999999)).toBe(600);
  expect(jitter(backoffMs(99), () => 0)).toBe(30_000);
});
