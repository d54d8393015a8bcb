import type { Endpoint } from "../protocol/endpoint.ts";
import { fromHex, hex } from "../protocol/hex.ts";
import {
  BEACON_BYTES,
  type BeaconProblem,
  bucketOf,
  decodeBeacon,
  encodeBeacon,
  roomTag,
} from "./beacon.ts";

/** When the first beacons go out, in ms after start: often at first, when nobody knows us. */
export const BEACON_START_SCHEDULE_MS: readonly number[] = [0, 500, 1500, 3500];

/** After the start schedule, a beacon this often. */
export const BEACON_INTERVAL_MS = 30_000;

/** Beacons sent to answer newcomers: at most one this often. */
export const ANSWER_INTERVAL_MS = 1000;

/** Node ids remembered from beacons; the least recently heard goes first. */
export const MAX_DISCOVERED = 256;

/**
 * Of {@link MAX_DISCOVERED}, node ids one source host may hold: a host sending beacons
 * with made-up node ids pushes out its own entries, not everyone else's.
 */
export const MAX_DISCOVERED_PER_HOST = 16;

/** A node id not heard for this long is forgotten (it missed two regular beacons). */
export const DISCOVERED_TTL_MS = 2 * BEACON_INTERVAL_MS + 15_000;

/** A node id is dialled at most once this often while it is not a neighbour. */
export const DIAL_INTERVAL_MS = 10_000;

/**
 * Distinct endpoints dialled per source host within {@link HOST_DIAL_WINDOW_MS}: a host
 * that sends beacons with made-up node ids (or forges another host's address) gets us to
 * dial no more than this.
 */
export const MAX_DIALS_PER_HOST = 4;

/** Window of {@link MAX_DIALS_PER_HOST}. */
export const HOST_DIAL_WINDOW_MS = 10_000;

/** Dials from discovery at most, per {@link DIAL_BURST_WINDOW_MS}, whatever their host. */
export const MAX_DIAL_BURST = 4;

/** Window of {@link MAX_DIAL_BURST}. */
export const DIAL_BURST_WINDOW_MS = 1000;

/** How often the driver should send {@link DiscoveryEvent} `tick`. */
export const DISCOVERY_TICK_MS = 250;

/** What {@link Discovery} needs to know about this node. */
export interface DiscoveryOptions {
  /** This node's id, lower-case hex: beacons carrying it are our own, heard back. */
  readonly nodeIdHex: string;
  /** TCP port this node listens on (the beacon says it; the host is the source address). */
  readonly port: number;
  /** The room key (`roomKey(room)`): tags are derived from it. */
  readonly roomKey: Uint8Array;
  /** True if a link to this node id is up: it is not dialled. */
  readonly isNeighbour: (nodeIdHex: string) => boolean;
  /** True while the node has fewer neighbours than its degree: only then does it dial. */
  readonly wantsMore: () => boolean;
}

/** Input to {@link Discovery.handle}. */
export type DiscoveryEvent =
  /** Discovery starts: the start schedule counts from now. */
  | { readonly type: "start" }
  /** Time passed; sent every {@link DISCOVERY_TICK_MS}. */
  | { readonly type: "tick" }
  /** A datagram arrived on the discovery port from `host` (its source IPv4 address). */
  | { readonly type: "beacon"; readonly host: string; readonly bytes: Uint8Array };

/** What the driver is to do. */
export type DiscoveryAction =
  /** Send `bytes` (our beacon for the current time bucket) on every discovery interface. */
  | { readonly type: "send-beacon"; readonly bytes: Uint8Array }
  /** Dial a peer heard on the LAN. */
  | { readonly type: "dial"; readonly endpoint: Endpoint; readonly nodeIdHex: string };

/** Why a datagram was not taken as a beacon of this room from another node. */
export type IgnoredReason =
  | BeaconProblem
  /** Longer than {@link BEACON_BYTES}: dropped before it was decoded. */
  | "too-big"
  /** A tag of no time bucket near ours: another room (or a clock far off). */
  | "wrong-room"
  /** Our own beacon, looped back. */
  | "own"
  /** Port 0: nothing to dial. */
  | "port-zero";

const IGNORED_REASONS: readonly IgnoredReason[] = [
  "too-big",
  "short",
  "magic",
  "version",
  "length",
  "wrong-room",
  "own",
  "port-zero",
];

/** Counters, for tests and logs. */
export interface DiscoveryStats {
  beaconsSent: number;
  /** Beacons of this room from other node ids. */
  beaconsAccepted: number;
  readonly ignored: Record<IgnoredReason, number>;
  dials: number;
  /** Dials not made because the source host reached {@link MAX_DIALS_PER_HOST}. */
  hostLimited: number;
  /** Dials put off because of {@link MAX_DIAL_BURST}. */
  burstLimited: number;
  /** Node ids pushed out of the full table. */
  evicted: number;
}

/** A node id heard on the LAN. */
export interface DiscoveredPeer {
  readonly nodeIdHex: string;
  /** Where its last beacon came from, and the port it gave. */
  readonly endpoint: Endpoint;
  readonly lastHeardAt: number;
  /** When discovery last dialled it; undefined if never. */
  readonly lastDialAt: number | undefined;
}

/** The tags of one time bucket, and our beacon for it. */
interface Tags {
  readonly bucket: number;
  readonly beacon: Uint8Array;
  /** This bucket's tag and its neighbours'. */
  readonly accepted: readonly Uint8Array[];
}

interface Entry {
  nodeIdHex: string;
  endpoint: Endpoint;
  lastHeardAt: number;
  lastDialAt: number | undefined;
}

/**
 * LAN discovery's decisions, without sockets or timers (as iroh-gossip's `handle(event,
 * now)`): when to send a beacon, which beacons to believe, whom to dial. Time is the
 * caller's, in unix ms (tags depend on the wall clock's time bucket).
 *
 * Beacons go out at 0, 0.5, 1.5 and 3.5 s after start, then every 30 s; a beacon from a
 * node id not in the table is answered with one beacon (at most one a second), so that a
 * newcomer hears everyone within about a second. A peer heard is dialled while the node
 * wants more neighbours and the peer is not one, at most once per 10 s per node id, and
 * within per-host and overall dial limits.
 */
export class Discovery {
  readonly stats: DiscoveryStats = {
    beaconsSent: 0,
    beaconsAccepted: 0,
    ignored: Object.fromEntries(IGNORED_REASONS.map((r) => [r, 0])) as Record<
      IgnoredReason,
      number
    >,
    dials: 0,
    hostLimited: 0,
    burstLimited: 0,
    evicted: 0,
  };

  /** By node id, least recently heard first. */
  private readonly table = new Map<string, Entry>();
  private readonly perHost = new Map<string, number>();
  /** Per source host, the endpoints dialled within {@link HOST_DIAL_WINDOW_MS}. */
  private readonly hostDials = new Map<string, Array<{ key: string; at: number }>>();
  private recentDials: number[] = [];
  private startedAt: number | undefined;
  private scheduled = 0;
  private nextBeaconAt = Number.POSITIVE_INFINITY;
  private answerDue = false;
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  private tags: Tags | undefined;
  private readonly nodeId: Uint8Array;

  constructor(private readonly options: DiscoveryOptions) {
    if (!/^[0-9a-f]{64}$/.test(options.nodeIdHex)) {
      throw new RangeError("nodeIdHex is not 32 bytes of lower-case hex");
    }
    this.nodeId = fromHex(options.nodeIdHex);
  }

  /** Takes one event; returns what to do now. */
  handle(event: DiscoveryEvent, now: number): DiscoveryAction[] {
    const actions: DiscoveryAction[] = [];
    switch (event.type) {
      case "start":
        this.startedAt = now;
        this.scheduled = 0;
        this.nextBeaconAt = now;
        this.tick(now, actions);
        break;
      case "tick":
        this.tick(now, actions);
        break;
      case "beacon": {
        const ignored = this.beacon(event.host, event.bytes, now, actions);
        if (ignored !== undefined) this.stats.ignored[ignored]++;
        break;
      }
    }
    return actions;
  }

  /** The node ids in the table, least recently heard first. */
  discovered(): DiscoveredPeer[] {
    return [...this.table.values()].map((e) => ({ ...e }));
  }

  private tick(now: number, actions: DiscoveryAction[]): void {
    if (this.startedAt !== undefined && now >= this.nextBeaconAt) {
      this.send(now, actions);
      this.scheduled++;
      const offset = BEACON_START_SCHEDULE_MS[this.scheduled];
      this.nextBeaconAt = offset !== undefined ? this.startedAt + offset : now + BEACON_INTERVAL_MS;
    } else if (this.answerDue && now - this.lastAnswerAt >= ANSWER_INTERVAL_MS) {
      this.lastAnswerAt = now;
      this.send(now, actions);
    }
    this.forgetStale(now);
    if (!this.options.wantsMore()) return;
    for (const entry of this.table.values()) this.maybeDial(entry, now, actions);
  }

  /** Takes a datagram; returns why it was ignored, if it was. */
  private beacon(
    host: string,
    bytes: Uint8Array,
    now: number,
    actions: DiscoveryAction[],
  ): IgnoredReason | undefined {
    // Checked before anything is decoded or copied: the datagram may be of any size.
    if (bytes.length > BEACON_BYTES) return "too-big";
    const decoded = decodeBeacon(bytes);
    if (!decoded.ok) return decoded.reason;
    const { tag, nodeId, port } = decoded.beacon;
    if (!this.tagsFor(now).accepted.some((t) => equalBytes(t, tag))) {
      return "wrong-room";
    }
    const nodeIdHex = hex(nodeId);
    if (nodeIdHex === this.options.nodeIdHex) return "own";
    if (port === 0) return "port-zero";
    this.stats.beaconsAccepted++;

    const endpoint = { host, port };
    let entry = this.table.get(nodeIdHex);
    if (entry === undefined) {
      entry = { nodeIdHex, endpoint, lastHeardAt: now, lastDialAt: undefined };
      this.admit(entry);
      this.answerDue = true;
      if (now - this.lastAnswerAt >= ANSWER_INTERVAL_MS) {
        this.lastAnswerAt = now;
        this.send(now, actions);
      }
    } else {
      // Moved to the back: the table's order is the order of last hearing.
      this.table.delete(nodeIdHex);
      this.table.set(nodeIdHex, entry);
      if (entry.endpoint.host !== host) {
        this.countHost(entry.endpoint.host, -1);
        this.countHost(host, +1);
      }
      entry.endpoint = endpoint;
      entry.lastHeardAt = now;
    }
    if (this.options.wantsMore()) this.maybeDial(entry, now, actions);
    return undefined;
  }

  private admit(entry: Entry): void {
    const host = entry.endpoint.host;
    if ((this.perHost.get(host) ?? 0) >= MAX_DISCOVERED_PER_HOST) {
      for (const other of this.table.values()) {
        if (other.endpoint.host === host) {
          this.remove(other);
          break;
        }
      }
      this.stats.evicted++;
    } else if (this.table.size >= MAX_DISCOVERED) {
      const oldest = this.table.values().next().value;
      if (oldest !== undefined) this.remove(oldest);
      this.stats.evicted++;
    }
    this.table.set(entry.nodeIdHex, entry);
    this.countHost(host, +1);
  }

  private remove(entry: Entry): void {
    this.table.delete(entry.nodeIdHex);
    this.countHost(entry.endpoint.host, -1);
  }

  private countHost(host: string, delta: number): void {
    const n = (this.perHost.get(host) ?? 0) + delta;
    if (n > 0) this.perHost.set(host, n);
    else this.perHost.delete(host);
  }

  private forgetStale(now: number): void {
    for (const entry of this.table.values()) {
      if (now - entry.lastHeardAt < DISCOVERED_TTL_MS) break;
      this.remove(entry);
    }
    for (const [host, dials] of this.hostDials) {
      if (dials.every((d) => now - d.at >= HOST_DIAL_WINDOW_MS)) this.hostDials.delete(host);
    }
  }

  private maybeDial(entry: Entry, now: number, actions: DiscoveryAction[]): void {
    if (entry.lastDialAt !== undefined && now - entry.lastDialAt < DIAL_INTERVAL_MS) return;
    if (this.options.isNeighbour(entry.nodeIdHex)) return;
    const { host, port } = entry.endpoint;
    const key = `${port}`;
    const dials = (this.hostDials.get(host) ?? []).filter((d) => now - d.at < HOST_DIAL_WINDOW_MS);
    if (
      !dials.some((d) => d.key === key) &&
      new Set(dials.map((d) => d.key)).size >= MAX_DIALS_PER_HOST
    ) {
      // Marked as dialled so that the refusal is counted once per interval, not per tick.
      entry.lastDialAt = now;
      this.stats.hostLimited++;
      return;
    }
    this.recentDials = this.recentDials.filter((at) => now - at < DIAL_BURST_WINDOW_MS);
    if (this.recentDials.length >= MAX_DIAL_BURST) {
      this.stats.burstLimited++;
      return; // tried again on a later tick
    }
    this.recentDials.push(now);
    dials.push({ key, at: now });
    this.hostDials.set(host, dials);
    entry.lastDialAt = now;
    this.stats.dials++;
    actions.push({ type: "dial", endpoint: { host, port }, nodeIdHex: entry.nodeIdHex });
  }

  private send(now: number, actions: DiscoveryAction[]): void {
    this.answerDue = false;
    this.stats.beaconsSent++;
    actions.push({ type: "send-beacon", bytes: this.tagsFor(now).beacon });
  }

  private tagsFor(now: number): Tags {
    const bucket = bucketOf(now);
    if (this.tags?.bucket !== bucket) {
      const key = this.options.roomKey;
      const own = roomTag(key, bucket);
      const beacon = encodeBeacon({ tag: own, nodeId: this.nodeId, port: this.options.port });
      // Clocks a bucket apart still meet: a beacon of the bucket before or after counts.
      const accepted = [own, roomTag(key, bucket - 1), roomTag(key, bucket + 1)];
      this.tags = { bucket, beacon, accepted };
    }
    return this.tags;
  }
}

/** Equal lengths and bytes, in time independent of where they differ. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
