import { expect, test } from "bun:test";
import {
  DEFAULT_FLOOD_LIMITS,
  MAX_TRACKED_ORIGINS,
  NO_FLOOD_LIMITS,
  OriginLimiter,
  TokenBucket,
} from "../../src/node/flood-limits.ts";

test("a token bucket allows its burst at once, then its rate", () => {
  const bucket = new TokenBucket(100, 500, 0);
  let taken = 0;
  while (bucket.take(0)) taken++;
  expect(taken).toBe(500);
  expect(bucket.waitMs(0)).toBe(10);
  // One second later: 100 more, not a token beyond.
  taken = 0;
  while (bucket.take(1000)) taken++;
  expect(taken).toBe(100);
  // Never more than the burst, however long the pause.
  taken = 0;
  while (bucket.take(1_000_000)) taken++;
  expect(taken).toBe(500);
});

test("an infinite rate never refuses", () => {
  const bucket = new TokenBucket(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 0);
  for (let i = 0; i < 100_000; i++) expect(bucket.take(0)).toBe(true);
  expect(bucket.waitMs(0)).toBe(0);
});

test("origins are limited each on their own, and the table stays bounded", () => {
  const limiter = new OriginLimiter(DEFAULT_FLOOD_LIMITS);
  let a = 0;
  while (limiter.allow("alice", 0)) a++;
  expect(a).toBe(DEFAULT_FLOOD_LIMITS.perOriginBurst);
  expect(limiter.allow("bob", 0)).toBe(true);
  for (let i = 0; i < MAX_TRACKED_ORIGINS * 2; i++) limiter.allow(`origin ${i}`, 0);
  expect(limiter.size).toBe(MAX_TRACKED_ORIGINS);
  expect(new OriginLimiter(NO_FLOOD_LIMITS).allow("anyone", 0)).toBe(true);
});
