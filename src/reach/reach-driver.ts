import type { ConsolaInstance } from "consola";
import type { Clock, TimerHandle } from "../node/clock.ts";
import type { LinkSockets, NeighbourInfo, NodeEvents } from "../node/node-events.ts";
import { FrameType } from "../protocol/constants.ts";
import { type Endpoint, formatEndpoint } from "../protocol/endpoint.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { decodePunch, decodeReach, MAX_PUNCH_ADDRESSES, PunchOp } from "../protocol/reach.ts";
import type { ByteStream } from "../transport/byte-stream.ts";
import { dialTcp } from "../transport/tcp.ts";
import {
  PUNCH_DIAL_TIMEOUT_MS,
  type PunchAction,
  PunchCoordinator,
  type PunchEvent,
  type PunchRole,
  type PunchState,
} from "./punch-coordinator.ts";
import {
  DIALBACK_DIAL_TIMEOUT_MS,
  type ReachAction,
  Reachability,
  type ReachEvent,
  type ReachSummary,
} from "./reachability.ts";

/** How often the reachability part is ticked (answer timeouts, re-checks). */
export const REACH_TICK_MS = 5_000;

/** What the driver uses of the node: {@link PeerNode} has all of it. */
export interface ReachNode {
  readonly events: {
    on<K extends keyof NodeEvents>(type: K, listener: (event: NodeEvents[K]) => void): () => void;
  };
  handle(type: number, handler: (from: string, frame: Frame) => void): void;
  sendTo(nodeIdHex: string, frame: Uint8Array): boolean;
  neighbours(): NeighbourInfo[];
  /**
   * The two socket ends under a neighbour's link. Without it, nothing is reported
   * (OBSERVED needs the socket's remote port), nothing is learned of the NAT, and no
   * punch starts; dial-backs still work.
   */
  linkSockets?(nodeIdHex: string): LinkSockets | undefined;
}

/** Outcome of a {@link PunchDial}: never a rejected promise. */
export type PunchDialResult =
  | { readonly ok: true; readonly stream: ByteStream }
  | { readonly ok: false; readonly error: Error };

/** Dials `remote` from the fixed local port `localPort` (a TCP simultaneous open). */
export type PunchDial = (options: {
  readonly remote: Endpoint;
  readonly localPort: number;
  readonly timeoutMs: number;
}) => Promise<PunchDialResult>;

/** Which neighbour a punched stream leads to, and how to run Noise over it. */
export interface PunchedInfo {
  readonly nodeIdHex: string;
  /** `initiator`: run the Noise handshake as dialler; `responder`: as listener. */
  readonly role: PunchRole;
}

/** Options for {@link Reach}. */
export interface ReachOptions {
  readonly node: ReachNode;
  /** Where this peer listens; a loopback host means nothing is checked ("local"). */
  readonly listenHost: string;
  /** 0: not listening. */
  readonly listenPort: number;
  readonly clock: Clock;
  readonly logger: ConsolaInstance;
  /** Dials an endpoint for a neighbour's DIALBACK; true if it connected. Default TCP. */
  readonly dialBack?: (endpoint: Endpoint) => Promise<boolean>;
  /** A local port for the dials of one punch attempt. Without it (or `punchDial`), no punching. */
  readonly reservePort?: () => number | Promise<number>;
  readonly punchDial?: PunchDial;
  /** A punch connected: the stream, to be secured and added to the node as a new link. */
  readonly onPunched?: (stream: ByteStream, info: PunchedInfo) => void;
}

/**
 * Dial-back over TCP: connect, then close at once. A connect proves something accepts
 * connections on that port at that IP; it does not prove it is us (another host behind
 * the same NAT, a port forwarded elsewhere), which the Noise handshake would, at the
 * cost of a full link. Good enough to tell "public" from "private".
 */
export async function tcpDialBack(endpoint: Endpoint): Promise<boolean> {
  const result = await dialTcp(endpoint, DIALBACK_DIAL_TIMEOUT_MS);
  if (result.ok) result.stream.destroy();
  return result.ok;
}

/**
 * The reach of this peer (reachability.ts) and its hole punches (punch-coordinator.ts):
 * takes REACH and PUNCH frames from the node, tells each new neighbour where it sees it,
 * dials back for neighbours that ask, and performs the punches the integrator starts for
 * relayed neighbours ({@link Reach.startPunch}).
 */
export class Reach {
  private readonly node: ReachNode;
  private readonly clock: Clock;
  private readonly log: ConsolaInstance;
  private readonly reach: Reachability;
  private readonly punches = new Map<string, PunchCoordinator>();
  private readonly wakeTimers = new Map<string, TimerHandle>();
  private readonly dialBack: (endpoint: Endpoint) => Promise<boolean>;
  private readonly reservePort: (() => number | Promise<number>) | undefined;
  private readonly punchDial: PunchDial | undefined;
  private readonly onPunched: ((stream: ByteStream, info: PunchedInfo) => void) | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private tickTimer: TimerHandle | undefined;
  private closed = false;

  constructor(options: ReachOptions) {
    this.node = options.node;
    this.clock = options.clock;
    this.log = options.logger;
    this.reach = new Reachability({
      listenHost: options.listenHost,
      listenPort: options.listenPort,
    });
    this.dialBack = options.dialBack ?? tcpDialBack;
    this.reservePort = options.reservePort;
    this.punchDial = options.punchDial;
    this.onPunched = options.onPunched;
    const { node } = this;
    node.handle(FrameType.Reach, (from, frame) => this.onReach(from, frame));
    node.handle(FrameType.Punch, (from, frame) => this.onPunch(from, frame));
    this.unsubscribe.push(
      node.events.on("peer-up", (peer) => this.onPeerUp(peer)),
      node.events.on("peer-down", (peer) => this.onPeerDown(peer.nodeId)),
    );
    for (const peer of node.neighbours()) this.onPeerUp(peer);
    this.scheduleTick();
  }

  /** Whether others can dial us, the NAT we are behind, the addresses we are seen at. */
  get status(): ReachSummary {
    return this.reach.summary();
  }

  /**
   * Starts upgrading the relayed link to `nodeIdHex` to a direct one; the integrator calls
   * it when a relayed link comes up, on both ends (the end that opened the circuit
   * initiates; the other waits, and would also answer without this call). Returns the
   * punch's state, or undefined when there is nothing to punch: not a relayed neighbour,
   * or no `reservePort`/`punchDial`. A punch under way or finished for this link is kept.
   */
  startPunch(nodeIdHex: string): PunchState | undefined {
    const coordinator = this.coordinator(nodeIdHex);
    if (coordinator === undefined) return undefined;
    this.runPunch(nodeIdHex, coordinator, { type: "start" });
    return coordinator.state;
  }

  /** The punch with a neighbour, for `/peers`: "punching, attempt 2", "direct", …. */
  punchState(nodeIdHex: string): string | undefined {
    return this.punches.get(nodeIdHex)?.describe();
  }

  /** Stops the timers; later frames and outcomes are dropped (punched streams closed). */
  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.tickTimer);
    for (const timer of this.wakeTimers.values()) this.clock.clearTimeout(timer);
    this.wakeTimers.clear();
    for (const off of this.unsubscribe) off();
  }

  private onPeerUp(peer: NeighbourInfo): void {
    if (this.closed) return;
    const sockets = this.node.linkSockets?.(peer.nodeId);
    const event: ReachEvent = sockets
      ? {
          type: "up",
          nodeIdHex: peer.nodeId,
          direction: sockets.direction,
          local: sockets.local,
          remote: sockets.remote,
          relayed: sockets.via !== undefined,
        }
      : {
          // No socket ends: the IP is known, its port is not (port 0: nothing reported).
          type: "up",
          nodeIdHex: peer.nodeId,
          direction: peer.direction,
          local: { host: "", port: 0 },
          remote: { host: peer.address.host, port: 0 },
          relayed: peer.via !== undefined,
        };
    this.runReach(event);
  }

  private onPeerDown(nodeIdHex: string): void {
    if (this.closed) return;
    this.runReach({ type: "down", nodeIdHex });
    this.punches.delete(nodeIdHex);
    this.clock.clearTimeout(this.wakeTimers.get(nodeIdHex));
    this.wakeTimers.delete(nodeIdHex);
  }

  private onReach(from: string, frame: Frame): void {
    if (this.closed) return;
    // A malformed frame throws: the node closes that link as a protocol violation.
    const message = decodeReach(frame.payload);
    this.runReach({ type: "frame", from, message });
  }

  private onPunch(from: string, frame: Frame): void {
    if (this.closed) return;
    const message = decodePunch(frame.payload);
    let coordinator = this.punches.get(from);
    // The initiator's CONNECT may come before the integrator's startPunch on this end.
    if (coordinator === undefined && message.op === PunchOp.Connect)
      coordinator = this.coordinator(from);
    if (coordinator === undefined) {
      this.log.debug(`${short(from)}: PUNCH op ${message.op} outside a punch, ignored`);
      return;
    }
    this.runPunch(from, coordinator, { type: "frame", message });
  }

  /** The neighbour's coordinator, made if it is relayed and we can punch. */
  private coordinator(nodeIdHex: string): PunchCoordinator | undefined {
    if (this.closed || !this.reservePort || !this.punchDial) return undefined;
    const existing = this.punches.get(nodeIdHex);
    if (existing) return existing;
    const sockets = this.node.linkSockets?.(nodeIdHex);
    if (sockets?.via === undefined) return undefined;
    const role: PunchRole = sockets.direction === "outbound" ? "initiator" : "responder";
    const hosts = () => this.reach.observedHosts(MAX_PUNCH_ADDRESSES);
    const coordinator = new PunchCoordinator(role, hosts);
    this.punches.set(nodeIdHex, coordinator);
    return coordinator;
  }

  private runReach(event: ReachEvent): void {
    const before = this.reach.summary();
    const actions = this.reach.handle(event, this.clock.now());
    for (const action of actions) this.performReach(action);
    const after = this.reach.summary();
    if (after.reachability !== before.reachability) {
      const seen = after.observed[0]?.host;
      if (after.reachability === "public")
        this.log.info(`others can dial this peer${seen ? ` (seen at ${seen})` : ""}`);
      else if (after.reachability === "private")
        this.log.info(
          "others cannot dial this peer (a NAT or firewall is in the way): it is reached through relays",
        );
      else this.log.debug(`reachability: ${after.reachability}`);
    }
    if (after.natKind !== before.natKind) this.log.debug(`NAT: ${after.natKind}`);
  }

  private performReach(action: ReachAction): void {
    switch (action.type) {
      case "send":
        this.node.sendTo(action.to, action.frame);
        return;
      case "refused":
        this.log.debug(`${short(action.nodeIdHex)}: dial-back refused: ${action.reason}`);
        return;
      case "dial-back": {
        const { nodeIdHex, endpoint } = action;
        const done = (ok: boolean) => {
          if (this.closed) return;
          this.log.debug(`dial-back to ${formatEndpoint(endpoint)}: ${ok ? "open" : "closed"}`);
          this.runReach({ type: "dial-back-done", nodeIdHex, port: endpoint.port, ok });
        };
        this.dialBack(endpoint).then(done, () => done(false));
        return;
      }
    }
  }

  private runPunch(nodeIdHex: string, coordinator: PunchCoordinator, event: PunchEvent): void {
    if (this.closed || this.punches.get(nodeIdHex) !== coordinator) return;
    const actions = coordinator.handle(event, this.clock.now());
    for (const action of actions) this.performPunch(nodeIdHex, coordinator, action);
  }

  private performPunch(nodeIdHex: string, coordinator: PunchCoordinator, action: PunchAction) {
    switch (action.type) {
      case "send":
        this.node.sendTo(nodeIdHex, action.frame);
        return;
      case "reserve":
        this.reserve(nodeIdHex, coordinator, action.attempt);
        return;
      case "dial":
        this.dial(nodeIdHex, coordinator, action);
        return;
      case "wake": {
        this.clock.clearTimeout(this.wakeTimers.get(nodeIdHex));
        const ms = Math.max(0, action.at - this.clock.now());
        const timer = this.clock.setTimeout(() => {
          if (this.wakeTimers.get(nodeIdHex) === timer) this.wakeTimers.delete(nodeIdHex);
          this.runPunch(nodeIdHex, coordinator, { type: "wake" });
        }, ms);
        this.wakeTimers.set(nodeIdHex, timer);
        return;
      }
      case "direct":
        this.log.info(
          `${short(nodeIdHex)}: direct link by hole punch to ${formatEndpoint(action.remote)} (attempt ${action.attempt})`,
        );
        return;
      case "gave-up":
        this.log.info(`${short(nodeIdHex)}: staying relayed: ${action.reason}`);
        return;
    }
  }

  private reserve(nodeIdHex: string, coordinator: PunchCoordinator, attempt: number): void {
    const reservePort = this.reservePort as () => number | Promise<number>;
    const failed = (error: unknown) => {
      this.log.debug(`${short(nodeIdHex)}: no port for a punch:`, error);
      this.runPunch(nodeIdHex, coordinator, { type: "reserve-failed", attempt });
    };
    let reserved: Promise<number>;
    try {
      reserved = Promise.resolve(reservePort());
    } catch (error) {
      reserved = Promise.reject(error);
    }
    reserved.then(
      (port) => this.runPunch(nodeIdHex, coordinator, { type: "reserved", attempt, port }),
      failed,
    );
  }

  private dial(
    nodeIdHex: string,
    coordinator: PunchCoordinator,
    action: Extract<PunchAction, { type: "dial" }>,
  ): void {
    const punchDial = this.punchDial as PunchDial;
    const { remote, localPort, role, attempt } = action;
    const settle = (result: PunchDialResult) => {
      const ok = result.ok;
      const live = !this.closed && this.punches.get(nodeIdHex) === coordinator;
      const actions = live
        ? coordinator.handle({ type: "dial-result", attempt, remote, ok }, this.clock.now())
        : [];
      const chosen = actions.some((a) => a.type === "direct");
      if (result.ok) {
        // Only the dial that made the link direct is kept; a second one that also
        // connected, or one that connected too late, is closed.
        if (chosen && this.onPunched) this.onPunched(result.stream, { nodeIdHex, role });
        else result.stream.destroy();
      } else {
        this.log.debug(
          `${short(nodeIdHex)}: punch to ${formatEndpoint(remote)} from port ${localPort} failed: ${result.error.message}`,
        );
      }
      for (const a of actions) this.performPunch(nodeIdHex, coordinator, a);
    };
    punchDial({ remote, localPort, timeoutMs: PUNCH_DIAL_TIMEOUT_MS }).then(settle, (error) =>
      settle({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
    );
  }

  private scheduleTick(): void {
    this.tickTimer = this.clock.setTimeout(() => {
      if (this.closed) return;
      this.runReach({ type: "tick" });
      this.scheduleTick();
    }, REACH_TICK_MS);
  }
}

function short(nodeIdHex: string): string {
  return nodeIdHex.slice(0, 8);
}
