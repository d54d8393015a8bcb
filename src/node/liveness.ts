/** A neighbour silent this long is sent a PING. */
export const PING_AFTER_IDLE_MS = 10_000;

/** A neighbour silent this long is dead: no FIN, no RST (frozen, unplugged), but gone. */
export const DEAD_AFTER_IDLE_MS = 30_000;

/** Busy links are still pinged this often, to keep their round-trip time current. */
export const RTT_REFRESH_MS = 30_000;

/** Liveness is checked this often. */
export const HEARTBEAT_INTERVAL_MS = 1000;

/** One link's liveness: when it last showed life, and its round trip. */
export interface LivenessState {
  /** The connection's incoming frame count at the last check, and when it last moved. */
  framesSeen: number;
  lastFrameAt: number;
  /** The PING awaiting its PONG, if any. */
  ping: { readonly nonce: bigint; readonly sentAt: number } | undefined;
  lastRttAt: number;
  /** Latest PING round trip in milliseconds, once measured. */
  rttMs: number | undefined;
}

/** What a check asks of the node for one link. */
export type LivenessAction =
  | { readonly action: "none" }
  | { readonly action: "ping" }
  | { readonly action: "dead"; readonly reason: string };

const NONE: LivenessAction = Object.freeze({ action: "none" });
const PING: LivenessAction = Object.freeze({ action: "ping" });

/** A new link's state at `now`. */
export function newLiveness(now: number): LivenessState {
  return { framesSeen: 0, lastFrameAt: now, ping: undefined, lastRttAt: now, rttMs: undefined };
}

/** The handshake is done: silence is counted from the HELLO, not from the next check. */
export function livenessFrom(state: LivenessState, framesIn: number, now: number): void {
  state.framesSeen = framesIn;
  state.lastFrameAt = now;
}

/**
 * One heartbeat's decision for an established link (docs/PROTOCOL.md §7): a link silent
 * for {@link PING_AFTER_IDLE_MS} gets a PING, one silent for {@link DEAD_AFTER_IDLE_MS}
 * is dead, and a busy one is pinged every {@link RTT_REFRESH_MS} for a fresh round trip.
 * Life is read from the connection's frame count, so the hot path pays nothing for it;
 * a link we are not reading from (`paused`) is not held to account for its silence.
 */
export function check(
  state: LivenessState,
  framesIn: number,
  paused: boolean,
  now: number,
): LivenessAction {
  if (paused) {
    state.lastFrameAt = now;
    return NONE;
  }
  if (framesIn !== state.framesSeen) {
    state.framesSeen = framesIn;
    state.lastFrameAt = now;
  }
  const idle = now - state.lastFrameAt;
  if (idle >= DEAD_AFTER_IDLE_MS)
    return { action: "dead", reason: `timed out: no frame for ${Math.round(idle / 1000)} s` };
  // A PING unanswered for 10 s is given up (the silence above decides death).
  if (state.ping && now - state.ping.sentAt >= PING_AFTER_IDLE_MS) state.ping = undefined;
  const due = idle >= PING_AFTER_IDLE_MS || now - state.lastRttAt >= RTT_REFRESH_MS;
  return due && state.ping === undefined ? PING : NONE;
}

/** A PING with `nonce` went out at `now`. */
export function pinged(state: LivenessState, nonce: bigint, now: number): void {
  state.ping = { nonce, sentAt: now };
}

/** A PONG came back; if it answers our PING, the round trip is measured. */
export function ponged(state: LivenessState, nonce: bigint, now: number): void {
  if (state.ping?.nonce !== nonce) return;
  state.rttMs = now - state.ping.sentAt;
  state.lastRttAt = now;
  state.ping = undefined;
}

/** Reading resumed: the silence while we were not listening does not count. */
export function resumed(state: LivenessState, now: number): void {
  state.lastFrameAt = now;
}
