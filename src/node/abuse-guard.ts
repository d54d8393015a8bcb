import type { ProtocolError } from "../errors.ts";
import type { CloseRequest } from "../link/connection.ts";
import { WireErrorCode } from "../protocol/constants.ts";
import { ABUSE_BAR_MS, type FloodLimits, THROTTLE_WINDOW_MS, TokenBucket } from "./flood-limits.ts";

/** Bad signatures a neighbour may relay before it is disconnected. */
export const MAX_FORGED_PER_LINK = 3;

/** Node ids barred at once; past it, new bars wait until expired ones are swept. */
export const MAX_BARRED_IDS = 1000;

/** One neighbour's record with the guard. */
export interface GuardState {
  /** FLOOD frames this neighbour may still send (the relay takes from it). */
  readonly bucket: TokenBucket;
  /** FLOODs dropped for rate in the current window, and when the window began (its first drop). */
  throttled: number;
  throttledSince: number;
  /** FLOODs from this neighbour whose signatures did not verify, over the link's life. */
  forged: number;
}

/** What the node does about a neighbour's FLOOD that was dropped for rate or forgery. */
export type GuardVerdict =
  /** Dropped; nothing more. */
  | { readonly action: "drop" }
  /** Dropped, and worth one warning: the first of its kind on this link (for rate, in its window). */
  | { readonly action: "warn"; readonly message: string }
  /** Close the link so; for abuse, the neighbour's id is also barred (if the table has room). */
  | { readonly action: "disconnect"; readonly close: CloseRequest };

const DROP: GuardVerdict = Object.freeze({ action: "drop" });

/** A refusal for a barred node id: what it was barred for, and for how long still. */
export interface Bar {
  readonly code: WireErrorCode;
  readonly remainingMs: number;
}

/**
 * The abuse policy (docs/PROTOCOL.md §7), free of sockets and timers: counts a
 * neighbour's rate drops and forged signatures, decides when it has had enough, and
 * keeps the node ids barred for a while after such a disconnect. The relay decides
 * what a single FLOOD is; the guard decides what a pattern of them means.
 */
export class AbuseGuard {
  /** Barred node ids (hex) → until when, and why. Bounded by {@link MAX_BARRED_IDS}. */
  private readonly barred = new Map<string, { until: number; code: WireErrorCode }>();

  constructor(private readonly limits: FloodLimits) {}

  /** A new link's record: a full bucket, no drops. */
  track(now: number): GuardState {
    return {
      bucket: new TokenBucket(
        this.limits.perNeighbourPerSecond,
        this.limits.perNeighbourBurst,
        now,
      ),
      throttled: 0,
      throttledSince: now,
      forged: 0,
    };
  }

  /**
   * The verdict for one FLOOD from `key`'s link that the relay refused: a protocol
   * violation closes the link (the message is not relayed; the id is not barred: a bug
   * is not abuse); rate and forgeries are counted.
   */
  judge(
    refused: { readonly status: string; readonly error?: ProtocolError },
    state: GuardState,
    key: string | undefined,
    now: number,
  ): GuardVerdict {
    if (refused.status === "invalid" && refused.error)
      return { action: "disconnect", close: { kind: "violation", error: refused.error } };
    if (refused.status === "throttled") return this.throttled(state, key, now);
    if (refused.status === "forged") return this.forged(state, key, now);
    return DROP;
  }

  /** A FLOOD from `key`'s link was dropped unread for rate. */
  throttled(state: GuardState, key: string | undefined, now: number): GuardVerdict {
    // The window opens at a drop, so a neighbour cannot spread twice the allowance over
    // the edge of a window that began long before.
    if (state.throttled === 0 || now - state.throttledSince > THROTTLE_WINDOW_MS) {
      state.throttled = 0;
      state.throttledSince = now;
    }
    state.throttled++;
    const rate = this.limits.perNeighbourPerSecond;
    if (state.throttled >= this.limits.disconnectAfterDrops) {
      return this.disconnect(
        key,
        now,
        WireErrorCode.RateLimited,
        `over the FLOOD rate limit (${rate}/s)`,
      );
    }
    if (state.throttled === 1)
      return { action: "warn", message: `sends FLOODs faster than ${rate}/s: dropping the excess` };
    return DROP;
  }

  /**
   * A FLOOD from `key`'s link carried a bad signature. An honest neighbour verifies
   * before it relays, so the fault is the neighbour's, not the named origin's (whom a
   * forger could otherwise frame): the count and the bar are the neighbour's.
   */
  forged(state: GuardState, key: string | undefined, now: number): GuardVerdict {
    state.forged++;
    if (state.forged >= MAX_FORGED_PER_LINK)
      return this.disconnect(
        key,
        now,
        WireErrorCode.BadSignature,
        `${state.forged} FLOODs with bad signatures`,
      );
    if (state.forged === 1) return { action: "warn", message: "sent a FLOOD with a bad signature" };
    return DROP;
  }

  /** Whether `key` is barred at `now`; an expired bar is forgotten. */
  barOf(key: string, now: number): Bar | undefined {
    const bar = this.barred.get(key);
    if (bar === undefined) return undefined;
    if (bar.until <= now) {
      this.barred.delete(key);
      return undefined;
    }
    return { code: bar.code, remainingMs: bar.until - now };
  }

  /** Node ids barred now (expired ones may still be counted until looked up or swept). */
  get barredCount(): number {
    return this.barred.size;
  }

  private disconnect(
    key: string | undefined,
    now: number,
    code: WireErrorCode,
    message: string,
  ): GuardVerdict {
    if (key !== undefined) this.bar(key, now, code);
    return { action: "disconnect", close: { kind: "error", code, message } };
  }

  private bar(key: string, now: number, code: WireErrorCode): void {
    if (this.barred.size >= MAX_BARRED_IDS)
      for (const [k, bar] of this.barred) if (bar.until <= now) this.barred.delete(k);
    if (this.barred.size < MAX_BARRED_IDS)
      this.barred.set(key, { until: now + ABUSE_BAR_MS, code });
  }
}
