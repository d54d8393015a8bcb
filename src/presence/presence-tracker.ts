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

/**
 * This long after its JOIN, a newcomer has had the welcomes: who was already here is
 * told once, as one `here` change, and anyone heard of later is a `join`.
 */
export const SETTLE_AFTER_JOIN_MS = WELCOME_MAX_DELAY_MS + 1000;

/**
 * A neighbour whose last link was lost without a goodbye is unreachable unless it is
 * heard from (by another path) within this long: it is no longer "here".
 */
export const UNREACHABLE_AFTER_MS = 5000;

/**
 * A peer that loses a link without a goodbye says ALIVE within this long (a random
 * delay, so that the neighbours of a peer that died do not all speak at once): the other
 * end, if it is alive and can still reach us another way, hears that we are here.
 */
export const REASSURE_MAX_DELAY_MS = 500;

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

/** Someone here when this node's arrival was summed up (the `here` change). */
export interface PresentMember {
  readonly nodeId: string;
  readonly nick: string;
  readonly hops: number;
  /** Known only from its ALIVE (or NICK): it was here before us. False: we saw its JOIN. */
  readonly already: boolean;
}

/** A change in who is here. */
export type PresenceChange =
  | {
      readonly event: "join";
      readonly nodeId: string;
      readonly nick: string;
      readonly hops: number;
      /**
       * False: it said JOIN. True: it was already here, and we hear of it only now (after
       * our own arrival was summed up by `here`, a healed partition, a return).
       */
      readonly already: boolean;
    }
  | {
      /**
       * Once, after this node joined and the welcomes came, if someone was already here:
       * everyone here then. `nodeId` and `nick` are this node's own.
       */
      readonly event: "here";
      readonly nodeId: string;
      readonly nick: string;
      readonly members: readonly PresentMember[];
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
    }
  | {
      /** Our last link to it was lost without a goodbye, and nobody relayed a word of it since. */
      readonly event: "unreachable";
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
  /** Learned by ALIVE or NICK, not by its JOIN: it was here before we heard of it. */
  already: boolean;
  /**
   * When our last link to it was lost without a goodbye, if it has not been heard from
   * since: not "here" until it is, and unreachable after {@link UNREACHABLE_AFTER_MS}.
   */
  lostAt: number | undefined;
}

/**
 * Presence over the flood: this node says JOIN once it has a neighbour, ALIVE every
 * 30 s (and soon after losing a link without a goodbye), NICK when it renames and LEAVE
 * when it quits; it remembers everyone heard from (any FLOOD counts) and reports who
 * was here when it joined, who joins, leaves, renames, goes silent for 90 s, or cannot
 * be reached once its link is lost.
 */
export class PresenceTracker {
  readonly events = new Emitter<{ change: PresenceChange }>();
  private readonly known = new Map<string, Known>();
  private readonly clock: Clock;
  private readonly unsubscribe: Array<() => void> = [];
  private aliveTimer: TimerHandle | undefined;
  private sweepTimer: TimerHandle | undefined;
  private welcomeTimer: TimerHandle | undefined;
  private settleTimer: TimerHandle | undefined;
  private reassureTimer: TimerHandle | undefined;
  private readonly random: () => number;
  private joined = false;
  /** Our arrival has been summed up (or there was nothing to sum up). */
  private settled = false;
  private stopped = false;

  constructor(
    private readonly node: PeerNode,
    options: { clock?: Clock; random?: () => number } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.unsubscribe.push(
      node.events.on("flood", (flood) => this.onFlood(flood)),
      node.events.on("peer-up", (peer) => this.onPeerUp(peer.nodeId)),
      node.events.on("peer-down", (peer) => this.onPeerDown(peer)),
    );
    this.scheduleAlive();
    this.scheduleSweep();
  }

  /** Everyone heard from in the last 90 s, this node first, then by nick. */
  who(): PresenceEntry[] {
    const now = this.clock.now();
    const others = [...this.known.entries()]
      .filter(([, k]) => present(k, now))
      .map(([nodeId, k]) => ({
        nodeId,
        nick: k.nick,
        hops: this.hopsTo(nodeId, k.hops),
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
    this.clock.clearTimeout(this.settleTimer);
    this.clock.clearTimeout(this.reassureTimer);
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** A neighbour is one hop away, whatever path its latest message happened to take. */
  private hopsTo(nodeId: string, hops: number): number {
    return this.node.isNeighbour(nodeId) ? 1 : hops;
  }

  private onPeerUp(nodeId: string): void {
    const known = this.known.get(nodeId);
    if (known) known.lostAt = undefined;
    this.announceJoin();
  }

  /**
   * A link lost without a goodbye. If it was our last link to that peer, it is not
   * "here" until heard from again; and we say ALIVE, so that the other end, if it is
   * alive and reaches us another way, knows we are still here.
   */
  private onPeerDown(peer: { nodeId: string; graceful: boolean }): void {
    if (peer.graceful || this.stopped) return;
    const known = this.known.get(peer.nodeId);
    if (known?.announced && !this.node.isNeighbour(peer.nodeId)) known.lostAt ??= this.clock.now();
    if (!this.joined || this.reassureTimer !== undefined) return;
    this.reassureTimer = this.clock.setTimeout(
      () => {
        this.reassureTimer = undefined;
        if (this.node.neighbourCount > 0) this.sayAlive();
      },
      Math.floor(this.random() * REASSURE_MAX_DELAY_MS),
    );
  }

  private announceJoin(): void {
    if (this.joined || this.stopped) return;
    this.joined = true;
    this.node.broadcast(
      FloodKind.Join,
      encodePresenceBody({ kind: FloodKind.Join, nick: this.node.nick }),
    );
    this.settleTimer = this.clock.setTimeout(() => this.settle(), SETTLE_AFTER_JOIN_MS);
  }

  /** The welcomes are in: who was already here, told once, if anyone was. */
  private settle(): void {
    this.settleTimer = undefined;
    this.settled = true;
    const now = this.clock.now();
    const members: PresentMember[] = [];
    for (const [nodeId, k] of this.known) {
      if (!present(k, now)) continue;
      const { nick, already } = k;
      members.push({ nodeId, nick, hops: this.hopsTo(nodeId, k.hops), already });
    }
    if (!members.some((m) => m.already)) return;
    members.sort((a, b) => a.nick.localeCompare(b.nick));
    this.emit({ event: "here", nodeId: this.node.nodeIdHex, nick: this.node.nick, members });
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
        known.lostAt = undefined;
      } else if (flood.nick !== "") {
        const entry = { nick: flood.nick, hops: flood.hops, lastSeen: flood.receivedAt };
        this.known.set(origin, { ...entry, announced: false, already: false, lostAt: undefined });
      }
      return;
    }
    const hops = this.hopsTo(origin, flood.hops);
    if (presence.kind === FloodKind.Leave) {
      this.known.delete(origin);
      const nick = known?.nick ?? this.neighbourNick(origin) ?? "someone";
      this.emit({ event: "leave", nodeId: origin, nick, reason: presence.reason, hops });
      return;
    }
    const nick = presence.nick;
    const join = presence.kind === FloodKind.Join;
    // Here already, but news to us: it was here before we came, or was out of reach.
    const arrived = !join && (known === undefined || !known.announced);
    const already = arrived || (known?.already === true && !join);
    const entry = { nick, hops: flood.hops, lastSeen: flood.receivedAt, announced: true };
    this.known.set(origin, { ...entry, already, lostAt: undefined });
    if (join) {
      this.emit({ event: "join", nodeId: origin, nick, hops, already: false });
      this.welcome();
    } else if (arrived) {
      // Before our arrival is summed up, `here` tells of it.
      if (this.settled || !this.joined)
        this.emit({ event: "join", nodeId: origin, nick, hops, already: true });
    } else if (known && known.nick !== nick) {
      this.emit({ event: "nick", nodeId: origin, nick, previousNick: known.nick, hops });
    }
  }

  /** The nick a neighbour gave in its HELLO. */
  private neighbourNick(nodeId: string): string | undefined {
    if (!this.node.isNeighbour(nodeId)) return undefined;
    return this.node.neighbours().find((n) => n.nodeId === nodeId)?.nick;
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
      const now = this.clock.now();
      const cutoff = now - PRESENCE_TIMEOUT_MS;
      for (const [nodeId, k] of this.known) {
        if (k.lastSeen <= cutoff) {
          this.known.delete(nodeId);
          if (k.announced)
            this.emit({ event: "timeout", nodeId, nick: k.nick, lastSeen: k.lastSeen });
        } else if (k.lostAt !== undefined && now - k.lostAt >= UNREACHABLE_AFTER_MS) {
          this.known.delete(nodeId);
          this.emit({ event: "unreachable", nodeId, nick: k.nick, lastSeen: k.lastSeen });
        }
      }
      this.scheduleSweep();
    }, PRESENCE_SWEEP_MS);
  }

  private emit(change: PresenceChange): void {
    this.events.emit("change", change);
  }
}

/** Whether an entry counts as here: a member, heard from lately, not out of reach. */
function present(k: Known, now: number): boolean {
  return k.announced && k.lostAt === undefined && now - k.lastSeen < PRESENCE_TIMEOUT_MS;
}
