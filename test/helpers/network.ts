import { expect } from "bun:test";
import type { Connection } from "../../src/link/connection.ts";
import type { Clock } from "../../src/node/clock.ts";
import { type ChatMessage, Delivery } from "../../src/node/delivery.ts";
import type { FloodLimits } from "../../src/node/flood-limits.ts";
import type { NeighbourInfo, PeerDown } from "../../src/node/node-events.ts";
import type { WireTap } from "../../src/node/trace.ts";
import type { PresenceChange } from "../../src/presence/presence-tracker.ts";
import { FloodKind, FrameType, MESSAGE_ID_BYTES } from "../../src/protocol/constants.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { hex } from "../../src/protocol/hex.ts";
import type { Identity } from "../../src/secure/identity.ts";
import { type HistoryConfig, type RunningPeer, startPeer } from "../../src/start-peer.ts";
import type { StreamDial } from "../../src/transport/byte-stream.ts";
import { type TestLogger, testLogger } from "./logger.ts";
import { randomInt } from "./random.ts";
import { waitFor } from "./wait-for.ts";

/** One peer of a test network, with everything it delivered. */
export interface TestPeer {
  readonly index: number;
  readonly peer: RunningPeer;
  readonly log: TestLogger;
  readonly messages: ChatMessage[];
  readonly ups: NeighbourInfo[];
  readonly downs: PeerDown[];
  readonly presence: PresenceChange[];
  /** False once killed (until restarted, which makes a new TestPeer). */
  alive: boolean;
}

/** Options for one peer of a {@link TestNetwork}. */
export interface PeerOptions {
  readonly maxPeers?: number;
  /** Mesh degree; default 0, so the network has exactly the links a test makes. */
  readonly degree?: number;
  readonly logLevel?: number;
  /** Listen port; default 0 (any). */
  readonly port?: number;
  /** Bootstrap peers, as on the command line. */
  readonly peers?: readonly Endpoint[];
  /** How this peer dials (for fault injection); default real TCP. */
  readonly dial?: StreamDial;
  /** Time source (a counting clock finds leaked timers); default the real clock. */
  readonly clock?: Clock;
  /** FLOOD rate limits; the defaults unless a test floods on purpose. */
  readonly floodLimits?: FloodLimits;
  /** Where and how long the peer keeps its history; in memory, a week, by default. */
  readonly history?: HistoryConfig;
  /** Who the peer is; default a fresh identity each launch (a restart keeps the one given). */
  readonly identity?: Identity;
  /** Sees every frame the peer sends, before it is queued. */
  readonly onFrameOut?: (connection: Connection, frame: Uint8Array) => void;
}

/** `[a, b]`: peer `a` dials peer `b`. */
export type Edge = readonly [number, number];

/**
 * Real peers in this process, on 127.0.0.1, linked over real TCP. A wire tap counts
 * every FLOOD each peer sends to each neighbour, per message id, so tests can check
 * that no message crosses a link twice in the same direction.
 */
export class TestNetwork {
  readonly peers: TestPeer[] = [];
  /** `from>to:messageId` → FLOOD frames sent. */
  readonly floodsSent = new Map<string, number>();
  /**
   * `fromNodeId>toNodeId:messageId` → the connection it was sent on, until it arrives: to
   * know when the flood is over. The relay sends a message at most once to a neighbour.
   */
  private readonly inFlight = new Map<string, Connection>();
  private readonly indexById = new Map<string, number>();
  private readonly optionsOf: PeerOptions[] = [];

  static start(n: number, options: PeerOptions = {}): TestNetwork {
    const net = new TestNetwork();
    for (let i = 0; i < n; i++) net.add(options);
    return net;
  }

  add(options: PeerOptions = {}): TestPeer {
    const index = this.peers.length;
    this.optionsOf.push(options);
    const p = this.launch(index, options);
    this.peers.push(p);
    return p;
  }

  private launch(index: number, options: PeerOptions): TestPeer {
    const log = testLogger(options.logLevel ?? 4);
    let self = "";
    const tap: WireTap = {
      frameIn: (neighbour, _conn, frame) => {
        if (frame.type === FrameType.Flood && neighbour !== undefined) {
          const id = hex(frame.payload.subarray(0, MESSAGE_ID_BYTES));
          this.inFlight.delete(`${neighbour}>${self}:${id}`);
        }
      },
      frameOut: (neighbour, conn, frame) => {
        options.onFrameOut?.(conn, frame);
        if (frame[4] !== FrameType.Flood || neighbour === undefined) return;
        const id = hex(frame.subarray(5, 5 + MESSAGE_ID_BYTES));
        this.inFlight.set(`${self}>${neighbour}:${id}`, conn);
        const key = `${index}>${this.indexById.get(neighbour)}:${id}`;
        this.floodsSent.set(key, (this.floodsSent.get(key) ?? 0) + 1);
      },
    };
    const peer = startPeer({
      host: "127.0.0.1",
      port: options.port ?? 0,
      nick: `peer${index}`,
      logger: log.logger,
      tap,
      degree: options.degree ?? 0,
      ...(options.peers ? { peers: options.peers } : {}),
      ...(options.dial ? { dial: options.dial } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.maxPeers ? { maxPeers: options.maxPeers } : {}),
      ...(options.floodLimits ? { floodLimits: options.floodLimits } : {}),
      ...(options.history ? { history: options.history } : {}),
      ...(options.identity ? { identity: options.identity } : {}),
    });
    self = peer.node.nodeIdHex;
    this.indexById.set(peer.node.nodeIdHex, index);
    const p: TestPeer = {
      index,
      peer,
      log,
      messages: [],
      ups: [],
      downs: [],
      presence: [],
      alive: true,
    };
    peer.node.events.on("message", (m) => p.messages.push(m));
    peer.history.events.on("late", (m) => {
      if (m instanceof Delivery && m.kind === FloodKind.Chat) p.messages.push(m);
    });
    peer.node.events.on("peer-up", (x) => p.ups.push(x));
    peer.node.events.on("peer-down", (x) => p.downs.push(x));
    peer.presence.events.on("change", (c) => p.presence.push(c));
    return p;
  }

  peer(i: number): TestPeer {
    const p = this.peers[i];
    if (!p) throw new Error(`no peer ${i}`);
    return p;
  }

  /** Peers not killed. */
  live(): TestPeer[] {
    return this.peers.filter((p) => p.alive);
  }

  /** Stops peer `i` the way kill -9 would: no LEAVE, no BYE, sockets dropped. */
  kill(i: number): void {
    const p = this.peer(i);
    p.alive = false;
    p.peer.abort();
  }

  /** Starts peer `i` again on the same port (a new process: new node id, same command line). */
  restart(i: number): TestPeer {
    const old = this.peer(i);
    if (old.alive) throw new Error(`peer ${i} is running`);
    const options = { ...this.optionsOf[i], port: old.peer.listen.port };
    const p = this.launch(i, options);
    this.peers[i] = p;
    return p;
  }

  /** Links every edge and waits until both ends see each other as neighbours. */
  async link(edges: readonly Edge[]): Promise<void> {
    const outcomes = await Promise.all(
      edges.map(([a, b]) => this.peer(a).peer.connect(this.peer(b).peer.listen)),
    );
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome.status, `edge ${edges[i]}`).toBe("connected");
    }
    await waitFor(
      () => edges.every(([a, b]) => this.linked(a, b)),
      5000,
      "all links up at both ends",
    );
  }

  /** True if peers `a` and `b` are neighbours, as both see it. */
  linked(a: number, b: number): boolean {
    const pa = this.peer(a).peer.node;
    const pb = this.peer(b).peer.node;
    return pa.isNeighbour(pb.nodeIdHex) && pb.isNeighbour(pa.nodeIdHex);
  }

  /** True if the live peers form one connected network. */
  connected(peers: readonly TestPeer[] = this.live()): boolean {
    if (peers.length === 0) return true;
    const byId = new Map(peers.map((p) => [p.peer.node.nodeIdHex, p]));
    const seen = new Set<TestPeer>([peers[0] as TestPeer]);
    const queue = [peers[0] as TestPeer];
    while (queue.length > 0) {
      const p = queue.pop() as TestPeer;
      for (const n of p.peer.node.neighbours()) {
        const q = byId.get(n.nodeId);
        if (q && !seen.has(q)) {
          seen.add(q);
          queue.push(q);
        }
      }
    }
    return seen.size === peers.length;
  }

  /** Sends a chat message from peer `i`. */
  send(i: number, text: string): ChatMessage {
    const outcome = this.peer(i).peer.node.sendChat(text);
    if (outcome.status !== "sent") throw new Error(`send failed: ${JSON.stringify(outcome)}`);
    return outcome.message;
  }

  /** Waits until every given peer has delivered every message in `ids`. */
  async waitDelivered(
    ids: readonly string[],
    peers: readonly TestPeer[] = this.live(),
    timeoutMs = 10_000,
  ): Promise<void> {
    await waitFor(
      () => peers.every((p) => ids.every((id) => p.messages.some((m) => m.id === id))),
      timeoutMs,
      () => {
        const missing = peers.filter(
          (p) => !ids.every((id) => p.messages.some((m) => m.id === id)),
        );
        return `${ids.length} messages at ${peers.length} peers; missing at ${missing.map((p) => `peer${p.index}`).join(", ")}`;
      },
    );
  }

  /**
   * Waits until the flood is over: every FLOOD sent over a link that is still up has
   * been received at its other end (frames on links that went down are gone with them).
   */
  async quiesce(): Promise<void> {
    const live = new Set(this.live().map((p) => p.peer.node.nodeIdHex));
    // Frames still owed: sent on a connection that is open, between two live peers.
    // Frames on a connection that closed went with it (or were drained, and are gone too).
    const owed = () =>
      [...this.inFlight.entries()].filter(([key, conn]) => {
        const [from, rest] = key.split(">") as [string, string];
        const to = rest.slice(0, rest.indexOf(":"));
        return !conn.closed && live.has(from) && live.has(to);
      });
    await waitFor(
      () => owed().length === 0,
      5000,
      () => {
        const names = new Map(this.live().map((p) => [p.peer.node.nodeIdHex, `peer${p.index}`]));
        const open = owed().map(([key]) => {
          const [from, rest] = key.split(">") as [string, string];
          return `${names.get(from)}→${names.get(rest.slice(0, rest.indexOf(":")))}`;
        });
        return `every FLOOD sent to have arrived (${open.length} owed: ${open.slice(0, 5).join(", ")})`;
      },
    );
  }

  /** FLOOD frames of message `id` sent from peer `from` to peer `to`. */
  floods(from: number, to: number, id: string): number {
    return this.floodsSent.get(`${from}>${to}:${id}`) ?? 0;
  }

  /** Each live peer's number of links. */
  degrees(): number[] {
    return this.live().map((p) => p.peer.node.neighbourCount);
  }

  async close(): Promise<void> {
    await Promise.all(this.live().map((p) => p.peer.close("test over")));
  }
}

/** The README's chain: peer i+1 joins through peer i. */
export function chainEdges(n: number): Edge[] {
  return Array.from({ length: n - 1 }, (_, i) => [i + 1, i] as const);
}

/** A ring: a chain closed back on itself. */
export function ringEdges(n: number): Edge[] {
  return [...chainEdges(n), [0, n - 1] as const];
}

/**
 * A connected random graph with cycles: a random spanning tree, then extra random
 * edges until the average degree reaches `degree`.
 */
export function randomGraphEdges(n: number, degree: number, random: () => number): Edge[] {
  const edges: Edge[] = [];
  const has = new Set<string>();
  const add = (a: number, b: number) => {
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (a === b || has.has(key)) return false;
    has.add(key);
    edges.push([a, b]);
    return true;
  };
  for (let i = 1; i < n; i++) add(i, randomInt(random, i));
  const target = Math.floor((n * degree) / 2);
  while (edges.length < target) add(randomInt(random, n), randomInt(random, n));
  return edges;
}
