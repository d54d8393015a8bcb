import type { ConsolaInstance } from "consola";
import { ProtocolError } from "../errors.ts";
import {
  CLOSE_FLUSH_TIMEOUT_MS,
  type CloseRequest,
  type Connection,
  type ConnectionClosed,
} from "../link/connection.ts";
import { FrameType, NODE_ID_BYTES, WireErrorCode } from "../protocol/constants.ts";
import { decodeNonce, encodePong } from "../protocol/control.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import { FLOOD_PAYLOAD_OFFSET } from "../protocol/flood.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { hex } from "../protocol/hex.ts";
import { decodePeers } from "../protocol/peers.ts";
import { generateIdentity } from "../secure/identity.ts";
import { AbuseGuard } from "./abuse-guard.ts";
import { type Clock, systemClock } from "./clock.ts";
import { closedLink, reportClose } from "./close-report.ts";
import { Delivery } from "./delivery.ts";
import { Emitter } from "./emitter.ts";
import { describeFarewell } from "./farewell.ts";
import { FloodIntake } from "./flood-intake.ts";
import { DEFAULT_FLOOD_LIMITS } from "./flood-limits.ts";
import { FlowControl, type ReadingChange } from "./flow-control.ts";
import * as handshake from "./handshake.ts";
import { Heartbeat } from "./heartbeat.ts";
import { KnockLog } from "./knock-log.ts";
import {
  type Link,
  linkEnd,
  neighbourInfo,
  newLink,
  type PendingDial,
  settleDial,
} from "./link.ts";
import { LinkHandover } from "./link-handover.ts";
import { LinkTable } from "./link-table.ts";
import * as liveness from "./liveness.ts";
import type {
  ConnectOutcome,
  LinkSockets,
  NeighbourInfo,
  NodeEvents,
  SendOutcome,
} from "./node-events.ts";
import { type NodeConfig, nodeConfig, type PeerNodeOptions } from "./node-options.ts";
import { Outbox } from "./outbox.ts";
import { type HistoryWindow, Relay, type RelayStats } from "./relay.ts";
import { SeenCache } from "./seen-cache.ts";
import { label, NodeTrace } from "./trace.ts";

/**
 * One peer of the network: the driver. It keeps the link table, dispatches frames to
 * the parts that decide what they mean (handshake, relay, abuse guard, liveness, flow
 * control), performs the sends, closes and reading changes they ask for, and emits the
 * events. It sees connections only through the narrow {@link Connection} interface, so
 * it runs the same over TCP and over in-memory pairs, and knows nothing of terminals.
 */
export class PeerNode {
  readonly nodeId: Uint8Array;
  readonly nodeIdHex: string;
  readonly events: Emitter<NodeEvents>;
  readonly listenPort: number;
  private readonly log: ConsolaInstance;
  private readonly clock: Clock;
  private readonly relay: Relay;
  private readonly guard: AbuseGuard;
  private readonly flow = new FlowControl<Link>();
  private readonly heartbeat: Heartbeat;
  private readonly config: NodeConfig;
  private readonly trace: NodeTrace;
  private readonly outbox: Outbox;
  private readonly intake: FloodIntake;
  private readonly links = new LinkTable();
  private readonly knocks = new KnockLog();
  private readonly handover = new LinkHandover();
  private readonly cutOff: liveness.CutOffState = { reported: false };
  private closing = false;
  private readonly handlers = new Map<number, (from: string, frame: Frame) => void>();

  constructor(options: PeerNodeOptions) {
    const identity = options.identity ?? generateIdentity();
    this.nodeId = identity.publicKey;
    if (this.nodeId.length !== NODE_ID_BYTES) throw new Error("nodeId must be 32 bytes");
    this.nodeIdHex = hex(this.nodeId);
    this.listenPort = options.listenPort;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.config = nodeConfig(options);
    this.trace = new NodeTrace(this.log, options.tap);
    const limits = options.floodLimits ?? DEFAULT_FLOOD_LIMITS;
    this.guard = new AbuseGuard(limits);
    this.events = new Emitter((error) => this.log.error("event listener failed:", error));
    const seen = new SeenCache(options.seenTtlMs, options.seenMaxEntries);
    this.relay = new Relay(identity, seen, { limits, lastSeq: options.lastSeq ?? 0 });
    this.outbox = new Outbox(this.relay, limits, options.nick, this.clock.now());
    const { relay, guard, links, trace, log, events } = this;
    const send = (link: Link, bytes: Uint8Array, start: number, end: number) =>
      this.send(link, bytes, start, end);
    this.intake = new FloodIntake({ relay, guard, links, trace, log, events, send });
    this.heartbeat = new Heartbeat(this.clock, liveness.HEARTBEAT_INTERVAL_MS, () => this.tick());
    this.heartbeat.start();
  }

  /** The nick this node writes into its messages. */
  get nick(): string {
    return this.outbox.nick;
  }

  /** Changes the nick used from now on. Returns why not, if it breaks the limits. */
  setNick(nick: string): { ok: true } | { ok: false; reason: string } {
    const problem = this.outbox.setNick(nick);
    return problem === undefined ? { ok: true } : { ok: false, reason: problem };
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
    return this.links.neighbourInfos();
  }

  /** The socket ends under the link to a neighbour; undefined if it is not one. */
  linkSockets(nodeIdHex: string): LinkSockets | undefined {
    const conn = this.links.neighbour(nodeIdHex)?.conn;
    if (!conn) return undefined;
    const { direction, local, remote, via } = conn;
    return { direction, local, remote, ...(via ? { via } : {}) };
  }

  /** True if a link to this node id (hex) is established. */
  isNeighbour(nodeIdHex: string): boolean {
    return this.links.neighbour(nodeIdHex) !== undefined;
  }

  /** Established links. */
  get neighbourCount(): number {
    return this.links.neighbourCount;
  }

  /** Bytes queued towards neighbours, summed: callers pace bulk sends on it. */
  get pendingBytes(): number {
    return this.links.pendingBytes();
  }

  /** Lets a protocol above the node take frames of `type` (0x08–0xFF) from neighbours. */
  handle(type: number, handler: (from: string, frame: Frame) => void): void {
    this.handlers.set(type, handler);
  }

  /** Closes the link to a neighbour that broke the rules of a protocol above the node. */
  disconnect(nodeIdHex: string, request: CloseRequest): void {
    this.links.neighbour(nodeIdHex)?.conn.close(request);
  }

  /** True if the link to this neighbour has more queued than the congestion mark. */
  congested(nodeIdHex: string): boolean {
    return this.links.neighbour(nodeIdHex)?.conn.congested ?? false;
  }

  /** Sends an encoded frame to one neighbour; false if it is not a neighbour or not taking it. */
  sendTo(nodeIdHex: string, frame: Uint8Array): boolean {
    const link = this.links.neighbour(nodeIdHex);
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

  /** Floods a whole FLOOD frame signed above the node (a direct message); as {@link broadcast}. */
  publish(frame: Uint8Array): number {
    this.relay.published(frame, this.clock.now());
    return this.flood(frame);
  }

  /**
   * Floods a chat message to every neighbour. Text must satisfy the protocol limits
   * (the interface layer splits and cleans user input first).
   */
  sendChat(text: string): SendOutcome {
    const now = this.clock.now();
    const draft = this.outbox.chat(text, now);
    if (draft.status !== "frame") return draft;
    const { frame } = draft;
    const neighbours = this.flood(frame);
    const message = new Delivery(frame, FLOOD_PAYLOAD_OFFSET, frame.length, now, 0);
    this.events.emit("message", message);
    return { status: "sent", message, neighbours };
  }

  /** Milliseconds until {@link sendChat} may send again (0 = now): for paced input. */
  sendWaitMs(): number {
    return this.outbox.waitMs(this.clock.now());
  }

  /**
   * Takes over a new connection (accepted or dialled): sends HELLO, expects one back
   * within the handshake deadline. Connections past the caps are turned away at once.
   */
  addConnection(conn: Connection, dial?: PendingDial): void {
    let link: Link | undefined;
    const finalFrame = (frame: Uint8Array) => this.trace.frameOut(link, conn, frame);
    const handlerError = (error: unknown) => this.log.error("closing a connection failed:", error);
    const { verdict, evicted } = this.links.admit(conn, this.closing, this.config);
    if (verdict.action === "refuse") {
      conn.start({ frame() {}, close() {}, finalFrame, handlerError });
      conn.close(verdict.close);
      const level = verdict.notable ? "info" : "debug";
      this.log[level](`refusing ${formatEndpoint(conn.remote)}: ${verdict.reason}`);
      dial?.resolve({ status: "failed", reason: verdict.reason });
      return;
    }
    if (verdict.action === "evict" && evicted) {
      const from = formatEndpoint(evicted.conn.remote);
      this.log.debug(`${from} makes way for ${formatEndpoint(conn.remote)}: ${verdict.reason}`);
      evicted.conn.close(verdict.close);
    }
    const now = this.clock.now();
    const self = newLink(conn, dial, this.guard.track(now), now);
    link = self;
    this.links.add(self);
    // HELLO goes out and the deadline is armed before any incoming byte is looked at:
    // starting the connection may replay data (or a close) that arrived in the meantime.
    this.send(self, handshake.helloFrame(this.nodeId, this.listenPort, this.outbox.nick));
    const { handshakeTimeoutMs } = this.config;
    self.timer = this.clock.setTimeout(() => {
      if (self.state === "handshaking") conn.close(handshake.timedOut(handshakeTimeoutMs));
    }, handshakeTimeoutMs);
    conn.start({
      frame: (frame) => this.onFrame(self, frame),
      close: (info) => this.onClose(self, info),
      clear: () => this.applyReading(this.flow.cleared(self, this.links.all)),
      finalFrame,
      handlerError,
    });
    this.applyReading(this.flow.added(this.links.all));
  }

  /**
   * Dials `endpoint`, waits for the handshake: the neighbour, or why not (never rejects).
   * `dial` replaces the node's own (a circuit through a relay, a punched socket).
   */
  async connect(endpoint: Endpoint, dial = this.config.dial): Promise<ConnectOutcome> {
    const refusal = handshake.dialRefusal(this.closing, this.links.size, this.config);
    if (refusal !== undefined || !dial) return { status: "failed", reason: `${refusal}` };
    const result = await dial(endpoint);
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

  /** Leaves gracefully: BYE to every neighbour, flushed; resolves by the flush deadline. */
  async close(reason = "quit"): Promise<void> {
    if (this.closing) return;
    this.stop();
    await this.links.closeAll(reason, this.clock, CLOSE_FLUSH_TIMEOUT_MS);
  }

  /** Stops at once, no goodbye, every link dropped unflushed: a crash, to the neighbours. */
  abort(): void {
    this.stop();
    for (const link of [...this.links.all]) link.conn.abort();
  }

  private stop(): void {
    this.closing = true;
    this.heartbeat.stop();
    this.handover.clear();
  }

  /** Frame dispatch: the handshake's first, then each type to whoever decides it. */
  private onFrame(link: Link, frame: Frame): void {
    if (this.trace.observing) this.trace.frameIn(link, frame);
    if (link.superseded) {
      // A duplicate link being drained: what the other end sent before it, too, dropped
      // this link must still count. The relay de-duplicates. The protocols above the node
      // know the neighbour by id, not by link: a sync round begun on this link goes on
      // over the one kept, and left unanswered it would hold back the next for 30 s.
      if (frame.type === FrameType.Flood) this.intake.receive(link, frame, this.clock.now());
      else this.handlers.get(frame.type)?.(link.key as string, frame);
      return;
    }
    if (link.state === "handshaking") {
      this.onHandshakeFrame(link, frame);
      return;
    }
    switch (frame.type) {
      case FrameType.Flood:
        this.intake.receive(link, frame, this.clock.now());
        return;
      case FrameType.Ping:
        if (this.send(link, encodePong(decodeNonce(frame.payload, "PING"))))
          liveness.controlSent(link.liveness);
        return;
      case FrameType.Pong:
        liveness.ponged(link.liveness, decodeNonce(frame.payload, "PONG"), this.clock.now());
        return;
      case FrameType.Bye:
      case FrameType.Error:
        // The remote is leaving either way: close without an answer, even if it is garbled.
        link.remoteReason = describeFarewell(frame);
        link.graceful = frame.type === FrameType.Bye;
        link.conn.close({ kind: "quiet", reason: link.remoteReason });
        return;
      case FrameType.Hello:
        link.conn.close({ kind: "violation", error: SECOND_HELLO });
        return;
      case FrameType.Peers:
        this.events.emit("peers", { from: neighbourInfo(link), peers: decodePeers(frame.payload) });
        return;
      default:
        if (frame.type === 0x00) link.conn.close({ kind: "violation", error: TYPE_ZERO });
        // 0x08–0xFF: a protocol above the node's, or skipped, so later versions can add frames.
        this.handlers.get(frame.type)?.(link.key as string, frame);
        return;
    }
  }

  private onHandshakeFrame(link: Link, frame: Frame): void {
    const step = handshake.handshakeStep(frame, {
      selfId: this.nodeId,
      link: linkEnd(link),
      existing: (key) => this.links.neighbourEnd(key),
      barOf: (key) => this.guard.barOf(key, this.clock.now()),
    });
    if (step.action === "refused" || step.action === "violation") {
      if (step.action === "refused") link.remoteReason = step.reason;
      link.conn.close(step.close);
      return;
    }
    this.clock.clearTimeout(link.timer);
    link.timer = undefined;
    link.hello = step.hello;
    link.key = step.key;
    if (step.action === "duplicate" || step.action === "establish") {
      if (step.action === "duplicate") this.resolveDuplicate(link, step.keep);
      else this.establish(link);
      this.releaseHeld();
    } else {
      // Ourselves: the dial must hear so before the close, which reports a failure.
      if (step.action === "self") settleDial(link, { status: "self" });
      link.conn.close(step.close); // barred, or ourselves
    }
  }

  /** Two links to one node: keep the one the handshake chose, close the other quietly. */
  private resolveDuplicate(fresh: Link, keep: "existing" | "fresh"): void {
    const { existing, kept, dropped } = this.links.supersede(fresh, keep);
    this.trace.duplicate(kept, dropped);
    dropped.conn.close({ kind: "quiet", reason: "duplicate link", drain: true });
    const peer = neighbourInfo(kept);
    for (const link of [existing, fresh]) settleDial(link, { status: "already-connected", peer });
  }

  private establish(link: Link): void {
    link.state = "established";
    link.since = this.clock.now();
    const { framesIn, framesOut } = link.conn.stats;
    liveness.livenessFrom(link.liveness, framesIn, link.since, framesOut);
    // A first PING at once, so the link's round-trip time is known from the start.
    this.ping(link);
    this.links.setNeighbour(link);
    // The new half of a duplicate pair whose old half the remote closed first: the
    // neighbour moved links and never left (no peer-down, so no peer-up either).
    const held = this.handover.resumed(link.key as string);
    if (held) link.since = held.since;
    const peer = neighbourInfo(link);
    const moved = held ? ", in place of its closed link" : "";
    this.log.debug(
      `linked to ${peer.nick} (${formatEndpoint(peer.address)}, ${peer.direction}${moved})`,
    );
    if (!held) this.events.emit("peer-up", peer);
    settleDial(link, { status: "connected", peer });
  }

  /** Reports the held peer-downs whose host has no handshake left that could take them over. */
  private releaseHeld(): void {
    for (const down of this.handover.released((host) => this.links.handshakesFrom(host)))
      this.events.emit("peer-down", down);
  }

  /**
   * A stored message that neighbour `from` sent by sync: checked like a live FLOOD, a
   * forgery counted against `from`. Returns it, marked late, if it is new to us.
   */
  acceptStored(from: string, frame: Frame, window: HistoryWindow): Delivery | undefined {
    const link = this.links.neighbour(from);
    return link && this.intake.stored(link, frame, window, this.clock.now());
  }

  private onClose(link: Link, info: ConnectionClosed): void {
    const now = this.clock.now();
    this.clock.clearTimeout(link.timer);
    const handshaking = link.state === "handshaking" && !link.superseded;
    const established = link.state === "established" && !link.superseded;
    link.state = "closed";
    this.links.remove(link);
    this.applyReading(this.flow.cleared(link, this.links.all));
    const closed = closedLink(link, established);
    const report = reportClose(closed, info);
    if (report.log) {
      const stranger = link.conn.direction === "inbound" && link.hello === undefined;
      const host = link.conn.remote.host;
      this.log[this.knocks.level(report.log.level, stranger, host, now)](report.log.text);
    }
    if (info.code === WireErrorCode.Internal && info.error) this.log.debug(info.error);
    if (report.problem) this.events.emit("link-problem", report.problem);
    settleDial(link, { status: "failed", reason: report.reason, stage: "handshake" });
    if (report.peerDown) {
      const from = this.closing ? 0 : this.links.handshakesFrom(report.peerDown.address.host);
      const down = this.handover.closed(closed, info, report.peerDown, from);
      if (down) this.events.emit("peer-down", down);
      else this.log.debug(`${label(link)} closed; a handshake from its host may take its place`);
    }
    if (handshaking) this.releaseHeld();
    for (const resolve of link.closeWaiters) resolve();
  }

  /**
   * The heartbeat: flow control's stall check, then each neighbour's liveness, then
   * whether any neighbour still answers.
   */
  private tick(): void {
    const now = this.clock.now();
    this.applyReading(this.flow.tick(this.links.all, (link) => link.conn.bytesSent, now));
    const survey = liveness.survey(this.links.neighbours(), this.cutOff, now);
    for (const link of survey.ping) this.ping(link);
    // Silent for too long: gone, as if it had left (it may be frozen or unplugged).
    for (const { link, reason } of survey.dead) {
      link.remoteReason = reason;
      link.conn.close({ kind: "quiet", reason });
    }
    if (survey.cutOff) this.events.emit("cut-off", survey.cutOff);
  }

  private ping(link: Link): void {
    const frame = liveness.pingFrame(link.liveness, this.clock.now());
    if (this.send(link, frame)) liveness.controlSent(link.liveness);
  }

  /** Sends one frame on a link; false if the link is closing or its reader is too slow. */
  private send(link: Link, bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.trace.observing) {
      const frame = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
      this.trace.frameOut(link, link.conn, frame);
    }
    const sent = link.conn.send(bytes, start, end);
    if (!link.flow.congested && link.conn.congested) {
      const now = this.clock.now();
      this.applyReading(this.flow.congested(link, link.conn.bytesSent, now, this.links.all));
    }
    return sent;
  }

  /** Performs flow control's reading changes. */
  private applyReading(changes: ReadingChange<Link>[]): void {
    for (const { link, pause } of changes) {
      if (pause) {
        link.conn.pause();
      } else {
        link.conn.resume();
        liveness.resumed(link.liveness, this.clock.now());
      }
    }
  }

  /** Sends a frame this node originated to every neighbour; returns how many took it. */
  private flood(frame: Uint8Array): number {
    let sent = 0;
    for (const link of this.links.neighbours()) if (this.send(link, frame)) sent++;
    this.trace.originated(frame, this.links.neighbours());
    return sent;
  }
}

const SECOND_HELLO = new ProtocolError("BAD_HANDSHAKE", "second HELLO on an established link");
const TYPE_ZERO = new ProtocolError("BAD_FRAME_TYPE", "frame type 0x00 is not defined");
