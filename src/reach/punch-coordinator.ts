/**
 * Upgrading a relayed link to a direct one by TCP simultaneous open, coordinated over the
 * relayed link as libp2p DCUtR does (PUNCH frames, src/protocol/reach.ts). Pure: one per
 * relayed neighbour; the driver (reach-driver.ts) feeds it frames, the ports it reserved,
 * dial outcomes and the wake-ups it asked for, and performs its actions.
 *
 * Roles are fixed by who opened the relayed link: the opener is the initiator.
 *  1. The initiator reserves a local port and sends CONNECT with its predicted public
 *     addresses (each IP neighbours see it at, with that port), noting the time.
 *  2. The responder reserves a port of its own and answers CONNECT with its addresses.
 *  3. The initiator, having measured the round trip, sends SYNC and dials the
 *     responder's addresses RTT/2 later; the responder dials the initiator's at once on
 *     SYNC. Both dials leave from the reserved ports and meet half-way in each NAT, so
 *     each NAT sees an outgoing connection and lets the other's SYN in.
 *  4. A dial that connects ends it: the initiator runs the Noise handshake as dialler,
 *     the responder as listener. Every dial failed: the initiator tries again after
 *     {@link PUNCH_RETRY_MS}, up to {@link MAX_PUNCH_ATTEMPTS} attempts (97.6 % of
 *     DCUtR's successes came on the first); then both stay relayed.
 * Without an observed address of its own a side cannot predict where it is dialled and
 * does not punch (the responder says so with GIVE_UP).
 *
 * A hostile neighbour can make us dial at most {@link MAX_PUNCH_ADDRESSES} addresses per
 * attempt, {@link MAX_PUNCH_ATTEMPTS} attempts per relayed link; it is a room member
 * authenticated end to end through the relay.
 */

import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import {
  encodePunchConnect,
  encodePunchGiveUp,
  encodePunchSync,
  MAX_PUNCH_ADDRESSES,
  type PunchMessage,
  PunchOp,
} from "../protocol/reach.ts";

/** Attempts at a direct link before staying relayed. */
export const MAX_PUNCH_ATTEMPTS = 3;

/** Pause between a failed attempt and the next. */
export const PUNCH_RETRY_MS = 1_000;

/** How long one side waits for the other's CONNECT, or the responder for SYNC. */
export const PUNCH_ANSWER_TIMEOUT_MS = 10_000;

/** How long a simultaneous-open dial may take (the driver passes it to the dial). */
export const PUNCH_DIAL_TIMEOUT_MS = 5_000;

/** The initiator waits RTT/2 before it dials, but never longer than this. */
export const MAX_SYNC_DELAY_MS = 2_500;

/** Which end of the relayed link: the one that opened it initiates. */
export type PunchRole = "initiator" | "responder";

/** Where a punch stands. */
export type PunchPhase =
  /** Responder: waiting for the initiator's CONNECT. */
  | "idle"
  | "reserving"
  | "awaiting-connect"
  | "awaiting-sync"
  /** Initiator: SYNC sent, waiting RTT/2 before dialling. */
  | "syncing"
  | "dialling"
  /** Initiator: between a failed attempt and the next. */
  | "retry-wait"
  | "direct"
  | "failed"
  /** Not tried: one side had no observed address. */
  | "skipped";

/** What the coordinator is told. */
export type PunchEvent =
  /** Begin (the initiator starts attempt 1; the responder waits for CONNECT). */
  | { readonly type: "start" }
  /** The driver reserved `port` for the current attempt, or could not. */
  | { readonly type: "reserved"; readonly attempt: number; readonly port: number }
  | { readonly type: "reserve-failed"; readonly attempt: number }
  /** A PUNCH frame from the neighbour, decoded. */
  | { readonly type: "frame"; readonly message: PunchMessage }
  /** How one dial asked for by a `dial` action ended. */
  | {
      readonly type: "dial-result";
      readonly attempt: number;
      readonly remote: Endpoint;
      readonly ok: boolean;
    }
  /** A wake-up asked for by a `wake` action is due. */
  | { readonly type: "wake" };

/** What the driver does for it. */
export type PunchAction =
  | { readonly type: "send"; readonly frame: Uint8Array }
  /** Reserve a local port and answer with `reserved` (or `reserve-failed`). */
  | { readonly type: "reserve"; readonly attempt: number }
  /** Dial `remote` from `localPort`, then answer with `dial-result`. */
  | {
      readonly type: "dial";
      readonly remote: Endpoint;
      readonly localPort: number;
      readonly role: PunchRole;
      readonly attempt: number;
    }
  /** Send a `wake` event at time `at` (replacing any wake-up asked for earlier). */
  | { readonly type: "wake"; readonly at: number }
  /** The dial to `remote` connected: hand its stream up (Noise as dialler if initiator). */
  | { readonly type: "direct"; readonly remote: Endpoint; readonly attempt: number }
  /** No direct link: the link stays relayed. */
  | { readonly type: "gave-up"; readonly reason: string };

/** The state a coordinator shows. */
export interface PunchState {
  readonly role: PunchRole;
  readonly phase: PunchPhase;
  /** The current (or last) attempt; 0 before the first. */
  readonly attempt: number;
  /** Why it failed or was skipped. */
  readonly reason?: string;
}

/** One relayed neighbour's hole punch; see the module comment. */
export class PunchCoordinator {
  private phase: PunchPhase = "idle";
  private attempt = 0;
  private port = 0;
  private sentAt = 0;
  private deadline = Number.POSITIVE_INFINITY;
  private theirs: readonly Endpoint[] = [];
  private readonly pending = new Set<string>();
  private reason: string | undefined;

  /**
   * @param ownHosts the IPs neighbours see us at, best first (reachability.ts
   *   `observedHosts`), read when a CONNECT is sent
   */
  constructor(
    readonly role: PunchRole,
    private readonly ownHosts: () => readonly string[],
  ) {}

  /** Where it stands. */
  get state(): PunchState {
    const { role, phase, attempt, reason } = this;
    return reason === undefined ? { role, phase, attempt } : { role, phase, attempt, reason };
  }

  /** True once it will do nothing more: direct, failed or skipped. */
  get finished(): boolean {
    return this.phase === "direct" || this.phase === "failed" || this.phase === "skipped";
  }

  /** For `/peers`: "punching, attempt 2", "direct", "relayed: punch failed after 3 attempts". */
  describe(): string {
    switch (this.phase) {
      case "direct":
        return "direct";
      case "failed":
      case "skipped":
        return `relayed: ${this.reason}`;
      case "idle":
        return "relayed";
      default:
        return `punching, attempt ${this.attempt}`;
    }
  }

  /** Takes one event; returns what to do. */
  handle(event: PunchEvent, now: number): PunchAction[] {
    if (this.finished) return [];
    switch (event.type) {
      case "start":
        if (this.role !== "initiator" || this.phase !== "idle") return [];
        if (this.ownHosts().length === 0) return this.skip("no observed address of ours");
        return this.begin(1);
      case "reserved":
        if (this.phase !== "reserving" || event.attempt !== this.attempt) return [];
        return this.reserved(event.port, now);
      case "reserve-failed":
        if (this.phase !== "reserving" || event.attempt !== this.attempt) return [];
        return this.attemptFailed(now, "no local port");
      case "frame":
        return this.frame(event.message, now);
      case "dial-result":
        return this.dialResult(event, now);
      case "wake":
        return this.wake(now);
    }
  }

  private begin(attempt: number): PunchAction[] {
    this.attempt = attempt;
    this.phase = "reserving";
    this.pending.clear();
    this.deadline = Number.POSITIVE_INFINITY;
    return [{ type: "reserve", attempt }];
  }

  private reserved(port: number, now: number): PunchAction[] {
    const hosts = this.ownHosts().slice(0, MAX_PUNCH_ADDRESSES);
    if (hosts.length === 0) {
      const give = this.skip("no observed address of ours");
      return [{ type: "send", frame: encodePunchGiveUp(this.attempt) }, ...give];
    }
    this.port = port;
    const frame = encodePunchConnect(
      this.attempt,
      hosts.map((host) => ({ host, port })),
    );
    this.sentAt = now;
    this.phase = this.role === "initiator" ? "awaiting-connect" : "awaiting-sync";
    return [{ type: "send", frame }, this.wakeAt(now + PUNCH_ANSWER_TIMEOUT_MS)];
  }

  private frame(message: PunchMessage, now: number): PunchAction[] {
    if (message.op === PunchOp.GiveUp) {
      // About an attempt already over; the responder may be one ahead, waiting for the next.
      if (message.attempt < this.attempt - 1) return [];
      // After the last attempt both ends tell it alike, whichever saw the end first.
      const last = message.attempt >= MAX_PUNCH_ATTEMPTS;
      return this.fail(
        last ? `punch failed after ${message.attempt} attempts` : "the peer gave up",
        [],
      );
    }
    if (this.role === "initiator") {
      if (message.op !== PunchOp.Connect) return []; // SYNC is ours to send
      if (this.phase !== "awaiting-connect" || message.attempt !== this.attempt) return [];
      this.theirs = message.addresses;
      const delay = Math.min(Math.max(0, (now - this.sentAt) / 2), MAX_SYNC_DELAY_MS);
      const sync: PunchAction = { type: "send", frame: encodePunchSync(this.attempt) };
      if (delay === 0) return [sync, ...this.dialAll(now)];
      this.phase = "syncing";
      return [sync, this.wakeAt(now + delay)];
    }
    if (message.op === PunchOp.Sync) {
      if (this.phase !== "awaiting-sync" || message.attempt !== this.attempt) return [];
      return this.dialAll(now);
    }
    // A CONNECT: the initiator's next attempt. Anything not newer is a replay, and
    // attempts past the limit are not ours to make.
    if (message.attempt <= this.attempt || message.attempt > MAX_PUNCH_ATTEMPTS) return [];
    if (this.ownHosts().length === 0) {
      this.attempt = message.attempt;
      const frame = encodePunchGiveUp(message.attempt);
      return [{ type: "send", frame }, ...this.skip("no observed address of ours")];
    }
    this.theirs = message.addresses;
    return this.begin(message.attempt);
  }

  private dialAll(now: number): PunchAction[] {
    this.phase = "dialling";
    this.pending.clear();
    const out: PunchAction[] = [];
    for (const remote of this.theirs) {
      const key = formatEndpoint(remote);
      if (this.pending.has(key)) continue;
      this.pending.add(key);
      const { port: localPort, role, attempt } = this;
      out.push({ type: "dial", remote, localPort, role, attempt });
    }
    // The dials time out by themselves; this is in case an outcome never comes back.
    out.push(this.wakeAt(now + PUNCH_DIAL_TIMEOUT_MS + PUNCH_RETRY_MS));
    return out;
  }

  private dialResult(
    event: Extract<PunchEvent, { type: "dial-result" }>,
    now: number,
  ): PunchAction[] {
    if (this.phase !== "dialling" || event.attempt !== this.attempt) return [];
    const key = formatEndpoint(event.remote);
    if (!this.pending.delete(key)) return [];
    if (event.ok) {
      this.phase = "direct";
      this.pending.clear();
      this.deadline = Number.POSITIVE_INFINITY;
      return [{ type: "direct", remote: event.remote, attempt: this.attempt }];
    }
    if (this.pending.size > 0) return [];
    return this.attemptFailed(now, "no dial connected");
  }

  private wake(now: number): PunchAction[] {
    // Early: a wake-up since replaced, or a timer that fired a millisecond before the
    // clock reached the deadline. Sleep again until then, or the punch would hang.
    if (now < this.deadline)
      return Number.isFinite(this.deadline) ? [this.wakeAt(this.deadline)] : [];
    this.deadline = Number.POSITIVE_INFINITY;
    switch (this.phase) {
      case "syncing":
        return this.dialAll(now);
      case "retry-wait":
        return this.begin(this.attempt + 1);
      case "awaiting-connect":
        return this.attemptFailed(
          now,
          this.role === "initiator" ? "no answer to CONNECT" : "the initiator stopped",
        );
      case "awaiting-sync":
        return this.attemptFailed(now, "no SYNC");
      case "dialling":
        this.pending.clear();
        return this.attemptFailed(now, "dials did not finish");
      default:
        return [];
    }
  }

  /** The current attempt is over without a link: try again, wait for the next, or stop. */
  private attemptFailed(now: number, why: string): PunchAction[] {
    if (this.attempt >= MAX_PUNCH_ATTEMPTS) {
      const reason = `punch failed after ${this.attempt} attempts`;
      const give: PunchAction[] =
        this.role === "initiator" ? [{ type: "send", frame: encodePunchGiveUp(this.attempt) }] : [];
      return this.fail(reason, give);
    }
    if (this.role === "initiator") {
      this.phase = "retry-wait";
      return [this.wakeAt(now + PUNCH_RETRY_MS)];
    }
    // The responder follows: the initiator's next CONNECT starts the next attempt.
    if (this.phase === "awaiting-connect") return this.fail(why, []);
    this.phase = "awaiting-connect";
    return [this.wakeAt(now + PUNCH_RETRY_MS + PUNCH_ANSWER_TIMEOUT_MS)];
  }

  private fail(reason: string, before: PunchAction[]): PunchAction[] {
    this.phase = "failed";
    this.reason = reason;
    this.pending.clear();
    this.deadline = Number.POSITIVE_INFINITY;
    return [...before, { type: "gave-up", reason }];
  }

  private skip(reason: string): PunchAction[] {
    this.phase = "skipped";
    this.reason = reason;
    this.deadline = Number.POSITIVE_INFINITY;
    return [{ type: "gave-up", reason }];
  }

  private wakeAt(at: number): PunchAction {
    this.deadline = at;
    return { type: "wake", at };
  }
}
