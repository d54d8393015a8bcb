import { expect, test } from "bun:test";
import { GAP_GRACE_MS, GapTracker, MAX_TRACKED_MISSING } from "../../src/history/gaps.ts";

test("a gap in an origin's seq is reported once, after the grace, unless it is filled", () => {
  const gaps = new GapTracker();
  gaps.saw("a", 1, 0);
  gaps.saw("a", 4, 0); // 2 and 3 missing
  gaps.saw("b", 7, 0); // b's first: nothing before it counts
  gaps.saw("b", 9, 0); // 8 missing
  gaps.saw("a", 3, 1000); // 3 arrives late
  expect(gaps.due(GAP_GRACE_MS - 1)).toEqual([]);
  expect(gaps.due(GAP_GRACE_MS)).toEqual([
    { origin: "a", count: 1 },
    { origin: "b", count: 1 },
  ]);
  expect(gaps.due(GAP_GRACE_MS * 2)).toEqual([]);
});

test("the store's highest seq is where tracking starts", () => {
  const gaps = new GapTracker();
  gaps.seed("a", 10);
  gaps.saw("a", 13, 0);
  expect(gaps.missingCount).toBe(2);
  gaps.saw("a", 11, 0);
  gaps.saw("a", 12, 0);
  expect(gaps.due(GAP_GRACE_MS)).toEqual([]);
});

test("an origin that jumps its seq by billions costs bounded memory", () => {
  const gaps = new GapTracker();
  gaps.saw("evil", 1, 0);
  gaps.saw("evil", 4_000_000_000, 0);
  expect(gaps.missingCount).toBe(MAX_TRACKED_MISSING);
  expect(gaps.due(GAP_GRACE_MS)).toEqual([{ origin: "evil", count: MAX_TRACKED_MISSING }]);
  expect(gaps.missingCount).toBe(0);
});
