import { describe, expect, test } from "bun:test";
import {
  AbuseGuard,
  type GuardVerdict,
  MAX_BARRED_IDS,
  MAX_FORGED_PER_LINK,
} from "../../src/node/abuse-guard.ts";
import {
  ABUSE_BAR_MS,
  DEFAULT_FLOOD_LIMITS,
  type FloodLimits,
  THROTTLE_WINDOW_MS,
} from "../../src/node/flood-limits.ts";
import { WireErrorCode } from "../../src/protocol/constants.ts";

/** 10 FLOODs a second, a burst of 5; disconnected after 4 drops in a window. */
const SMALL: FloodLimits = {
  perNeighbourPerSecond: 10,
  perNeighbourBurst: 5,
  perOriginPerSecond: 1,
  perOriginBurst: 1,
  disconnectAfterDrops: 4,
};

const KEY = "ab".repeat(32);

/** How many of `count` FLOODs, one every `everyMs` from `from`, the bucket lets through. */
function passed(guard: AbuseGuard, count: number, everyMs: number, from = 0): number {
  const state = guard.track(from);
  let n = 0;
  for (let i = 0; i < count; i++) if (state.bucket.take(from + i * everyMs)) n++;
  return n;
}

const actions = (verdicts: GuardVerdict[]) => verdicts.map((v) => v.action);

describe("AbuseGuard", () => {
  describe("a neighbour's bucket", () => {
    test.each([
      ["small limits", SMALL],
      ["the defaults", DEFAULT_FLOOD_LIMITS],
    ])("with %s allows the burst at once, then refuses", (_name, limits) => {
      const state = new AbuseGuard(limits).track(0);
      let taken = 0;
      while (taken <= limits.perNeighbourBurst && state.bucket.take(0)) taken++;
      expect(taken).toBe(limits.perNeighbourBurst);
      expect(state.bucket.take(0)).toBe(false);
    });

    test.each([
      // [name, limits, FLOODs, one every ms, how many pass]. Above the rate the last FLOOD
      // goes half a token short of 10 s, so 10 s of rate less one pass on top of the burst.
      ["small: at the rate for 10 s, none refused", SMALL, 100, 100, 100],
      ["small: twice the rate for 10 s, burst plus rate pass", SMALL, 200, 50, 5 + 99],
      ["defaults: at the rate for 10 s, none refused", DEFAULT_FLOOD_LIMITS, 10_000, 1, 10_000],
      [
        "defaults: twice the rate for 10 s, burst plus rate pass",
        DEFAULT_FLOOD_LIMITS,
        20_000,
        0.5,
        5000 + 9999,
      ],
    ])("sustained, %s", (_name, limits, count, everyMs, expected) => {
      expect(passed(new AbuseGuard(limits), count, everyMs)).toBe(expected);
    });

    test("each link has its own bucket", () => {
      const guard = new AbuseGuard(SMALL);
      const a = guard.track(0);
      const b = guard.track(0);
      while (a.bucket.take(0));
      expect(b.bucket.take(0)).toBe(true);
    });
  });

  describe("rate drops", () => {
    test("the window opens at the first drop: a burst across an old window's edge still disconnects", () => {
      const guard = new AbuseGuard(SMALL);
      const state = guard.track(0);
      const times = [9_999, 9_999, 9_999, 10_001, 10_001, 10_001];
      const verdicts = times.map((t) => guard.throttled(state, KEY, t));
      expect(actions(verdicts)).toContain("disconnect");
    });

    test("the first drop warns once, the next drop quietly, and the limit disconnects with ERROR 10 and bars the id", () => {
      const guard = new AbuseGuard(SMALL);
      const state = guard.track(0);
      const verdicts = [1, 2, 3, 4].map((t) => guard.throttled(state, KEY, t * 100));
      expect(verdicts[0]).toEqual({
        action: "warn",
        message: "sends FLOODs faster than 10/s: dropping the excess",
      });
      expect(actions(verdicts)).toEqual(["warn", "drop", "drop", "disconnect"]);
      expect(verdicts[3]).toEqual({
        action: "disconnect",
        close: {
          kind: "error",
          code: WireErrorCode.RateLimited,
          message: "over the FLOOD rate limit (10/s)",
        },
      });
      expect(guard.barOf(KEY, 400)).toEqual({
        code: WireErrorCode.RateLimited,
        remainingMs: ABUSE_BAR_MS,
      });
    });

    test.each([
      ["the last drop at the window's end still counts", THROTTLE_WINDOW_MS, "disconnect"],
      ["a drop after the window starts a new count", THROTTLE_WINDOW_MS + 1, "no disconnect"],
    ])("%s", (_name, at, expected) => {
      const guard = new AbuseGuard(SMALL);
      const state = guard.track(0);
      for (let i = 0; i < SMALL.disconnectAfterDrops - 1; i++) guard.throttled(state, KEY, 0);
      const last = guard.throttled(state, KEY, at);
      expect(last.action === "disconnect" ? "disconnect" : "no disconnect").toBe(expected);
      expect(guard.barOf(KEY, at) !== undefined).toBe(expected === "disconnect");
    });

    test("after the window resets, it takes the full count again to disconnect", () => {
      const guard = new AbuseGuard(SMALL);
      const state = guard.track(0);
      for (let i = 0; i < SMALL.disconnectAfterDrops - 1; i++) guard.throttled(state, KEY, 0);
      const later = THROTTLE_WINDOW_MS + 1;
      const verdicts = [0, 1, 2, 3].map((i) => guard.throttled(state, KEY, later + i));
      expect(verdicts.map((v) => v.action !== "disconnect")).toEqual([true, true, true, false]);
    });

    test("a neighbour without an id yet is disconnected but nobody is barred", () => {
      const guard = new AbuseGuard({ ...SMALL, disconnectAfterDrops: 1 });
      expect(guard.throttled(guard.track(0), undefined, 0).action).toBe("disconnect");
      expect(guard.barredCount).toBe(0);
    });
  });

  describe("forgeries", () => {
    test(`the 1st warns, the 2nd drops, the ${MAX_FORGED_PER_LINK}rd disconnects with ERROR 9 and bars the neighbour`, () => {
      const guard = new AbuseGuard(DEFAULT_FLOOD_LIMITS);
      const state = guard.track(0);
      const verdicts = [0, 1, 2].map((i) => guard.forged(state, KEY, 1000 * i));
      expect(verdicts).toEqual([
        { action: "warn", message: "sent a FLOOD with a bad signature" },
        { action: "drop" },
        {
          action: "disconnect",
          close: {
            kind: "error",
            code: WireErrorCode.BadSignature,
            message: "3 FLOODs with bad signatures",
          },
        },
      ]);
      expect(guard.barOf(KEY, 2000)).toEqual({
        code: WireErrorCode.BadSignature,
        remainingMs: ABUSE_BAR_MS,
      });
    });

    test("forgeries are counted over the link's life, not a window", () => {
      const guard = new AbuseGuard(DEFAULT_FLOOD_LIMITS);
      const state = guard.track(0);
      guard.forged(state, KEY, 0);
      guard.forged(state, KEY, 3_600_000);
      expect(guard.forged(state, KEY, 7_200_000).action).toBe("disconnect");
    });

    test("counted per link: another link's forgeries are its own", () => {
      const guard = new AbuseGuard(DEFAULT_FLOOD_LIMITS);
      const a = guard.track(0);
      const b = guard.track(0);
      guard.forged(a, "aa", 0);
      guard.forged(a, "aa", 0);
      expect(guard.forged(b, "bb", 0).action).toBe("warn");
    });
  });

  describe("the bar", () => {
    function barred(code: "forged" | "throttled") {
      const guard = new AbuseGuard({ ...SMALL, disconnectAfterDrops: 1 });
      const state = guard.track(0);
      if (code === "forged")
        for (let i = 0; i < MAX_FORGED_PER_LINK; i++) guard.forged(state, KEY, 0);
      else guard.throttled(state, KEY, 0);
      return guard;
    }

    test.each([
      ["forged", WireErrorCode.BadSignature, 0, ABUSE_BAR_MS],
      ["forged", WireErrorCode.BadSignature, ABUSE_BAR_MS - 1, 1],
      ["throttled", WireErrorCode.RateLimited, 25_000, ABUSE_BAR_MS - 25_000],
    ] as const)(
      "barred after %s: code %d, at %d ms still %d ms to go",
      (cause, code, at, remainingMs) => {
        expect(barred(cause).barOf(KEY, at)).toEqual({ code, remainingMs });
      },
    );

    test("is forgotten once it expires", () => {
      const guard = barred("forged");
      expect(guard.barredCount).toBe(1);
      expect(guard.barOf(KEY, ABUSE_BAR_MS)).toBeUndefined();
      expect(guard.barredCount).toBe(0);
      expect(guard.barOf(KEY, 0)).toBeUndefined(); // gone, not merely hidden
    });

    test("only the offending id is barred", () => {
      expect(barred("forged").barOf("cd".repeat(32), 0)).toBeUndefined();
    });

    test(`the table stays bounded at ${MAX_BARRED_IDS}; expired bars make room`, () => {
      const guard = new AbuseGuard({ ...SMALL, disconnectAfterDrops: 1 });
      const offend = (key: string, now: number) => guard.throttled(guard.track(now), key, now);
      for (let i = 0; i < MAX_BARRED_IDS; i++) offend(`id ${i}`, i);
      expect(guard.barredCount).toBe(MAX_BARRED_IDS);
      // Full, nothing expired: disconnected all the same, but not barred.
      expect(offend("one too many", MAX_BARRED_IDS).action).toBe("disconnect");
      expect(guard.barredCount).toBe(MAX_BARRED_IDS);
      expect(guard.barOf("one too many", MAX_BARRED_IDS)).toBeUndefined();
      // The first ten bars have expired: the next bar sweeps them and fits.
      const now = ABUSE_BAR_MS + 9;
      offend("later", now);
      expect(guard.barredCount).toBe(MAX_BARRED_IDS - 10 + 1);
      expect(guard.barOf("later", now)).toMatchObject({ code: WireErrorCode.RateLimited });
      expect(guard.barOf("id 10", now)).toBeDefined();
      expect(guard.barOf("id 9", now)).toBeUndefined();
    });
  });
});
