import { type Clock, systemClock, type TimerHandle } from "../node/clock.ts";
import type { FloodDelivery } from "../node/delivery.ts";
import { Emitter } from "../node/emitter.ts";
import type { PeerNode } from "../node/peer-node.ts";
import { FloodKind } from "../protocol/constants.ts";
import { encodePresenceBody } from "../protocol/presence.ts";

/** A peer announces it is still here this often. */
export const ALIVE_INTERVAL_MS = 30_000;

/** A peer not heard from for this long has timed out. */
export const PRESENCE_TIMEOUT_MS = 90_000;

/** How often the table is checked for time-outs. */
export const PRESENCE_SWEEP_MS = 1000;

/**
 * A newcomer's JOIN is answered with an ALIVE within a random delay up to this, so it
 * learns who is here in seconds instead of at the next 30 s round (the randomness keeps
 * everyone from answering in the same instant).
 */
export const WELCOME_MAX_DELAY_MS = 2000;

/** Someone in the network, as far as this node knows. */
export interface PresenceEntry {
  /** Hex node id. */
  readonly nodeId: string;
  readonly nick: string;
  /** Links between us and them, from their latest message (0 = this node). */
  readonly hops: number;
  /** Clock time of their latest message. */
  readonly lastSeen: number;
  readonly self: boolean;
}

/** A change in who is here. */
export type PresenceChange =
  | {
      readonly event: "join";
      readonly nodeId: string;
      readonly nick: string;
      readonly hops: number;
    }
  | {
      readonly event: "leave";
      readonly nodeId: string;
      readonly nick: string;
      readonly reason: string;
      readonly hops: number;
    }
  | {
      readonly event: "nick";
      readonly nodeId: string;
      readonly nick: string;
      readonly previousNick: string;
      readonly hops: number;
    }
  | {
      readonly event: "timeout";
      readonly nodeId: string;
      readonly nick: string;
      readonly lastSeen: number;
    };

interface Known {
  nick: string;
  hops: number;
  lastSeen: number;
  /**
   * It said JOIN, ALIVE or NICK itself: a member. An author heard of only by its messages
   * (a one-shot `peerchat send`) is remembered for its nick but is not "here": not in
   * `who`, and its silence is not news.
   */
  announced: boolean;
}

/**
 * Presence over the flood: this node says JOIN once it has a neighbour, ALIVE every
 * 30 s, NICK when it renames and LEAVE when it quits; it remembers everyone heard from
 * (any FLOOD counts) and reports who joins, leaves, renames or goes silent for 90 s.
 */
export class PresenceTracker {
  readonly events = new Emitter<{ change: PresenceChange }>();
  private readonly known = new Map<string, Known>();
  private readonly clock: Clock;
  private readonly unsubscribe: Array<() => void> = [];
  private aliveTimer: TimerHandle | undefined;
  private sweepTimer: TimerHandle | undefined;
  private welcomeTimer: TimerHandle | undefined;
  private readonly random: () => number;
  private joined = false;
  private stopped = false;

  constructor(
    private readonly node: PeerNode,
    options: { clock?: Clock; random?: () => number } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.unsubscribe.push(
      node.events.on("flood", (flood) => this.onFlood(flood)),
      node.events.on("peer-up", () => this.announceJoin()),
    );
    this.scheduleAlive();
    this.scheduleSweep();
  }

  /** Everyone heard from in the last 90 s, this node first, then by nick. */
  who(): PresenceEntry[] {
    const now = this.clock.now();
    const others = [...this.known.entries()]
      .filter(([, k]) => k.announced && now - k.lastSeen < PRESENCE_TIMEOUT_MS)
      .map(([nodeId, k]) => ({
        nodeId,
        nick: k.nick,
        // A neighbour is one hop away, whatever path its latest message happened to take.
        hops: this.node.isNeighbour(nodeId) ? 1 : k.hops,
        lastSeen: k.lastSeen,
        self: false,
      }))
      .sort((a, b) => a.nick.localeCompare(b.nick));
    const self = {
      nodeId: this.node.nodeIdHex,
      nick: this.node.nick,
      hops: 0,
      lastSeen: now,
      self: true,
    };
    return [self, ...others];
  }

  /** Renames this node and tells the network. */
  rename(nick: string): { ok: true } | { ok: false; reason: string } {
    const result = this.node.setNick(nick);
    if (result.ok)
      this.node.broadcast(FloodKind.Nick, encodePresenceBody({ kind: FloodKind.Nick, nick }));
    return result;
  }

  /** Says LEAVE (before the node says BYE to its neighbours) and stops the timers. */
  leave(reason: string): void {
    if (this.joined)
      this.node.broadcast(FloodKind.Leave, encodePresenceBody({ kind: FloodKind.Leave, reason }));
    this.stop();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.aliveTimer);
    this.clock.clearTimeout(this.sweepTimer);
    this.clock.clearTimeout(this.welcomeTimer);
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private announceJoin(): void {
    if (this.joined || this.stopped) return;
    this.joined = true;
    this.node.broadcast(
      FloodKind.Join,
      encodePresenceBody({ kind: FloodKind.Join, nick: this.node.nick }),
    );
  }

  private onFlood(flood: FloodDelivery): void {
    const origin = flood.origin;
    const known = this.known.get(origin);
    const presence = flood.presence;
    if (presence === undefined) {
      // Chat (or a kind we do not know): it only shows the author is still here. Renames
      // come as NICK, so the nick of an author we already know is not even decoded.
      if (known) {
        known.lastSeen = flood.receivedAt;
        known.hops = flood.hops;
      } else if (flood.nick !== "") {
        const entry = { nick: flood.nick, hops: flood.hops, lastSeen: flood.receivedAt };
        this.known.set(origin, { ...entry, announced: false });
      }
      return;
    }
    if (presence.kind === FloodKind.Leave) {
      this.known.delete(origin);
      this.emit({
        event: "leave",
        nodeId: origin,
        nick: known?.nick ?? "someone",
        reason: presence.reason,
        hops: flood.hops,
      });
      return;
    }
    const nick = presence.nick;
    this.known.set(origin, { nick, hops: flood.hops, lastSeen: flood.receivedAt, announced: true });
    if (presence.kind === FloodKind.Join) {
      this.emit({ event: "join", nodeId: origin, nick, hops: flood.hops });
      this.welcome();
    } else if (known && known.nick !== nick) {
      this.emit({
        event: "nick",
        nodeId: origin,
        nick,
        previousNick: known.nick,
        hops: flood.hops,
      });
    }
  }

  private sayAlive(): void {
    if (!this.joined || this.stopped) return;
    this.node.broadcast(
      FloodKind.Alive,
      encodePresenceBody({ kind: FloodKind.Alive, nick: this.node.nick }),
    );
  }

  private scheduleAlive(): void {
    this.aliveTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      this.sayAlive();
      this.scheduleAlive();
    }, ALIVE_INTERVAL_MS);
  }

  /**
   * Lets a newcomer know we are here, soon but not all at once. Newcomers arriving while
   * a welcome is pending share it, so a burst of joins costs one ALIVE per peer.
   */
  private welcome(): void {
    if (this.welcomeTimer !== undefined) return;
    this.welcomeTimer = this.clock.setTimeout(
      () => {
        this.welcomeTimer = undefined;
        this.sayAlive();
      },
      Math.floor(this.random() * WELCOME_MAX_DELAY_MS),
    );
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      const cutoff = this.clock.now() - PRESENCE_TIMEOUT_MS;
      for (const [nodeId, k] of this.known) {
        if (k.lastSeen <= cutoff) {
          this.known.delete(nodeId);
          if (k.announced)
            this.emit({ event: "timeout", nodeId, nick: k.nick, lastSeen: k.lastSeen });
        }
      }
      this.scheduleSweep();
    }, PRESENCE_SWEEP_MS);
  }

  private emit(change: PresenceChange): void {
    this.events.emit("change", change);
  }
}
