import { FloodKind } from "../protocol/constants.ts";
import { DIRECT_TAG_BYTES } from "../protocol/direct.ts";
import { floodBodyAt, floodKind, floodOriginKey } from "../protocol/flood.ts";
import { latin1 } from "../protocol/hex.ts";

/**
 * Abuse limits on FLOOD traffic (docs/PROTOCOL.md §7). The defaults are far above what
 * people typing can produce, even in a busy room, and far below what one machine can be
 * made to verify: they exist to stop a flooding neighbour or origin, not to shape chat.
 */

/** Rates and bursts for {@link FloodLimiter}. `Infinity` turns a limit off. */
export interface FloodLimits {
  /** FLOOD frames per second one neighbour may send us, all origins and duplicates included. */
  readonly perNeighbourPerSecond: number;
  readonly perNeighbourBurst: number;
  /** Messages per second one origin may author (checked once its signature holds). */
  readonly perOriginPerSecond: number;
  readonly perOriginBurst: number;
  /**
   * FLOOD frames dropped for rate from one neighbour within {@link THROTTLE_WINDOW_MS}
   * after which it is disconnected: it is not slowing down.
   */
  readonly disconnectAfterDrops: number;
}

/**
 * Defaults: a neighbour may relay 1,000 messages a second (a burst of 5,000); an author
 * may write 100 a second (a burst of 500, a pasted file's worth). A neighbour that has
 * 10,000 frames dropped within 10 s is disconnected and barred for a while.
 */
export const DEFAULT_FLOOD_LIMITS: FloodLimits = {
  perNeighbourPerSecond: 1_000,
  perNeighbourBurst: 5_000,
  perOriginPerSecond: 100,
  perOriginBurst: 500,
  disconnectAfterDrops: 10_000,
};

/** No limits: for benchmarks, which measure capacity by flooding on purpose. */
export const NO_FLOOD_LIMITS: FloodLimits = {
  perNeighbourPerSecond: Number.POSITIVE_INFINITY,
  perNeighbourBurst: Number.POSITIVE_INFINITY,
  perOriginPerSecond: Number.POSITIVE_INFINITY,
  perOriginBurst: Number.POSITIVE_INFINITY,
  disconnectAfterDrops: Number.POSITIVE_INFINITY,
};

/** The window in which rate drops are counted towards a disconnect. */
export const THROTTLE_WINDOW_MS = 10_000;

/** How long a neighbour disconnected for abuse is refused. */
export const ABUSE_BAR_MS = 60_000;

/** Origins tracked at once; past it the least recently seen are forgotten (full again). */
export const MAX_TRACKED_ORIGINS = 10_000;

/** A token bucket: `rate` tokens a second, holding at most `burst`; starts full. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    if (this.ratePerSecond === Number.POSITIVE_INFINITY) return true;
    if (now > this.updatedAt) {
      this.tokens = Math.min(
        this.burst,
        this.tokens + ((now - this.updatedAt) * this.ratePerSecond) / 1000,
      );
      this.updatedAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Empties the bucket as of `now`, fraction included: what was refilling starts over.
   * For a sender over its rate, so that it earns nothing while it keeps sending.
   */
  restart(now: number): void {
    if (this.ratePerSecond === Number.POSITIVE_INFINITY) return;
    this.tokens = 0;
    this.updatedAt = Math.max(now, this.updatedAt);
  }

  /** Milliseconds until a token will be there (0 if one is now). */
  waitMs(now: number): number {
    if (this.ratePerSecond === Number.POSITIVE_INFINITY) return 0;
    const tokens = Math.min(
      this.burst,
      this.tokens + (Math.max(0, now - this.updatedAt) * this.ratePerSecond) / 1000,
    );
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.ratePerSecond);
  }
}

/**
 * Per-origin buckets, bounded: origins are cheap to invent (though each must sign), so
 * the least recently active are forgotten first. A forgotten origin starts full again,
 * which is harmless: it still cannot pass its rate for long.
 */
export class OriginLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly limits: FloodLimits) {}

  /** Whether `origin` (a latin1 key of its node id) may author one more message now. */
  allow(origin: string, now: number): boolean {
    if (this.limits.perOriginPerSecond === Number.POSITIVE_INFINITY) return true;
    let bucket = this.buckets.get(origin);
    if (bucket) {
      // Map order is insertion order: re-inserting keeps the most recent at the end.
      this.buckets.delete(origin);
    } else {
      bucket = new TokenBucket(this.limits.perOriginPerSecond, this.limits.perOriginBurst, now);
      if (this.buckets.size >= MAX_TRACKED_ORIGINS) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(origin, bucket);
    return bucket.take(now);
  }

  /**
   * Whether `origin` has no message left to author now. It takes nothing, so it may be
   * asked for a message not yet verified, and a message it refuses need not be verified.
   */
  exhausted(origin: string, now: number): boolean {
    const bucket = this.buckets.get(origin);
    if (bucket === undefined || bucket.waitMs(now) === 0) return false;
    // Over its rate and still sending: its refill starts over, so a flood earns nothing
    // however long it lasts, and the author is back once it slows to its rate.
    bucket.restart(now);
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * Whose budget a FLOOD spends: its author's, or for a DIRECT, whose origin is a one-time
 * key, its recipient's (the tag): the author is sealed inside, so the recipient holds
 * the author to the same rate once it has opened the message.
 */
export function floodLimitKey(bytes: Uint8Array, start: number, end: number): string {
  const body = floodBodyAt(start);
  if (floodKind(bytes, start) === FloodKind.Direct && end - body >= DIRECT_TAG_BYTES)
    return latin1(bytes, body, DIRECT_TAG_BYTES);
  return floodOriginKey(bytes, start);
}
