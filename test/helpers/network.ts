import { expect } from "bun:test";
import type { Connection } from "../../src/link/connection.ts";
import type { ChatMessage, NeighbourInfo, PeerDown, WireTap } from "../../src/node/peer-node.ts";
import { FrameType, MESSAGE_ID_BYTES } from "../../src/protocol/constants.ts";
import { hex } from "../../src/protocol/hex.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";
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
}

/** Options for one peer of a {@link TestNetwork}. */
export interface PeerOptions {
  readonly maxPeers?: number;
  /** Mesh degree; default 0, so the network has exactly the links a test makes. */
  readonly degree?: number;
  readonly logLevel?: number;
  /** Sees every frame the peer sends, before it is queued. */
  readonly onFrameOut?: (connection: Connection, frame: Uint8Array) => void;
}

/** `[a, b]`: peer `a` dials peer `b`. */
export type Edge = readonly [number, number];

/**
 * Real peers in this process, on 127.0.0.1 port 0, linked over real TCP. A wire tap
 * counts every FLOOD each peer sends to each neighbour, per message id, so tests can
 * check that no message crosses a link twice in the same direction.
 */
export class TestNetwork {
  readonly peers: TestPeer[] = [];
  /** `from>to:messageId` → FLOOD frames sent. */
  readonly floodsSent = new Map<string, number>();
  private readonly indexById = new Map<string, number>();

  static start(n: number, options: PeerOptions = {}): TestNetwork {
    const net = new TestNetwork();
    for (let i = 0; i < n; i++) net.add(options);
    return net;
  }

  add(options: PeerOptions = {}): TestPeer {
    const index = this.peers.length;
    const log = testLogger(options.logLevel ?? 4);
    const tap: WireTap = {
      frameOut: (neighbour, conn, frame) => {
        options.onFrameOut?.(conn, frame);
        if (frame[4] !== FrameType.Flood || neighbour === undefined) return;
        const id = hex(frame.subarray(5, 5 + MESSAGE_ID_BYTES));
        const key = `${index}>${this.indexById.get(neighbour)}:${id}`;
        this.floodsSent.set(key, (this.floodsSent.get(key) ?? 0) + 1);
      },
    };
    const peer = startPeer({
      host: "127.0.0.1",
      port: 0,
      nick: `peer${index}`,
      logger: log.logger,
      tap,
      degree: options.degree ?? 0,
      ...(options.maxPeers ? { maxPeers: options.maxPeers } : {}),
    });
    this.indexById.set(peer.node.nodeIdHex, index);
    const testPeer: TestPeer = { index, peer, log, messages: [], ups: [], downs: [] };
    peer.node.events.on("message", (m) => testPeer.messages.push(m));
    peer.node.events.on("peer-up", (p) => testPeer.ups.push(p));
    peer.node.events.on("peer-down", (p) => testPeer.downs.push(p));
    this.peers.push(testPeer);
    return testPeer;
  }

  peer(i: number): TestPeer {
    const p = this.peers[i];
    if (!p) throw new Error(`no peer ${i}`);
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
      () =>
        edges.every(
          ([a, b]) =>
            this.peer(a).peer.node.isNeighbour(this.peer(b).peer.node.nodeIdHex) &&
            this.peer(b).peer.node.isNeighbour(this.peer(a).peer.node.nodeIdHex),
        ),
      5000,
      "all links up at both ends",
    );
  }

  /** Sends a chat message from peer `i`. */
  send(i: number, text: string): ChatMessage {
    const outcome = this.peer(i).peer.node.sendChat(text);
    if (outcome.status !== "sent") throw new Error(`send failed: ${outcome.reason}`);
    return outcome.message;
  }

  /** Waits until every live peer has delivered every message in `ids`. */
  async waitDelivered(
    ids: readonly string[],
    peers: readonly TestPeer[] = this.peers,
    timeoutMs = 10_000,
  ): Promise<void> {
    await waitFor(
      () => peers.every((p) => ids.every((id) => p.messages.some((m) => m.id === id))),
      timeoutMs,
      `${ids.length} messages at ${peers.length} peers`,
    );
  }

  /** Waits until no bytes are queued anywhere (the flood has finished moving). */
  async quiesce(): Promise<void> {
    await waitFor(
      () => this.peers.every((p) => p.peer.node.pendingBytes === 0),
      5000,
      "quiet network",
    );
    // One more turn of the event loop for frames already in the kernel.
    await Bun.sleep(50);
  }

  /** FLOOD frames of message `id` sent from peer `from` to peer `to`. */
  floods(from: number, to: number, id: string): number {
    return this.floodsSent.get(`${from}>${to}:${id}`) ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all(this.peers.map((p) => p.peer.close("test over")));
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
