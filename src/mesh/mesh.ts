import type { ConsolaInstance } from "consola";
import { type Clock, systemClock, type TimerHandle } from "../node/clock.ts";
import type { NeighbourInfo, PeerDown } from "../node/node-events.ts";
import type { PeerNode } from "../node/peer-node.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { fromHex, hex } from "../protocol/hex.ts";
import { encodePeers, MAX_PEERS_PER_FRAME, type PeerAddress } from "../protocol/peers.ts";
import { AddressBook, type BookEntry } from "./address-book.ts";
import { BACKOFF_INITIAL_MS, backoffMs, jitter, LOST_BACKOFF_MAX_MS } from "./backoff.ts";

/** Default number of links each node keeps (gossipsub's D, HyParView's active view). */
export const DEFAULT_DEGREE = 4;

/** The mesh checks its degree this often, besides reacting to events. */
export const MESH_TICK_MS = 1000;

/** Changes to the neighbour set are announced to neighbours at most this often. */
export const PEERS_DEBOUNCE_MS = 500;

/**
 * A neighbour lost without a goodbye (crash, reset, silence, partition) is redialled
 * up to this many times, backing off from 1 s to 30 s (about three minutes in all), while
 * this node has fewer than twice its degree in links. Then it is left to the degree
 * logic like any other known address.
 */
export const MAX_NEIGHBOUR_REDIALS = 10;

/** Lost neighbours are redialled only while this node has fewer than this × degree links. */
export const REDIAL_CEILING_FACTOR = 2;

/** Addresses and node ids the user dropped ({@link Mesh.drop}) remembered at most. */
export const MAX_DROPPED = 1000;

interface Redial {
  readonly entry: BookEntry;
  attempts: number;
  timer: TimerHandle | undefined;
  /** When the timer fires (clock ms). */
  dueAt: number;
  /** Brought forward because the network changed: dial even if well connected. */
  nudged: boolean;
}

/** Options for {@link Mesh}. */
export interface MeshOptions {
  /** Links to keep; 0 = only the links the user asked for. */
  readonly degree?: number;
  readonly maxPeers: number;
  readonly logger: ConsolaInstance;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Addresses the user pinned: redialled by {@link PinnedPeers}, not by the mesh. */
  readonly isPinned?: (endpoint: Endpoint) => boolean;
}

/**
 * Keeps the network in one piece. Neighbours tell each other whom they are linked to
 * (PEERS, after each handshake and whenever the neighbour set changes); every address
 * goes into a bounded {@link AddressBook}; and while this node has fewer than `degree`
 * links it dials known addresses in random order, skipping those still backed off after
 *  failures. A neighbour lost without a goodbye is redialled on its own schedule (1 s,
 * doubling to 30 s, jittered) even at full degree (up to twice the degree), so a
 * restarted peer or the far side of a healed partition is found again. When a peer in the middle of a chain dies, its
 * two sides already know each other from PEERS and link up.
 */
export class Mesh {
  readonly book: AddressBook;
  readonly degree: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly dialing = new Set<string>();
  private readonly redials = new Map<string, Redial>();
  /** Address keys and node ids the user disconnected from: never dialled by the mesh. */
  private readonly dropped = new Set<string>();
  private readonly unsubscribe: Array<() => void> = [];
  private tick: TimerHandle | undefined;
  private announceTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly node: PeerNode,
    private readonly options: MeshOptions,
  ) {
    this.degree = options.degree ?? DEFAULT_DEGREE;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.book = new AddressBook(() => this.clock.now(), this.random);
    this.unsubscribe.push(
      node.events.on("peer-up", (peer) => this.onPeerUp(peer)),
      node.events.on("peer-down", (peer) => this.onPeerDown(peer)),
      node.events.on("peers", ({ peers }) => this.onPeers(peers)),
      node.events.on("cut-off", () => this.onCutOff()),
    );
    this.scheduleTick();
  }

  /** Stops dialling and announcing. */
  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.tick);
    this.clock.clearTimeout(this.announceTimer);
    for (const r of this.redials.values()) this.clock.clearTimeout(r.timer);
    this.redials.clear();
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /**
   * The user disconnected from this neighbour: neither its address nor its node id is
   * dialled by the mesh again (it may still dial us) until {@link allow}ed.
   */
  drop(peer: { readonly endpoint?: Endpoint; readonly nodeId?: string }): void {
    for (const key of [peer.endpoint && formatEndpoint(peer.endpoint), peer.nodeId]) {
      if (key === undefined) continue;
      this.dropped.delete(key);
      this.dropped.add(key);
      if (this.dropped.size > MAX_DROPPED)
        this.dropped.delete(this.dropped.values().next().value as string);
    }
    for (const [key, r] of this.redials) {
      if (!this.isDropped(r.entry)) continue;
      this.clock.clearTimeout(r.timer);
      this.redials.delete(key);
    }
  }

  /** The user asked for this address, or linked to this node, again: the mesh may dial it. */
  allow(peer: { readonly endpoint?: Endpoint; readonly nodeId?: string }): void {
    if (peer.endpoint) this.dropped.delete(formatEndpoint(peer.endpoint));
    if (peer.nodeId !== undefined) this.dropped.delete(peer.nodeId);
  }

  private isDropped(entry: BookEntry): boolean {
    if (this.dropped.size === 0) return false;
    return (
      this.dropped.has(entry.key) || (entry.nodeId !== undefined && this.dropped.has(entry.nodeId))
    );
  }

  /** Dials known addresses while this node has fewer links than its degree. */
  maintain(): void {
    if (this.stopped || this.degree === 0) return;
    let need = this.degree - this.node.neighbourCount - this.dialing.size;
    if (need <= 0 || this.node.connectionCount >= this.options.maxPeers) return;
    const candidates = this.book.candidates((e) => this.dialable(e));
    for (const entry of candidates) {
      if (need-- <= 0) break;
      this.dialInBackground(entry);
    }
  }

  /**
   * No neighbour answers (the node's `cut-off`): they may all be across a partition, and
   * count as links until their silence reaches 30 s. Up to `degree` other known
   * addresses are dialled now, as if this node had no link, so that peers on this side
   * of the split are found before the silent links are given up.
   */
  private onCutOff(): void {
    if (this.stopped || this.degree === 0) return;
    const room = this.options.maxPeers - this.node.connectionCount;
    const candidates = this.book.candidates((e) => this.dialable(e));
    const chosen = candidates.slice(0, Math.max(0, Math.min(this.degree, room)));
    this.options.logger.debug(
      `mesh: no neighbour answers; dialling ${chosen.length} other known address(es)`,
    );
    for (const entry of chosen) this.dialInBackground(entry);
  }

  /** An address the mesh may dial now: not under way, not ours, not a neighbour's, not the user's. */
  private dialable(e: BookEntry): boolean {
    return (
      !this.dialing.has(e.key) &&
      !this.redials.has(e.key) &&
      !this.isDropped(e) &&
      !(
        e.nodeId !== undefined &&
        (e.nodeId === this.node.nodeIdHex || this.node.isNeighbour(e.nodeId))
      ) &&
      !this.options.isPinned?.(e.endpoint)
    );
  }

  private dialInBackground(entry: BookEntry): void {
    void this.dial(entry).catch((error) =>
      this.options.logger.error(`mesh: dialling ${entry.key} failed:`, error),
    );
  }

  private async dial(entry: BookEntry): Promise<void> {
    this.dialing.add(entry.key);
    const outcome = await this.node.connect(entry.endpoint);
    this.dialing.delete(entry.key);
    if (this.stopped) return;
    switch (outcome.status) {
      case "connected":
      case "already-connected":
        this.book.succeeded(entry, outcome.peer.nodeId);
        break;
      case "self":
        this.book.markSelf(entry);
        break;
      case "failed": {
        const delay = this.book.failed(entry);
        this.options.logger.debug(
          `mesh: could not reach ${entry.key}: ${outcome.reason}; next try in ${Math.round(delay / 100) / 10} s`,
        );
        break;
      }
    }
    this.maintain();
  }

  private onPeerUp(peer: NeighbourInfo): void {
    // A relayed neighbour's address is its relay's: nothing to learn or to redial.
    if (peer.listenPort > 0 && !peer.via)
      this.book.succeeded(this.book.learn(peer.address, peer.nodeId, false), peer.nodeId);
    this.nudgeRedials();
    this.sendPeers(peer.nodeId);
    this.scheduleAnnounce();
  }

  private onPeerDown(peer: PeerDown): void {
    if (this.stopped) return;
    if (peer.listenPort > 0 && !peer.via) {
      const entry = this.book.learn(peer.address, peer.nodeId, false);
      this.book.failed(entry);
      // Gone without a goodbye: probably coming back (a restart, a healed partition).
      if (!peer.graceful && !this.options.isPinned?.(peer.address) && !this.isDropped(entry))
        this.scheduleRedial(entry);
    }
    this.scheduleAnnounce();
    this.maintain();
  }

  /**
   * A new link is a sign that the network has changed (a partition healed, a router came
   * back): neighbours we lost are tried again within about a second, rather than when
   * their back-off, grown long while the network was down, runs out. Each nudge still
   * counts as an attempt, so a peer that is really gone is not redialled forever.
   */
  private nudgeRedials(): void {
    const soon = this.clock.now() + BACKOFF_INITIAL_MS;
    for (const r of this.redials.values()) {
      if (r.timer === undefined || r.dueAt <= soon) continue;
      // Dialled even if we are well connected by then: after a partition the node at
      // the other end may have no one else to reach it (its own back-off is long too).
      r.nudged = true;
      this.scheduleRedial(r.entry, BACKOFF_INITIAL_MS);
    }
  }

  private scheduleRedial(entry: BookEntry, delayMs?: number): void {
    let redial = this.redials.get(entry.key);
    if (!redial) {
      redial = { entry, attempts: 0, timer: undefined, dueAt: 0, nudged: false };
      this.redials.set(entry.key, redial);
    }
    const r = redial;
    this.clock.clearTimeout(r.timer);
    const backoff = backoffMs(r.attempts, BACKOFF_INITIAL_MS, LOST_BACKOFF_MAX_MS);
    const delay = jitter(delayMs ?? backoff, this.random);
    r.dueAt = this.clock.now() + delay;
    r.timer = this.clock.setTimeout(
      () =>
        void this.redial(r).catch((error) => {
          this.options.logger.error(`mesh: redialling ${r.entry.key} failed:`, error);
          this.redials.delete(r.entry.key);
        }),
      delay,
    );
  }

  private async redial(r: Redial): Promise<void> {
    r.timer = undefined;
    const { entry } = r;
    if (this.stopped || this.redials.get(entry.key) !== r) return;
    if (this.isDropped(entry)) {
      this.redials.delete(entry.key);
      return;
    }
    if (entry.nodeId !== undefined && this.node.isNeighbour(entry.nodeId)) {
      this.redials.delete(entry.key);
      return;
    }
    const nudged = r.nudged;
    r.nudged = false;
    if (!nudged && this.node.neighbourCount >= this.degree * REDIAL_CEILING_FACTOR) {
      // Well connected without it: let it go, or links would only ever accumulate.
      this.redials.delete(entry.key);
      this.options.logger.debug(`mesh: not redialling ${entry.key}: well connected without it`);
      return;
    }
    if (this.dialing.has(entry.key)) {
      this.scheduleRedial(entry);
      return;
    }
    this.dialing.add(entry.key);
    const outcome = await this.node.connect(entry.endpoint);
    this.dialing.delete(entry.key);
    if (this.stopped) return;
    if (outcome.status === "failed") {
      this.book.failed(entry);
      r.attempts++;
      if (r.attempts >= MAX_NEIGHBOUR_REDIALS) this.redials.delete(entry.key);
      else this.scheduleRedial(entry);
      this.options.logger.debug(
        `mesh: redialling ${entry.key} failed (${outcome.reason}); ${this.redials.has(entry.key) ? `next try in ${Math.round((r.dueAt - this.clock.now()) / 100) / 10} s` : "giving up"}`,
      );
      return;
    }
    this.redials.delete(entry.key);
    if (outcome.status === "self") this.book.markSelf(entry);
    else this.book.succeeded(entry, outcome.peer.nodeId);
  }

  private onPeers(peers: readonly PeerAddress[]): void {
    for (const p of peers) {
      const entry = this.book.learn({ host: p.host, port: p.port }, hex(p.nodeId), true);
      if (entry.nodeId === this.node.nodeIdHex) this.book.markSelf(entry);
    }
    this.maintain();
  }

  /** Tells one neighbour about our other neighbours that accept connections. */
  private sendPeers(to: string): void {
    const peers = this.node
      .neighbours()
      .filter((n) => n.nodeId !== to && n.listenPort > 0 && !n.via)
      .map((n) => ({ nodeId: fromHex(n.nodeId), host: n.address.host, port: n.address.port }));
    if (peers.length === 0) return;
    // More than fit in one frame: a random selection, different for each neighbour.
    while (peers.length > MAX_PEERS_PER_FRAME)
      peers.splice(Math.floor(this.random() * peers.length), 1);
    this.node.sendTo(to, encodePeers(peers));
  }

  private scheduleAnnounce(): void {
    if (this.announceTimer !== undefined || this.stopped) return;
    this.announceTimer = this.clock.setTimeout(() => {
      this.announceTimer = undefined;
      if (this.stopped) return;
      for (const n of this.node.neighbours()) this.sendPeers(n.nodeId);
    }, PEERS_DEBOUNCE_MS);
  }

  private scheduleTick(): void {
    this.tick = this.clock.setTimeout(() => {
      if (this.stopped) return;
      this.maintain();
      this.scheduleTick();
    }, MESH_TICK_MS);
  }
}
