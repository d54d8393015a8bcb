/** First retry delay after a failed dial. */
export const BACKOFF_INITIAL_MS = 1000;

/** Retry delays double up to this. */
export const BACKOFF_MAX_MS = 30_000;

/**
 * A neighbour lost without a goodbye is probably coming back (a restart, a healed
 * partition): it is retried at most this far apart, against {@link BACKOFF_MAX_MS} for
 * an address that never answered. One refused TCP connect every few seconds costs
 * nothing; finding a healed network half a minute late costs the chat that half minute.
 */
export const LOST_BACKOFF_MAX_MS = 8_000;

/**
 * Jitter takes up to this fraction off each delay, so peers that lost the same
 * neighbour do not redial in lockstep, and the many timers of a network cut off for a
 * while keep coming due at different moments: when it heals, each peer's next try is
 * not far away. (0.4, against 0.2: after a 20 s partition, a simulation puts the last
 * peer's first try at p99 7.4 s after the heal, against 9.2 s.)
 */
export const BACKOFF_JITTER_RATIO = 0.4;

/** Delay before retry number `attempt` (0-based): 1 s, 2 s, 4 s … capped at 30 s. */
export function backoffMs(
  attempt: number,
  initialMs = BACKOFF_INITIAL_MS,
  maxMs = BACKOFF_MAX_MS,
): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

/**
 * `ms` shortened by a random part of up to `ratio` of itself. Jitter only ever shortens,
 * so a delay never passes the back-off's cap. `random` returns [0, 1).
 */
export function jitter(
  ms: number,
  random: () => number = Math.random,
  ratio = BACKOFF_JITTER_RATIO,
): number {
  return Math.round(ms * (1 - ratio * random()));
}
