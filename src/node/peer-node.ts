import type { ConsolaInstance } from "consola";
import { ConfigError, ProtocolError } from "../errors.ts";
import type { Connection, ConnectionClosed, Dial } from "../link/connection.ts";
import { encodeUtf8 } from "../protocol/byte-writer.ts";
import {
  FloodKind,
  FrameType,
  MAX_TEXT_BYTES,
  MESSAGE_ID_BYTES,
  NODE_ID_BYTES,
  WIRE_ERROR_NAMES,
  WireErrorCode,
} from "../protocol/constants.ts";
import {
  decodeBye,
  decodeError,
  decodeNonce,
  encodePing,
  encodePong,
  type WireError,
} from "../protocol/control.ts";
import { describeFrame } from "../protocol/describe.ts";
import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { encodeFloodForward, FLOOD_HOPS_OFFSET } from "../protocol/flood.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { decodeHello, encodeHello, type Hello } from "../protocol/hello.ts";
import { compareBytes, hex, latin1 } from "../protocol/hex.ts";
import { decodePeers, type PeerAddress } from "../protocol/peers.ts";
import { nickProblem, textProblem } from "../protocol/text.ts";
import { generateIdentity } from "../secure/identity.ts";
import { CLOSE_FLUSH_TIMEOUT_MS, CONGESTED_ABOVE_BYTES } from "../transport/limits.ts";
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";
import { type ChatMessage, Delivery, type FloodDelivery } from "./delivery.ts";
import { Emitter } from "./emitter.ts";
import {
  ABUSE_BAR_MS,
  DEFAULT_FLOOD_LIMITS,
  type FloodLimits,
  OriginLimiter,
  THROTTLE_WINDOW_MS,
  TokenBucket,
} from "./flood-limits.ts";
import { type FloodSigner, Relay, type RelayStats } from "./relay.ts";
import { SEEN_MAX_ENTRIES, SEEN_TTL_MS, SeenCache } from "./seen-cache.ts";

/** A peer must send its HELLO within this long of the connection opening. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/** Bad signatures a neighbour may relay before it is disconnected. */
export const MAX_FORGED_PER_LINK = 3;

/** Inbound connections that may be mid-handshake at once; more are refused at once. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 32;

/** Default cap on connections (inbound and outbound, handshaking included). */
export const DEFAULT_MAX_PEERS = 64;

/** A neighbour silent this long is sent a PING. */
export const PING_AFTER_IDLE_MS = 10_000;

/** A neighbour silent this long is dead: no FIN, no RST (frozen, unplugged), but gone. */
export const DEAD_AFTER_IDLE_MS = 30_000;

/** Busy links are still pinged this often, to keep their round-trip time current. */
export const RTT_REFRESH_MS = 30_000;

/** Liveness is checked this often. */
export const HEARTBEAT_INTERVAL_MS = 1000;

/**
 * A congested link whose queue has not moved for this long is stuck, not slow: it stops
 * holding the other links back, and its queue is left to grow to the cap, where it is
 * dropped as a slow consumer (or to go silent, where liveness drops it).
 */
export const STALL_MS = 1000;

export type { ChatMessage, FloodDelivery } from "./delivery.ts";

/** Scratch for encoding outgoing texts: 4,096 UTF-16 units encode to at most 12,288 bytes. */
const textScratch = new Uint8Array(MAX_TEXT_BYTES * 3);
const textEncoder = new TextEncoder();

/** A neighbour: a peer linked to us directly, handshake done. */
export interface NeighbourInfo {
  /** Hex of the neighbour's 32-byte node id. */
  readonly nodeId: string;
  readonly nick: string;
  /** Where the neighbour can be reached: its IP and, when it listens, its listen port. */
  readonly address: Endpoint;
  readonly direction: Direction;
  /** Unix ms when the handshake completed. */
  readonly since: number;
  /** The neighbour's listen port from its HELLO; 0 if it does not accept connections. */
  readonly listenPort: number;
  readonly pendingBytes: number;
  /** Latest PING round trip in milliseconds, once measured. */
  readonly rttMs: number | undefined;
}

/** A neighbour's link that closed. */
export interface PeerDown extends NeighbourInfo {
  readonly reason: string;
  /** `remote`: the neighbour left or the link failed. `local`: this node closed it. */
  readonly by: "local" | "remote";
  /** The neighbour said BYE: it left on purpose, so there is no point redialling it. */
  readonly graceful: boolean;
}

/** A connection that failed before or instead of becoming a neighbour, or broke the protocol. */
export interface LinkProblem {
  readonly address: Endpoint;
  readonly direction: Direction;
  readonly reason: string;
  /** The neighbour, if the handshake had completed. */
  readonly nick?: string;
}

/** Events of a {@link PeerNode}. */
export interface NodeEvents {
  "peer-up": NeighbourInfo;
  "peer-down": PeerDown;
  message: ChatMessage;
  flood: FloodDelivery;
  /** A connection closed by us for a protocol violation, or refused by the remote. */
  "link-problem": LinkProblem;
  /** A neighbour told us about peers it is linked to. */
  peers: { readonly from: NeighbourInfo; readonly peers: readonly PeerAddress[] };
}

/** Outcome of {@link PeerNode.connect}. */
export type ConnectOutcome =
  | { readonly status: "connected"; readonly peer: NeighbourInfo }
  /** We were already linked to that node (perhaps through an inbound connection). */
  | { readonly status: "already-connected"; readonly peer: NeighbourInfo }
  /** The address is this very node. */
  | { readonly status: "self" }
  | {
      readonly status: "failed";
      readonly reason: string;
      /**
       * `handshake`: the address answered, but the link did not come up (another room,
       * not a peerchat peer, a protocol error): "could not join" rather than "reach".
       */
      readonly stage?: "handshake";
    };

/** Outcome of {@link PeerNode.sendChat}. */
export type SendOutcome =
  | { readonly status: "sent"; readonly message: ChatMessage; readonly neighbours: number }
  | { readonly status: "invalid"; readonly reason: string }
  /**
   * Faster than the per-origin limit every peer applies: sent now, it would be dropped
   * by the neighbours. Try again in `retryInMs`.
   */
  | { readonly status: "throttled"; readonly retryInMs: number };

/** Observes every frame in and out, for tests and tooling. Must not throw. */
export interface WireTap {
  frameIn?(neighbour: string | undefined, connection: Connection, frame: Frame): void;
  frameOut?(neighbour: string | undefined, connection: Connection, frame: Uint8Array): void;
}

/** Options for {@link PeerNode}. */
export interface PeerNodeOptions {
  readonly nick: string;
  /** The port we accept connections on, announced in HELLO; 0 = not listening. */
  readonly listenPort: number;
  readonly logger: ConsolaInstance;
  readonly dial?: Dial;
  /**
   * Who this node is: its public key is the node id, and it signs every message the node
   * originates. A fresh random identity by default.
   */
  readonly identity?: FloodSigner;
  readonly maxPeers?: number;
  readonly clock?: Clock;
  readonly handshakeTimeoutMs?: number;
  readonly seenTtlMs?: number;
  readonly seenMaxEntries?: number;
  readonly tap?: WireTap;
  /** FLOOD rate limits; {@link DEFAULT_FLOOD_LIMITS} by default. */
  readonly floodLimits?: FloodLimits;
  /** Inbound connections allowed to be mid-handshake at once; default 32. */
  readonly maxPendingHandshakes?: number;
}

interface PendingDial {
  readonly endpoint: Endpoint;
  readonly resolve: (outcome: ConnectOutcome) => void;
}

/** Per-connection state. */
interface Link {
  readonly conn: Connection;
  state: "handshaking" | "established" | "closed";
  hello: Hello | undefined;
  /** Hex node id, once the HELLO is in. */
  key: string | undefined;
  since: number;
  timer: TimerHandle | undefined;
  dial: PendingDial | undefined;
  /** Closed because another link to the same node won: no peer-down for this one. */
  superseded: boolean;
  /** BYE reason or ERROR received from the remote. */
  remoteReason: string | undefined;
  /** The remote said BYE. */
  graceful: boolean;
  /** Resolved when the connection has closed. */
  readonly closeWaiters: Array<() => void>;
  /** Liveness: frames seen at the last heartbeat, and when that count last moved. */
  framesSeen: number;
  /** FLOODs from this neighbour whose signatures did not verify. */
  forged: number;
  lastFrameAt: number;
  /** The PING awaiting its PONG, if any. */
  ping: { readonly nonce: bigint; readonly sentAt: number } | undefined;
  lastRttAt: number;
  rttMs: number | undefined;
  /** Flow control: its queue passed the congestion mark and has not drained yet. */
  congested: boolean;
  /** Flow control: the kernel's progress on its queue, and when it last moved. */
  progressBytes: number;
  progressAt: number;
  /** We stopped reading from it because another link is congested. */
  paused: boolean;
  /** FLOOD frames this neighbour may still send (abuse limit). */
  floodBucket: TokenBucket;
  /** FLOODs dropped for rate in the current window, and when the window began. */
  throttled: number;
  throttledSince: number;
}

/**
 * One peer of the network: handshakes its connections, keeps the neighbour table,
 * floods what it originates and relays what it receives.
 *
 * It sees connections only through the narrow {@link Connection} interface, so it runs
 * the same over TCP and over in-memory pairs, and knows nothing of terminals or JSON.
 */
export class PeerNode {
  readonly nodeId: Uint8Array;
  readonly nodeIdHex: string;
  readonly events: Emitter<NodeEvents>;
  readonly listenPort: number;
  private currentNick: string;
  private nickBytes: Uint8Array;
  private readonly log: ConsolaInstance;
  private readonly clock: Clock;
  private readonly relay: Relay;
  private readonly maxPeers: number;
  private readonly handshakeTimeoutMs: number;
  private readonly dialer: Dial | undefined;
  private readonly tap: WireTap | undefined;
  private readonly tracing: boolean;
  private readonly floodLimits: FloodLimits;
  private readonly origins: OriginLimiter;
  /** Our own messages, held to the limit every neighbour holds us to. */
  private readonly ownBucket: TokenBucket;
  private readonly maxPendingHandshakes: number;
  /** Node ids disconnected for abuse (hex) → when they may link again. */
  private readonly barred = new Map<string, number>();
  /** Every open connection, handshaking or established. */
  private readonly links = new Set<Link>();
  /** Established links by neighbour node id (hex): at most one per neighbour. */
  private readonly neighbourLinks = new Map<string, Link>();
  /** Links whose send queue is congested and moving: the others wait for them. */
  private readonly holding = new Set<Link>();
  private closing = false;
  private heartbeat: TimerHandle | undefined;

  constructor(options: PeerNodeOptions) {
    const problem = nickProblem(options.nick);
    if (problem) throw new ConfigError("BAD_NICK", problem);
    const identity = options.identity ?? generateIdentity();
    this.nodeId = identity.publicKey;
    if (this.nodeId.length !== NODE_ID_BYTES) throw new Error("nodeId must be 32 bytes");
    this.nodeIdHex = hex(this.nodeId);
    this.currentNick = options.nick;
    this.listenPort = options.listenPort;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.dialer = options.dial;
    this.tap = options.tap;
    this.tracing = this.log.level >= 5;
    this.floodLimits = options.floodLimits ?? DEFAULT_FLOOD_LIMITS;
    this.origins = new OriginLimiter(this.floodLimits);
    this.ownBucket = new TokenBucket(
      this.floodLimits.perOriginPerSecond,
      this.floodLimits.perOriginBurst,
      this.clock.now(),
    );
    this.maxPendingHandshakes = options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    this.events = new Emitter((error) => this.log.error("event listener failed:", error));
    const seen = new SeenCache(
      options.seenTtlMs ?? SEEN_TTL_MS,
      options.seenMaxEntries ?? SEEN_MAX_ENTRIES,
    );
    this.relay = new Relay(identity, seen);
    this.nickBytes = encodeUtf8(options.nick);
    this.scheduleHeartbeat();
  }

  /** The nick this node writes into its messages. */
  get nick(): string {
    return this.currentNick;
  }

  /** Changes the nick used from now on. Returns why not, if it breaks the limits. */
  setNick(nick: string): { ok: true } | { ok: false; reason: string } {
    const problem = nickProblem(nick);
    if (problem) return { ok: false, reason: problem };
    this.currentNick = nick;
    this.nickBytes = encodeUtf8(nick);
    return { ok: true };
  }

  /** Relay counters. */
  get stats(): Readonly<RelayStats> {
    return this.relay.stats;
  }

  /** Open connections, handshaking ones included. */
  get connectionCount(): number {
    return this.links.size;
  }

  /** The current neighbours, oldest link first. */
  neighbours(): NeighbourInfo[] {
    return [...this.neighbourLinks.values()].map((link) => this.info(link));
  }

  /** True if a link to this node id (hex) is established. */
  isNeighbour(nodeIdHex: string): boolean {
    return this.neighbourLinks.has(nodeIdHex);
  }

  /** Established links. */
  get neighbourCount(): number {
    return this.neighbourLinks.size;
  }

  /** Sends an encoded frame to one neighbour; false if it is not a neighbour or not taking it. */
  sendTo(nodeIdHex: string, frame: Uint8Array): boolean {
    const link = this.neighbourLinks.get(nodeIdHex);
    return link ? this.send(link, frame) : false;
  }

  /**
   * Floods a message of any kind from this node to every neighbour (presence and later
   * kinds use this; chat has {@link sendChat}). Returns how many neighbours took it.
   */
  broadcast(kind: number, body: Uint8Array): number {
    const frame = this.relay.originate(kind, body.length, (w) => w.bytes(body), this.clock.now());
    return this.flood(frame);
  }

  /** Sends a frame this node originated to every neighbour; returns how many took it. */
  private flood(frame: Uint8Array): number {
    let sent = 0;
    for (const link of this.neighbourLinks.values()) if (this.send(link, frame)) sent++;
    if (this.tracing) {
      const id = hex(frame.subarray(5, 5 + MESSAGE_ID_BYTES)).slice(0, 8);
      this.log.trace(`relay ${id} originated, sent to ${this.names(this.neighbourLinks.values())}`);
    }
    return sent;
  }

  /** Bytes queued towards neighbours, summed: callers pace bulk sends on it. */
  get pendingBytes(): number {
    let n = 0;
    for (const link of this.links) n += link.conn.pendingBytes;
    return n;
  }

  /**
   * Takes over a new connection (accepted or dialled): sends HELLO, expects one back
   * within the handshake deadline. Inbound connections past the cap are refused with
   * an ERROR frame.
   */
  addConnection(conn: Connection, dial?: PendingDial): void {
    let link: Link | undefined;
    const handlerError = (error: unknown) => this.log.error("closing a connection failed:", error);
    const finalFrame = (frame: Uint8Array) => this.observeOut(link, conn, frame);
    if (
      conn.direction === "inbound" &&
      !this.closing &&
      this.pendingInbound() >= this.maxPendingHandshakes
    ) {
      // A connection storm: refuse at once, before any cryptography or buffering, so
      // the neighbours we have keep being served. Real peers retry with back-off.
      conn.start({ frame() {}, close() {}, finalFrame, handlerError });
      conn.close({ kind: "quiet", reason: "too many pending handshakes" });
      this.log.debug(
        `refusing ${formatEndpoint(conn.remote)}: ${this.maxPendingHandshakes} handshakes pending`,
      );
      return;
    }
    const full = this.links.size >= this.maxPeers;
    if (this.closing || full) {
      const reason = this.closing
        ? "peer is shutting down"
        : `at the connection cap (${this.maxPeers})`;
      conn.start({ frame() {}, close() {}, finalFrame, handlerError });
      if (conn.direction === "inbound" && !this.closing) {
        // Only a full listener says so on the wire: it is the one case the dialler can act on.
        this.log.info(`refusing ${formatEndpoint(conn.remote)}: too many peers`);
        conn.close({
          kind: "error",
          code: WireErrorCode.TooManyPeers,
          message: `too many peers (limit ${this.maxPeers})`,
        });
      } else {
        conn.close({ kind: "quiet", reason });
      }
      dial?.resolve({ status: "failed", reason });
      return;
    }
    const now = this.clock.now();
    link = {
      conn,
      state: "handshaking",
      hello: undefined,
      key: undefined,
      since: now,
      timer: undefined,
      dial,
      superseded: false,
      remoteReason: undefined,
      graceful: false,
      closeWaiters: [],
      framesSeen: 0,
      forged: 0,
      lastFrameAt: now,
      ping: undefined,
      lastRttAt: now,
      rttMs: undefined,
      congested: false,
      progressBytes: 0,
      progressAt: now,
      floodBucket: new TokenBucket(
        this.floodLimits.perNeighbourPerSecond,
        this.floodLimits.perNeighbourBurst,
        now,
      ),
      throttled: 0,
      throttledSince: now,
      paused: false,
    };
    const self = link;
    this.links.add(self);
    // HELLO goes out and the deadline is armed before any incoming byte is looked at:
    // starting the connection may replay data (or a close) that arrived in the meantime.
    this.send(
      self,
      encodeHello({ nodeId: this.nodeId, listenPort: this.listenPort, nick: this.currentNick }),
    );
    self.timer = this.clock.setTimeout(() => {
      if (self.state !== "handshaking") return;
      conn.close({
        kind: "error",
        code: WireErrorCode.HandshakeTimeout,
        message: `no HELLO within ${this.handshakeTimeoutMs / 1000} s`,
      });
    }, this.handshakeTimeoutMs);
    conn.start({
      frame: (frame) => this.onFrame(self, frame),
      close: (info) => this.onClose(self, info),
      clear: () => this.clearCongestion(self),
      finalFrame,
      handlerError,
    });
    if (this.holding.size > 0) this.updateReading();
  }

  /** Inbound connections still in their handshake. */
  private pendingInbound(): number {
    let n = 0;
    for (const link of this.links)
      if (link.state === "handshaking" && link.conn.direction === "inbound") n++;
    return n;
  }

  /**
   * Dials `endpoint` and waits for the handshake. Resolves (never rejects) with the
   * neighbour, or why there is none.
   */
  async connect(endpoint: Endpoint): Promise<ConnectOutcome> {
    if (!this.dialer) return { status: "failed", reason: "this node cannot dial" };
    if (this.closing) return { status: "failed", reason: "peer is shutting down" };
    if (this.links.size >= this.maxPeers) {
      return { status: "failed", reason: `at the connection cap (${this.maxPeers})` };
    }
    const result = await this.dialer(endpoint);
    if (!result.ok) return { status: "failed", reason: result.error.message };
    const conn = result.connection;
    if (this.closing) {
      conn.abort();
      return { status: "failed", reason: "peer is shutting down" };
    }
    return new Promise((resolve) => {
      try {
        this.addConnection(conn, { endpoint, resolve });
      } catch (error) {
        // A bug, but a dial must still end in an outcome: callers retry on "failed".
        this.log.error(`setting up the connection to ${formatEndpoint(endpoint)} failed:`, error);
        conn.abort();
        resolve({ status: "failed", reason: "internal error" });
      }
    });
  }

  /**
   * Floods a chat message to every neighbour. Text must satisfy the protocol limits
   * (the interface layer splits and cleans user input first).
   */
  sendChat(text: string): SendOutcome {
    // Encoded once, into scratch; checked as bytes by the same rules a receiver applies.
    if (text.length > MAX_TEXT_BYTES)
      return { status: "invalid", reason: `text is more than ${MAX_TEXT_BYTES} bytes` };
    const textBytes = textEncoder.encodeInto(text, textScratch).written;
    const problem = textProblem(text, textBytes);
    if (problem) return { status: "invalid", reason: problem };
    const now = this.clock.now();
    if (!this.ownBucket.take(now))
      return { status: "throttled", retryInMs: this.ownBucket.waitMs(now) };
    const frame = this.relay.originateChat(this.nickBytes, textScratch, textBytes, now);
    const neighbours = this.flood(frame);
    const message = new Delivery(frame, 5, frame.length, now, 0);
    this.events.emit("message", message);
    return { status: "sent", message, neighbours };
  }

  /** Milliseconds until {@link sendChat} may send again (0 = now): for paced input. */
  sendWaitMs(): number {
    return this.ownBucket.waitMs(this.clock.now());
  }

  /**
   * Leaves gracefully: BYE to every neighbour, flushed. Resolves once every connection
   * has closed, or after the flush deadline.
   */
  async close(reason = "quit"): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.clock.clearTimeout(this.heartbeat);
    const closed = [...this.links].map(
      (link) =>
        new Promise<void>((resolve) => {
          link.closeWaiters.push(resolve);
          link.conn.close(
            link.state === "established"
              ? { kind: "bye", reason }
              : { kind: "quiet", reason: "shutting down" },
          );
        }),
    );
    let timer: TimerHandle | undefined;
    await Promise.race([
      Promise.all(closed),
      new Promise<void>((resolve) => {
        timer = this.clock.setTimeout(resolve, CLOSE_FLUSH_TIMEOUT_MS);
      }),
    ]);
    this.clock.clearTimeout(timer);
  }

  /**
   * Stops at once without a goodbye: every connection is dropped unflushed. What a
   * crash looks like to the neighbours; for fatal errors and for tests.
   */
  abort(): void {
    this.closing = true;
    this.clock.clearTimeout(this.heartbeat);
    for (const link of [...this.links]) link.conn.abort();
  }

  private onFrame(link: Link, frame: Frame): void {
    if (this.tap?.frameIn) this.tap.frameIn(link.key, link.conn, frame);
    if (this.tracing)
      this.log.trace(`← ${this.label(link)} ${describeFrame(frame.type, frame.payload)}`);
    if (link.superseded) {
      // A duplicate link being drained: what the other end sent before it, too, dropped
      // this link must still count. The relay de-duplicates; nothing else matters here.
      if (frame.type === FrameType.Flood) this.onFlood(link, frame);
      return;
    }
    if (link.state === "handshaking") {
      this.onHandshakeFrame(link, frame);
      return;
    }
    switch (frame.type) {
      case FrameType.Flood:
        this.onFlood(link, frame);
        return;
      case FrameType.Ping:
        this.send(link, encodePong(decodeNonce(frame.payload, "PING")));
        return;
      case FrameType.Pong: {
        const nonce = decodeNonce(frame.payload, "PONG");
        if (link.ping?.nonce === nonce) {
          link.rttMs = this.clock.now() - link.ping.sentAt;
          link.lastRttAt = this.clock.now();
          link.ping = undefined;
        }
        return;
      }
      case FrameType.Bye:
      case FrameType.Error:
        // The remote is leaving either way: close without an answer, even if it is garbled.
        link.remoteReason = describeFarewell(frame);
        link.graceful = frame.type === FrameType.Bye;
        link.conn.close({ kind: "quiet", reason: link.remoteReason });
        return;
      case FrameType.Hello:
        throw new ProtocolError("BAD_HANDSHAKE", "second HELLO on an established link");
      case FrameType.Peers:
        this.events.emit("peers", { from: this.info(link), peers: decodePeers(frame.payload) });
        return;
      default:
        if (frame.type === 0x00)
          throw new ProtocolError("BAD_FRAME_TYPE", "frame type 0x00 is not defined");
        // 0x08–0xFF: unknown types are skipped, so later versions can add frames.
        return;
    }
  }

  private onHandshakeFrame(link: Link, frame: Frame): void {
    if (frame.type === FrameType.Error) {
      // The remote refused us (full, or it disliked our HELLO): no reply to a refusal.
      link.remoteReason = `refused: ${describeFarewell(frame)}`;
      link.conn.close({ kind: "quiet", reason: link.remoteReason });
      return;
    }
    if (frame.type !== FrameType.Hello) {
      const name = frame.type === FrameType.Flood ? "FLOOD" : `frame type ${frame.type}`;
      throw new ProtocolError("BAD_HANDSHAKE", `expected HELLO first, got ${name}`);
    }
    const hello = decodeHello(frame.payload);
    this.clock.clearTimeout(link.timer);
    link.timer = undefined;
    link.hello = hello;
    const key = hex(hello.nodeId);
    link.key = key;
    if (key === this.nodeIdHex) {
      link.conn.close({ kind: "quiet", reason: "connected to self" });
      link.dial?.resolve({ status: "self" });
      link.dial = undefined;
      return;
    }
    const barredUntil = this.barred.get(key);
    if (barredUntil !== undefined) {
      if (barredUntil > this.clock.now()) {
        link.conn.close({ kind: "quiet", reason: "disconnected for abuse a moment ago" });
        return;
      }
      this.barred.delete(key);
    }
    const existing = this.neighbourLinks.get(key);
    if (existing) {
      this.resolveDuplicate(existing, link, hello);
      return;
    }
    this.establish(link);
  }

  /** Two links to one node: keep the {@link survivor}, close the other quietly. */
  private resolveDuplicate(existing: Link, fresh: Link, hello: Hello): void {
    const keep = survivor(existing, fresh, compareBytes(this.nodeId, hello.nodeId) < 0);
    const keepFresh = keep === fresh;
    const drop = keepFresh ? existing : fresh;
    drop.superseded = true;
    if (this.tracing)
      this.log.trace(
        `duplicate link to ${hello.nick}: keeping ${keep.conn.direction}, closing ${drop.conn.direction}`,
      );
    if (keepFresh) {
      // Move the neighbour to the new link without a peer-down/peer-up flicker.
      fresh.state = "established";
      fresh.since = existing.since;
      this.neighbourLinks.set(fresh.key as string, fresh);
      existing.state = "closed";
    }
    drop.conn.close({ kind: "quiet", reason: "duplicate link", drain: true });
    const peer = this.info(keep);
    for (const link of [existing, fresh]) {
      link.dial?.resolve({ status: "already-connected", peer });
      link.dial = undefined;
    }
  }

  private establish(link: Link): void {
    link.state = "established";
    link.since = this.clock.now();
    // Silence is counted from the HELLO, not from the first heartbeat that notices it.
    link.framesSeen = link.conn.stats.framesIn;
    link.lastFrameAt = link.since;
    // A first PING at once, so the link's round-trip time is known from the start.
    this.ping(link);
    this.neighbourLinks.set(link.key as string, link);
    const peer = this.info(link);
    this.log.debug(`linked to ${peer.nick} (${formatEndpoint(peer.address)}, ${peer.direction})`);
    this.events.emit("peer-up", peer);
    link.dial?.resolve({ status: "connected", peer });
    link.dial = undefined;
  }

  private onFlood(link: Link, frame: Frame): void {
    const { bytes, start, end } = frame;
    const now = this.clock.now();
    // Before anything costs us: a neighbour past its rate is dropped unread.
    if (!link.floodBucket.take(now)) {
      this.onThrottled(link, now);
      return;
    }
    const outcome = this.relay.receive(bytes, start, end, now);
    if (outcome.status === "duplicate") {
      if (this.tracing)
        this.log.trace(
          `relay ${hex(bytes.subarray(start, start + 4))} from ${this.label(link)}: duplicate, dropped`,
        );
      return;
    }
    // Closes this link only (see FrameConnection); the message is not relayed.
    if (outcome.status === "invalid") throw outcome.error;
    if (outcome.status === "stale") {
      if (this.tracing)
        this.log.trace(
          `relay ${hex(bytes.subarray(start, start + 4))} from ${this.label(link)}: outside the time window, dropped`,
        );
      return;
    }
    if (outcome.status === "forged") {
      this.onForged(link);
      return;
    }
    // Per author, once the signature proves who the author is (else a forger could spend
    // an honest author's budget). Over it: remembered as seen, but not shown or relayed.
    if (
      this.floodLimits.perOriginPerSecond !== Number.POSITIVE_INFINITY &&
      !this.origins.allow(latin1(bytes, start + MESSAGE_ID_BYTES, NODE_ID_BYTES), now)
    ) {
      this.relay.stats.originLimited++;
      if (this.tracing)
        this.log.trace(
          `relay ${hex(bytes.subarray(start, start + 4))} from ${this.label(link)}: its author is over the rate limit, dropped`,
        );
      return;
    }
    const hops = bytes[start + FLOOD_HOPS_OFFSET] as number;
    let sentTo: Link[] | undefined;
    // Forward only if somebody other than the sender will get it. The frame goes on as
    // it arrived, its hops byte raised in place: no copy is made unless the frame had
    // to be reassembled from several chunks (then its length prefix is not in `bytes`).
    const others =
      this.neighbourLinks.size - (link.state === "established" && !link.superseded ? 1 : 0);
    if (outcome.forward && others > 0) {
      let out = bytes;
      let from = start - 5;
      let to = end;
      if (frame.framed) {
        bytes[start + FLOOD_HOPS_OFFSET] = hops + 1;
      } else {
        out = encodeFloodForward(bytes, start, end, hops + 1);
        from = 0;
        to = out.length;
      }
      if (this.tracing) sentTo = [];
      for (const other of this.neighbourLinks.values()) {
        // Not back to the sender, nor to its new link if this one is a drained duplicate.
        if (other !== link && other.key !== link.key && this.send(other, out, from, to))
          sentTo?.push(other);
      }
    }
    if (this.tracing) {
      const where = outcome.forward
        ? `forwarded to ${this.names(sentTo ?? [])}`
        : "hop limit reached, not forwarded";
      this.log.trace(
        `relay ${hex(bytes.subarray(start, start + 4))} from ${this.label(link)}: new (hops ${hops}), delivered, ${where}`,
      );
    }
    const delivery = new Delivery(bytes, start, end, now, hops + 1, outcome.presence);
    this.events.emit("flood", delivery);
    if (bytes[start + FLOOD_HOPS_OFFSET + 1] === FloodKind.Chat)
      this.events.emit("message", delivery);
  }

  /**
   * An honest neighbour relays only what it has verified, so a bad signature is its
   * doing (or its bug). Dropped each time; a few, and the neighbour is gone.
   */
  private onThrottled(link: Link, now: number): void {
    this.relay.stats.throttled++;
    if (now - link.throttledSince > THROTTLE_WINDOW_MS) {
      link.throttled = 0;
      link.throttledSince = now;
    }
    link.throttled++;
    if (link.throttled === 1)
      this.log.warn(
        `${this.label(link)} sends FLOODs faster than ${this.floodLimits.perNeighbourPerSecond}/s: dropping the excess`,
      );
    if (link.throttled >= this.floodLimits.disconnectAfterDrops) {
      this.bar(link);
      link.conn.close({
        kind: "error",
        code: WireErrorCode.RateLimited,
        message: `over the FLOOD rate limit (${this.floodLimits.perNeighbourPerSecond}/s)`,
      });
    }
  }

  /** Refuses the neighbour's node id for a while: it was disconnected for abuse. */
  private bar(link: Link): void {
    if (!link.key) return;
    const now = this.clock.now();
    if (this.barred.size >= 1000)
      for (const [key, until] of this.barred) if (until <= now) this.barred.delete(key);
    if (this.barred.size < 1000) this.barred.set(link.key, now + ABUSE_BAR_MS);
  }

  private onForged(link: Link): void {
    link.forged++;
    const who = this.label(link);
    if (link.forged === 1) this.log.warn(`dropped a FLOOD from ${who} with a bad signature`);
    if (link.forged >= MAX_FORGED_PER_LINK) {
      this.bar(link);
      link.conn.close({
        kind: "error",
        code: WireErrorCode.BadSignature,
        message: `${link.forged} FLOODs with bad signatures`,
      });
    }
  }

  private onClose(link: Link, info: ConnectionClosed): void {
    this.clock.clearTimeout(link.timer);
    link.congested = false;
    if (this.holding.delete(link)) this.updateReading();
    const wasEstablished = link.state === "established" && !link.superseded;
    link.state = "closed";
    this.links.delete(link);
    if (link.key && this.neighbourLinks.get(link.key) === link)
      this.neighbourLinks.delete(link.key);
    const reason = link.remoteReason ?? info.reason;
    const where = formatEndpoint(this.address(link));
    if (info.code !== undefined && info.code !== WireErrorCode.TooManyPeers) {
      // We closed it for breaking the protocol or a limit: say so, with the address.
      const level = info.code === WireErrorCode.Internal ? "error" : "warn";
      const detail = info.error instanceof ProtocolError ? `, ${info.error.code}` : "";
      const code = `ERROR ${info.code} ${WIRE_ERROR_NAMES[info.code] ?? ""}${detail}`;
      this.log[level](
        `closed ${link.hello ? `${link.hello.nick} (${where})` : where}: ${reason} [${code}]`,
      );
      if (info.code === WireErrorCode.Internal && info.error) this.log.debug(info.error);
      this.events.emit("link-problem", {
        address: this.address(link),
        direction: link.conn.direction,
        reason,
        ...(link.hello ? { nick: link.hello.nick } : {}),
      });
    }
    if (link.dial) {
      link.dial.resolve({ status: "failed", reason, stage: "handshake" });
      link.dial = undefined;
    }
    if (wasEstablished) {
      const by = link.remoteReason !== undefined ? "remote" : info.by;
      this.events.emit("peer-down", { ...this.info(link), reason, by, graceful: link.graceful });
    } else if (!link.superseded && info.code === undefined) {
      // Someone knocked and did not get in (another room, a port scanner, a v1 peer):
      // worth a line for whoever runs a relay. Our own failed dials are reported by the
      // dialler, with retry timing.
      const level = link.conn.direction === "inbound" ? "info" : "debug";
      this.log[level](`connection ${where} closed before the handshake: ${reason}`);
    }
    for (const resolve of link.closeWaiters) resolve();
  }

  /**
   * Liveness, on our own timer (Bun's socket timeout is not reset by incoming data):
   * a neighbour silent for 10 s gets a PING, one silent for 30 s is closed as dead.
   * Activity is read from the connection's frame counter, so the hot path pays nothing.
   */
  private scheduleHeartbeat(): void {
    this.clock.clearTimeout(this.heartbeat);
    this.heartbeat = this.clock.setTimeout(() => {
      this.checkLiveness();
      if (!this.closing) this.scheduleHeartbeat();
    }, HEARTBEAT_INTERVAL_MS);
  }

  private checkLiveness(): void {
    const now = this.clock.now();
    let holdingChanged = false;
    for (const link of this.links) {
      if (!link.congested) continue;
      const sent = link.conn.bytesSent;
      if (sent !== link.progressBytes) {
        link.progressBytes = sent;
        link.progressAt = now;
      }
      const moving = now - link.progressAt < STALL_MS;
      if (moving !== this.holding.has(link)) {
        if (moving) this.holding.add(link);
        else this.holding.delete(link);
        holdingChanged = true;
      }
    }
    if (holdingChanged) this.updateReading();
    for (const link of this.neighbourLinks.values()) {
      if (link.paused) {
        link.lastFrameAt = now; // we are not reading it: its silence is ours
        continue;
      }
      const frames = link.conn.stats.framesIn;
      if (frames !== link.framesSeen) {
        link.framesSeen = frames;
        link.lastFrameAt = now;
      }
      const idle = now - link.lastFrameAt;
      if (idle >= DEAD_AFTER_IDLE_MS) {
        link.remoteReason = `timed out: no frame for ${Math.round(idle / 1000)} s`;
        link.conn.close({ kind: "quiet", reason: link.remoteReason });
        continue;
      }
      // A PING unanswered for 10 s is given up (the silence check above decides death).
      if (link.ping && now - link.ping.sentAt >= PING_AFTER_IDLE_MS) link.ping = undefined;
      const pingDue = idle >= PING_AFTER_IDLE_MS || now - link.lastRttAt >= RTT_REFRESH_MS;
      if (pingDue && link.ping === undefined) this.ping(link);
    }
  }

  private ping(link: Link): void {
    const nonce = crypto.getRandomValues(new BigUint64Array(1))[0] as bigint;
    link.ping = { nonce, sentAt: this.clock.now() };
    this.send(link, encodePing(nonce));
  }

  /** Sends one frame on a link; false if the link is closing or its reader is too slow. */
  private send(link: Link, bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.tap !== undefined || this.tracing) {
      this.observeOut(
        link,
        link.conn,
        start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end),
      );
    }
    const sent = link.conn.send(bytes, start, end);
    if (!link.congested && link.conn.pendingBytes > CONGESTED_ABOVE_BYTES) {
      link.congested = true;
      link.progressBytes = link.conn.bytesSent;
      link.progressAt = this.clock.now();
      this.holding.add(link);
      this.updateReading();
    }
    return sent;
  }

  private clearCongestion(link: Link): void {
    link.congested = false;
    if (this.holding.delete(link)) this.updateReading();
  }

  /**
   * Flow control. While a link is congested but moving (a slower reader), this node
   * reads only from that link, never sent its own data back, so the slowdown travels
   * back to whoever is sending, through TCP, instead of piling up here: a chain at full
   * speed loses nothing. A congested link that stops moving for {@link STALL_MS} (a
   * stuck reader) no longer holds the others back; its queue grows to the cap and it is
   * dropped as a slow consumer. Nothing is dropped for merely being held back, so the
   * backpressure one stuck reader causes never cascades into drops upstream.
   */
  private updateReading(): void {
    const now = this.clock.now();
    for (const link of this.links) {
      const pause = this.holding.size > (this.holding.has(link) ? 1 : 0);
      if (pause === link.paused) continue;
      link.paused = pause;
      if (pause) {
        link.conn.pause();
      } else {
        link.conn.resume();
        link.lastFrameAt = now; // its silence while we were not listening does not count
      }
    }
  }

  /** Every frame that leaves, for the wire tap and --trace (BYE and ERROR included). */
  private observeOut(link: Link | undefined, conn: Connection, frame: Uint8Array): void {
    if (this.tap?.frameOut) this.tap.frameOut(link?.key, conn, frame);
    if (this.tracing) {
      const to = link ? this.label(link) : formatEndpoint(conn.remote);
      this.log.trace(`→ ${to} ${describeFrame(frame[4] ?? 0, frame.subarray(5))}`);
    }
  }

  private info(link: Link): NeighbourInfo {
    const hello = link.hello;
    return {
      nodeId: link.key ?? "",
      nick: hello?.nick ?? "?",
      address: this.address(link),
      direction: link.conn.direction,
      since: link.since,
      listenPort: hello?.listenPort ?? 0,
      pendingBytes: link.conn.pendingBytes,
      rttMs: link.rttMs,
    };
  }

  /** The neighbour's reachable address: its IP with its advertised listen port. */
  private address(link: Link): Endpoint {
    const remote = link.conn.remote;
    const port = link.hello?.listenPort || remote.port;
    return { host: unmapIPv4(remote.host), port };
  }

  private label(link: Link): string {
    const where = formatEndpoint(this.address(link));
    return link.hello ? `${link.hello.nick}@${where}` : where;
  }

  private names(links: Iterable<Link>): string {
    const names = [...links].map((l) => this.label(l));
    return names.length > 0 ? names.join(", ") : "nobody";
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
function unmapIPv4(host: string): string {
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}

/** The reason in a BYE or ERROR, tolerating a malformed one (the link is ending anyway). */
function describeFarewell(frame: Frame): string {
  try {
    if (frame.type === FrameType.Bye) return decodeBye(frame.payload) || "left";
    return describeRemoteError(decodeError(frame.payload));
  } catch {
    return frame.type === FrameType.Bye ? "left (malformed BYE)" : "malformed ERROR";
  }
}

function describeRemoteError(error: WireError): string {
  return error.message || `error ${error.code}`;
}

/**
 * Which of two links to the same node survives. Both ends must pick the same one
 * without talking: prefer the link dialled by the node with the lower id; if the same
 * node dialled both, the one from the lower source port (the same number at both ends).
 */
function survivor(a: Link, b: Link, weAreLower: boolean): Link {
  const keeper: Direction = weAreLower ? "outbound" : "inbound";
  const aKeeper = a.conn.direction === keeper;
  if (aKeeper !== (b.conn.direction === keeper)) return aKeeper ? a : b;
  return dialerPort(a) <= dialerPort(b) ? a : b;
}

function dialerPort(link: Link): number {
  return link.conn.direction === "outbound" ? link.conn.local.port : link.conn.remote.port;
}
