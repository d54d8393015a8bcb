import { encodePing } from "../protocol/control.ts";

/** A neighbour silent this long is sent a PING. */
export const PING_AFTER_IDLE_MS = 10_000;

/** A neighbour silent this long is dead: no FIN, no RST (frozen, unplugged), but gone. */
export const DEAD_AFTER_IDLE_MS = 30_000;

/** Busy links are still pinged this often, to keep their round-trip time current. */
export const RTT_REFRESH_MS = 30_000;

/** Liveness is checked this often. */
export const HEARTBEAT_INTERVAL_MS = 1000;

/**
 * A link we have sent to and not heard from for this long gets a PING (a probe): a FLOOD
 * has no answer, so only a PING tells whether anyone is still at the other end.
 */
export const PROBE_AFTER_MS = 2000;

/**
 * A link we have been waiting on this long (something sent, its probe unanswered, not a
 * frame back) is not answering; when no neighbour answers, this node may be cut off.
 */
export const UNANSWERED_AFTER_MS = 8000;

/** One link's liveness: when it last showed life, and its round trip. */
export interface LivenessState {
  /** The connection's incoming frame count at the last check, and when it last moved. */
  framesSeen: number;
  lastFrameAt: number;
  /** PINGs and PONGs sent: frames out that are not traffic awaiting an answer. */
  controlOut: number;
  /** The connection's outgoing frame count less {@link controlOut}, at the last check. */
  dataOutSeen: number;
  /**
   * Since when we have been waiting for a frame from it: we sent it something (seen by a
   * check), or a PING, and nothing has come back since. Undefined: not waiting.
   */
  waitingSince: number | undefined;
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
  return {
    framesSeen: 0,
    lastFrameAt: now,
    controlOut: 0,
    dataOutSeen: 0,
    waitingSince: undefined,
    ping: undefined,
    lastRttAt: now,
    rttMs: undefined,
  };
}

/**
 * The handshake is done: silence is counted from the HELLO, not from the next check,
 * and what we sent during the handshake (`framesOut`) awaits no answer.
 */
export function livenessFrom(
  state: LivenessState,
  framesIn: number,
  now: number,
  framesOut = state.dataOutSeen + state.controlOut,
): void {
  state.framesSeen = framesIn;
  state.lastFrameAt = now;
  state.dataOutSeen = framesOut - state.controlOut;
  state.waitingSince = undefined;
}

/**
 * One heartbeat's decision for an established link (docs/PROTOCOL.md §7): a link silent
 * for {@link PING_AFTER_IDLE_MS} gets a PING, one silent for {@link DEAD_AFTER_IDLE_MS}
 * is dead, and a busy one is pinged every {@link RTT_REFRESH_MS} for a fresh round trip.
 * Life is read from the connection's frame counts, so the hot path pays nothing for it;
 * a link we are not reading from (`paused`) is not held to account for its silence.
 * A link we sent to (`framesOut` moved, PINGs and PONGs aside) that has said nothing
 * since is probed with a PING after {@link PROBE_AFTER_MS}, so that a link leading
 * nowhere is noticed while traffic is pending, not after 30 s ({@link unanswered};
 * docs/PROTOCOL.md §4, "Unanswered links").
 */
export function check(
  state: LivenessState,
  framesIn: number,
  paused: boolean,
  now: number,
  framesOut = state.dataOutSeen + state.controlOut,
): LivenessAction {
  const dataOut = framesOut - state.controlOut;
  const sent = dataOut !== state.dataOutSeen;
  state.dataOutSeen = dataOut;
  if (paused) {
    state.lastFrameAt = now;
    state.waitingSince = undefined;
    return NONE;
  }
  if (framesIn !== state.framesSeen) {
    state.framesSeen = framesIn;
    state.lastFrameAt = now;
    // Heard from since the last check. What we sent in the same second may have gone
    // after what came: if so, the wait for an answer to it starts now.
    state.waitingSince = sent ? now : undefined;
  } else if (sent) {
    state.waitingSince ??= now;
  }
  const idle = now - state.lastFrameAt;
  if (idle >= DEAD_AFTER_IDLE_MS)
    return { action: "dead", reason: `timed out: no frame for ${Math.round(idle / 1000)} s` };
  // A PING unanswered for 10 s is given up (the silence above decides death).
  if (state.ping && now - state.ping.sentAt >= PING_AFTER_IDLE_MS) state.ping = undefined;
  const probe = state.waitingSince !== undefined && now - state.waitingSince >= PROBE_AFTER_MS;
  const due = idle >= PING_AFTER_IDLE_MS || now - state.lastRttAt >= RTT_REFRESH_MS || probe;
  return due && state.ping === undefined ? PING : NONE;
}

/**
 * True if the link has not answered for {@link UNANSWERED_AFTER_MS}: we sent on it (a
 * message, or at least the PING that silence calls for) and nothing came back since.
 */
export function unanswered(state: LivenessState, now: number): boolean {
  return state.waitingSince !== undefined && now - state.waitingSince >= UNANSWERED_AFTER_MS;
}

/** Whether the node has told its user that no neighbour answers. */
export interface CutOffState {
  reported: boolean;
}

/**
 * One heartbeat's verdict on the node as a whole: `true` once (until a neighbour answers
 * again, or a new one comes) when it has neighbours and none of them answers. Its links
 * may still come back; but meanwhile everything it sends goes nowhere.
 */
export function cutOff(state: CutOffState, neighbours: number, unansweredLinks: number): boolean {
  const cut = neighbours > 0 && unansweredLinks === neighbours;
  if (!cut) {
    state.reported = false;
    return false;
  }
  if (state.reported) return false;
  state.reported = true;
  return true;
}

/** A PING frame with a fresh random nonce, recorded as sent at `now` ({@link pinged}). */
export function pingFrame(state: LivenessState, now: number): Uint8Array {
  const nonce = crypto.getRandomValues(new BigUint64Array(1))[0] as bigint;
  pinged(state, nonce, now);
  return encodePing(nonce);
}

/** A PING with `nonce` went out at `now`: we wait for it to be answered. */
export function pinged(state: LivenessState, nonce: bigint, now: number): void {
  state.ping = { nonce, sentAt: now };
  state.waitingSince ??= now;
}

/**
 * A PING or PONG was queued on the link: counted apart from the traffic that awaits an
 * answer (a PONG is one, and a PING's own wait is set by {@link pinged}).
 */
export function controlSent(state: LivenessState): void {
  state.controlOut++;
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

/** A neighbour's link as the heartbeat sees it. */
export interface Watched {
  readonly liveness: LivenessState;
  readonly conn: { readonly stats: { readonly framesIn: number; readonly framesOut: number } };
  readonly flow: { readonly paused: boolean };
}

/** What one heartbeat asks of the driver for the neighbours' links. */
export interface Survey<L> {
  readonly ping: L[];
  readonly dead: Array<{ readonly link: L; readonly reason: string }>;
  /** Every neighbour still linked has stopped answering (said once; see {@link cutOff}). */
  readonly cutOff?: { readonly neighbours: number; readonly silentMs: number };
}

/** One heartbeat over the neighbours' links: which to PING, which are dead, and whether we are cut off. */
export function survey<L extends Watched>(
  links: Iterable<L>,
  state: CutOffState,
  now: number,
): Survey<L> {
  const ping: L[] = [];
  const dead: Array<{ link: L; reason: string }> = [];
  let neighbours = 0;
  let quiet = 0;
  let silentMs = Number.POSITIVE_INFINITY;
  for (const link of links) {
    const { framesIn, framesOut } = link.conn.stats;
    const verdict = check(link.liveness, framesIn, link.flow.paused, now, framesOut);
    if (verdict.action === "dead") {
      dead.push({ link, reason: verdict.reason });
      continue;
    }
    neighbours++;
    if (verdict.action === "ping") ping.push(link);
    if (unanswered(link.liveness, now)) {
      quiet++;
      silentMs = Math.min(silentMs, now - (link.liveness.waitingSince as number));
    }
  }
  const cut = cutOff(state, neighbours, quiet);
  return cut ? { ping, dead, cutOff: { neighbours, silentMs } } : { ping, dead };
}
