import type { ConsolaInstance } from "consola";
import type { Clock, TimerHandle } from "../node/clock.ts";
import { type ChatMessage, Delivery } from "../node/delivery.ts";
import { Emitter } from "../node/emitter.ts";
import { TokenBucket } from "../node/flood-limits.ts";
import type { NeighbourInfo } from "../node/node-events.ts";
import type { PeerNode } from "../node/peer-node.ts";
import { FloodKind, FrameType, MESSAGE_ID_BYTES, WireErrorCode } from "../protocol/constants.ts";
import { floodOrigin, floodSeq, keptInHistory } from "../protocol/flood.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { hex } from "../protocol/hex.ts";
import { encodeHistory, SyncOp } from "../protocol/sync.ts";
import { type Gap, GapTracker } from "./gaps.ts";
import type { HistoryStore } from "./store.ts";
import { SYNC_RECENT_MS, type SyncAction, SyncSession, type SyncView } from "./sync-session.ts";

/** Anti-entropy: a round with one neighbour (the least recently synced) this often. */
export const SYNC_INTERVAL_MS = 30_000;

/** After sync brought news, the other neighbours are offered it this soon. */
export const SPREAD_DELAY_MS = 200;

/** A round that has not finished in this long is abandoned. */
export const SYNC_ROUND_TIMEOUT_MS = 30_000;

/** Rounds a neighbour may start with us: one every 2 s, five at once. */
export const SYNC_BEGIN_PER_SECOND = 0.5;
export const SYNC_BEGIN_BURST = 5;

/** Refused rounds, or HISTORY frames nobody asked for, before a neighbour is dropped. */
export const MAX_SYNC_ABUSE = 50;

/** HISTORY frames sent per turn while the link is not congested. */
const PUSH_BATCH = 64;

/** How long to wait for a congested link before pushing more. */
const PUSH_RETRY_MS = 20;

/** How often gaps are checked and the store pruned. */
const SWEEP_MS = 5_000;
const PRUNE_MS = 60 * 60_000;

/** A message shown late: it arrived by sync, not live. */
export type LateMessage = ChatMessage;

/** Events of a {@link History}. */
export interface HistoryEvents {
  /** A message this peer missed, brought by sync. */
  late: LateMessage;
  /** Messages of one origin that sync could not bring within a minute. */
  gap: Gap;
  /** A round with a neighbour ended: how many messages came and went. */
  round: { readonly nodeId: string; readonly inSync: boolean; readonly pushed: number };
}

/** What one neighbour's sync looks like from here. */
interface NeighbourSync {
  /** The round we started, and the one it started. */
  out: { readonly session: SyncSession; readonly startedAt: number } | undefined;
  in: { readonly session: SyncSession; readonly startedAt: number } | undefined;
  /**
   * The latest rounds, whatever their role, newest last: pushes of a round may still be
   * arriving after its last SYNC frame, or after a newer round began.
   */
  readonly recent: SyncSession[];
  lastRoundAt: number;
  readonly begins: TokenBucket;
  abuse: number;
  /** Our messages it lacks, oldest first (latin1 ids). */
  queue: string[];
  pushing: boolean;
}

/**
 * The room's history at this peer: keeps every message that carries text, reconciles
 * with neighbours (docs/PROTOCOL.md §5c) when a link comes up and every
 * {@link SYNC_INTERVAL_MS}, and passes on what it learns to its other neighbours at
 * once, so a healed partition is whole again within seconds. It drives
 * {@link SyncSession}s, which decide, and does the I/O they ask for.
 */
export class History {
  readonly events: Emitter<HistoryEvents>;
  private readonly neighbours = new Map<string, NeighbourSync>();
  private readonly gaps = new GapTracker();
  private readonly view: SyncView;
  private readonly timers: TimerHandle[] = [];
  private spreadTimer: TimerHandle | undefined;
  private readonly spreadExcept = new Set<string>();
  private closed = false;
  private lastPrune: number;

  constructor(
    private readonly node: PeerNode,
    private readonly store: HistoryStore,
    private readonly clock: Clock,
    private readonly log: ConsolaInstance,
    private readonly random: () => number = Math.random,
  ) {
    this.events = new Emitter((error) => log.error("history listener failed:", error));
    this.view = {
      ids: () => store.ids(),
      horizon: (now) => store.horizon(now),
      maxMessages: store.maxMessages,
    };
    this.lastPrune = clock.now();
    for (const [origin, seq] of store.highestSeqs()) this.gaps.seed(origin, seq);
    node.handle(FrameType.Sync, (from, frame) => this.onSync(from, frame));
    node.handle(FrameType.History, (from, frame) => this.onHistory(from, frame));
    node.events.on("message", (m) => this.keep(m));
    // Chat comes as "message" too; other kept kinds (direct messages) only as "flood".
    node.events.on("flood", (f) => {
      if (f instanceof Delivery && f.kind !== FloodKind.Chat) this.keep(f);
    });
    node.events.on("peer-up", (p) => this.onPeerUp(p));
    node.events.on("peer-down", (p) => this.neighbours.delete(p.nodeId));
    this.schedule(SYNC_INTERVAL_MS * (0.5 + this.random()), () => this.antiEntropy());
    this.schedule(SWEEP_MS, () => this.sweep());
  }

  /** Stops the timers and writes what is pending. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.clock.clearTimeout(this.spreadTimer);
    this.store.close();
  }

  /** Starts a round with a neighbour now (tests, and a new link). */
  syncWith(nodeId: string, recent = false): void {
    const n = this.neighbour(nodeId);
    const now = this.clock.now();
    if (n.out && now - n.out.startedAt < SYNC_ROUND_TIMEOUT_MS && !n.out.session.done) return;
    // The salt must be unpredictable: a peer that could guess it could make its own
    // message ids collide with others' keys and hide them from the round.
    const [a, b, id] = crypto.getRandomValues(new Uint32Array(3)) as unknown as [
      number,
      number,
      number,
    ];
    const [session, begin] = SyncSession.begin(id, [a, b], this.view, now, recent);
    n.out = { session, startedAt: now };
    remember(n, session);
    n.lastRoundAt = now;
    this.node.sendTo(nodeId, begin);
  }

  /**
   * A live or own message: kept if its kind is, counted for gaps if its kind is counted.
   * Parts above the node call it for their own messages of other kinds (direct ones).
   */
  keep(m: ChatMessage): void {
    if (!(m instanceof Delivery) || !keptInHistory(m.kind)) return;
    const payload = m.payload;
    if (this.store.add(payload, 0, payload.length, m.receivedAt) !== "added") return;
    if (m.kind === FloodKind.Chat) this.gaps.saw(m.origin, m.seq, this.clock.now());
  }

  private onPeerUp(peer: NeighbourInfo): void {
    this.neighbour(peer.nodeId);
    // The side with the lower id starts the rounds of a new link: one now, and one when
    // what was too young for it (still in flight by flood) is old enough.
    if (this.node.nodeIdHex >= peer.nodeId) return;
    this.syncWith(peer.nodeId, true);
    this.schedule(SYNC_RECENT_MS + SPREAD_DELAY_MS, () => {
      if (this.node.isNeighbour(peer.nodeId)) this.syncWith(peer.nodeId);
    });
  }

  private onSync(from: string, frame: Frame): void {
    const message = SyncSession.decode(frame.payload);
    const n = this.neighbour(from);
    const now = this.clock.now();
    if (message.op === SyncOp.Begin) {
      if (!n.begins.take(now)) {
        this.abuse(from, n, "starts sync rounds faster than allowed");
        return;
      }
      const [session, actions] = SyncSession.answer(message, this.view, now);
      n.in = { session, startedAt: now };
      remember(n, session);
      this.perform(from, n, actions);
      return;
    }
    const round = [n.out, n.in].find((r) => r?.session.id === message.session);
    // A round abandoned here (timed out, replaced): its late frames are dropped.
    if (round) this.perform(from, n, round.session.receive(message));
  }

  private onHistory(from: string, frame: Frame): void {
    const n = this.neighbour(from);
    const { bytes, start } = frame;
    const whole = frame.end - start >= MESSAGE_ID_BYTES;
    const expected = whole && n.recent.some((session) => session.expects(bytes, start));
    if (!expected) {
      this.abuse(from, n, "sends history nobody asked for");
      return;
    }
    const horizon = this.store.horizon(this.clock.now());
    const window = { horizon, held: (b: Uint8Array, at: number) => this.store.has(b, at) };
    const delivery = this.node.acceptStored(from, frame, window);
    if (delivery === undefined) return;
    const payload = delivery.payload.slice();
    if (this.store.add(payload, 0, payload.length, delivery.receivedAt) !== "added") return;
    const late = new Delivery(payload, 0, payload.length, delivery.receivedAt, 1, undefined, true);
    if (late.kind === FloodKind.Chat)
      this.gaps.saw(hex(floodOrigin(payload, 0)), floodSeq(payload, 0), this.clock.now());
    this.events.emit("late", late);
    this.spread(from);
  }

  private perform(to: string, n: NeighbourSync, actions: readonly SyncAction[]): void {
    for (const action of actions) {
      if (action.kind === "send") this.node.sendTo(to, action.frame);
      else if (action.kind === "push") this.push(to, n, action.ids);
      else this.events.emit("round", { nodeId: to, inSync: action.inSync, pushed: action.pushed });
    }
  }

  /** Queues our messages a neighbour lacks; they go out oldest first, paced by its link. */
  private push(to: string, n: NeighbourSync, ids: readonly string[]): void {
    n.queue.push(...ids);
    if (!n.pushing) {
      n.pushing = true;
      this.drain(to, n);
    }
  }

  private drain(to: string, n: NeighbourSync): void {
    if (this.closed || this.neighbours.get(to) !== n) return;
    while (n.queue.length > 0) {
      if (this.node.congested(to)) {
        this.clock.setTimeout(() => this.drain(to, n), PUSH_RETRY_MS);
        return;
      }
      const batch = n.queue.splice(0, PUSH_BATCH);
      for (const message of this.store.get(batch))
        this.node.sendTo(to, encodeHistory(message.payload));
    }
    n.pushing = false;
  }

  /** Offers what we just learned from `from` to every other neighbour, soon. */
  private spread(from: string): void {
    this.spreadExcept.add(from);
    if (this.spreadTimer !== undefined) return;
    this.spreadTimer = this.clock.setTimeout(() => {
      this.spreadTimer = undefined;
      for (const nodeId of this.neighbours.keys())
        if (!this.spreadExcept.has(nodeId)) this.syncWith(nodeId);
      this.spreadExcept.clear();
    }, SPREAD_DELAY_MS);
  }

  private antiEntropy(): void {
    let oldest: [string, NeighbourSync] | undefined;
    for (const entry of this.neighbours)
      if (oldest === undefined || entry[1].lastRoundAt < oldest[1].lastRoundAt) oldest = entry;
    if (oldest && this.node.isNeighbour(oldest[0])) this.syncWith(oldest[0]);
    this.schedule(SYNC_INTERVAL_MS * (0.75 + this.random() / 2), () => this.antiEntropy());
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const gap of this.gaps.due(now)) this.events.emit("gap", gap);
    if (now - this.lastPrune >= PRUNE_MS) {
      this.lastPrune = now;
      this.store.prune(now);
    }
    this.schedule(SWEEP_MS, () => this.sweep());
  }

  /** A neighbour misusing sync: ignored a few times, then dropped like a flooder. */
  private abuse(from: string, n: NeighbourSync, what: string): void {
    n.abuse++;
    if (n.abuse === 1) this.log.warn(`${from.slice(0, 8)} ${what}: ignored`);
    if (n.abuse >= MAX_SYNC_ABUSE)
      this.node.disconnect(from, {
        kind: "error",
        code: WireErrorCode.RateLimited,
        message: `${what} (${n.abuse} times)`,
      });
  }

  private neighbour(nodeId: string): NeighbourSync {
    let n = this.neighbours.get(nodeId);
    if (!n) {
      n = {
        out: undefined,
        in: undefined,
        lastRoundAt: 0,
        begins: new TokenBucket(SYNC_BEGIN_PER_SECOND, SYNC_BEGIN_BURST, this.clock.now()),
        abuse: 0,
        recent: [],
        queue: [],
        pushing: false,
      };
      this.neighbours.set(nodeId, n);
    }
    return n;
  }

  private schedule(ms: number, fn: () => void): void {
    const timer = this.clock.setTimeout(() => {
      const i = this.timers.indexOf(timer);
      if (i >= 0) this.timers.splice(i, 1);
      if (!this.closed) fn();
    }, ms);
    this.timers.push(timer);
  }
}

/** Rounds of one neighbour whose HISTORY may still be arriving. */
const RECENT_ROUNDS = 4;

function remember(n: NeighbourSync, session: SyncSession): void {
  n.recent.push(session);
  if (n.recent.length > RECENT_ROUNDS) n.recent.shift();
}
