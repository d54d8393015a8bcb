import type { ConsolaInstance } from "consola";
import type { Clock, TimerHandle } from "../node/clock.ts";
import type { PeerNode } from "../node/peer-node.ts";
import {
  CIRCUIT_CLOSE_NAMES,
  CircuitCloseCode,
  type CircuitMessage,
  CircuitOp,
  decodeCircuit,
  describeCircuitClose,
  encodeCircuitAccept,
  encodeCircuitClose,
  encodeCircuitOpen,
} from "../protocol/circuit.ts";
import { FrameType, NODE_ID_BYTES } from "../protocol/constants.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { fromHex, hex } from "../protocol/hex.ts";
import {
  CircuitIds,
  type CircuitLimits,
  CircuitRelay,
  type CircuitRelayAction,
  type CircuitRelayEvent,
  wrongParity,
} from "./circuit-relay.ts";
import { CircuitStream } from "./circuit-stream.ts";

/** Relayed streams one peer holds at once, as either end. */
export const MAX_RELAYED_ENDS = 8;

/** The relay's deadlines (open timeout, duration) are checked this often while it carries circuits. */
export const CIRCUIT_TICK_MS = 1000;

/** The limits of {@link Circuits}: the relay's, and how many relayed streams this peer holds. */
export interface CircuitsLimits extends CircuitLimits {
  readonly maxEnds: number;
}

/** What {@link Circuits} uses of the node. */
export type CircuitNode = Pick<
  PeerNode,
  | "nodeIdHex"
  | "events"
  | "handle"
  | "sendTo"
  | "congested"
  | "isNeighbour"
  | "neighbours"
  | "linkSockets"
>;

/** Who is at the other end of an incoming relayed stream, and through whom. */
export interface IncomingCircuit {
  readonly fromNodeId: string;
  readonly relayNodeId: string;
}

/** Options of {@link Circuits}. */
export interface CircuitsOptions {
  readonly node: CircuitNode;
  readonly clock: Clock;
  readonly logger: ConsolaInstance;
  readonly limits?: Partial<CircuitsLimits>;
  /** False while this peer does not relay (it is not publicly reachable): OPENs get NoRoute. */
  readonly relaying: () => boolean;
  /** Whether to take a stream from `fromHex` through `relayHex`; default: yes. */
  readonly accepting?: (fromHex: string, relayHex: string) => boolean;
  /** A stream the far end opened to us, accepted: start it (and wrap it) now. */
  readonly onIncoming: (stream: CircuitStream, info: IncomingCircuit) => void;
}

/** Outcome of {@link Circuits.open}. */
export type CircuitOpenOutcome =
  | { readonly ok: true; readonly stream: CircuitStream }
  | {
      readonly ok: false;
      readonly reason: string;
      /** Set when a CLOSE said why (from the relay, or the target through it). */
      readonly code?: CircuitCloseCode;
    };

/** What {@link Circuits} has done so far. */
export interface CircuitsStats {
  /** Circuits this peer relays now (opening ones included). */
  readonly relayed: number;
  /** DATA bytes relayed, both directions. */
  readonly bytesRelayed: number;
  /** OPENs this peer refused as a relay. */
  readonly refused: number;
  /** Circuits this peer relayed that hit a limit (bytes, duration, open timeout). */
  readonly limited: number;
  /** DATA on a circuit id not (or no longer) known: dropped. */
  readonly unknownData: number;
  /** Relayed streams this peer holds now, as either end (opening ones included). */
  readonly ends: number;
}

type End =
  | {
      readonly state: "opening";
      readonly relay: string;
      readonly id: number;
      readonly resolve: (outcome: CircuitOpenOutcome) => void;
      readonly timer: TimerHandle;
    }
  | {
      readonly state: "open";
      readonly relay: string;
      readonly id: number;
      readonly stream: CircuitStream;
    };

const NODE_ID_HEX = new RegExp(`^[0-9a-f]{${NODE_ID_BYTES * 2}}$`);

/**
 * Relay circuits at one peer, both roles. As a relay it decodes CIRCUIT frames and
 * performs what {@link CircuitRelay} decides; as an end it opens circuits through a
 * neighbour ({@link open}), takes the ones offered to it, and carries each as a
 * {@link CircuitStream}. A CIRCUIT frame that does not parse throws from the node's
 * handler, which closes that neighbour's link for a protocol error.
 */
export class Circuits {
  private readonly node: CircuitNode;
  private readonly clock: Clock;
  private readonly log: ConsolaInstance;
  private readonly ids: CircuitIds;
  private readonly relay: CircuitRelay;
  private readonly maxEnds: number;
  /** `relay/id` → this peer's end of a circuit. */
  private readonly ends = new Map<string, End>();
  private tickTimer: TimerHandle | undefined;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly options: CircuitsOptions) {
    const { node, clock, logger, limits } = options;
    this.node = node;
    this.clock = clock;
    this.log = logger;
    this.ids = new CircuitIds(node.nodeIdHex);
    this.maxEnds = limits?.maxEnds ?? MAX_RELAYED_ENDS;
    this.relay = new CircuitRelay({
      ids: this.ids,
      relaying: () => !this.closed && options.relaying(),
      isNeighbour: (id) => node.isNeighbour(id),
      ...(limits ? { limits } : {}),
    });
    node.handle(FrameType.Circuit, (from, frame) => this.onFrame(from, frame));
    this.unsubscribe = node.events.on("peer-down", (peer) => this.lost(peer.nodeId));
  }

  get stats(): CircuitsStats {
    const { bytesRelayed, refused, limited, unknownData } = this.relay.stats;
    return {
      relayed: this.relay.size,
      bytesRelayed,
      refused,
      limited,
      unknownData,
      ends: this.ends.size,
    };
  }

  /**
   * Opens a circuit through neighbour `relayHex` to `targetHex`, a neighbour of the
   * relay: the stream once the target accepts, or why not. Never rejects; gives up after
   * the open timeout (10 s by default).
   */
  open(relayHex: string, targetHex: string): Promise<CircuitOpenOutcome> {
    const fail = (reason: string) => Promise.resolve({ ok: false, reason } as const);
    if (this.closed) return fail("shutting down");
    if (!NODE_ID_HEX.test(targetHex)) return fail("the target is not a node id");
    if (targetHex === this.node.nodeIdHex || targetHex === relayHex)
      return fail("the target is this peer or the relay");
    if (!this.node.isNeighbour(relayHex)) return fail("not linked to the relay");
    if (this.ends.size >= this.maxEnds) return fail(`already ${this.maxEnds} relayed streams open`);
    const id = this.ids.next(relayHex);
    if (!this.node.sendTo(relayHex, encodeCircuitOpen(id, fromHex(targetHex))))
      return fail("the link to the relay is not taking frames");
    const timeoutMs = this.relay.limits.openTimeoutMs;
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.ends.delete(endKey(relayHex, id));
        const reason = `no answer within ${timeoutMs / 1000} s`;
        this.node.sendTo(relayHex, encodeCircuitClose(id, CircuitCloseCode.Closed, reason));
        resolve({ ok: false, reason });
      }, timeoutMs);
      this.ends.set(endKey(relayHex, id), {
        state: "opening",
        relay: relayHex,
        id,
        resolve,
        timer,
      });
    });
  }

  /** Ends every circuit (ours with a CLOSE, relayed ones on both legs) and stops. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    for (const end of [...this.ends.values()]) {
      if (end.state === "open") {
        end.stream.destroy();
        continue;
      }
      this.clock.clearTimeout(end.timer);
      this.ends.delete(endKey(end.relay, end.id));
      this.node.sendTo(
        end.relay,
        encodeCircuitClose(end.id, CircuitCloseCode.Closed, "shutting down"),
      );
      end.resolve({ ok: false, reason: "shutting down" });
    }
    this.perform(this.relay.handle({ type: "shutdown" }, this.clock.now()));
  }

  private onFrame(from: string, frame: Frame): void {
    const message = decodeCircuit(frame.payload);
    const { circuit } = message;
    switch (message.op) {
      case CircuitOp.Open: {
        const end = this.ends.get(endKey(from, circuit));
        if (end) {
          // The neighbour named one of our ends' circuits with the id of a new one.
          this.protocolOnEnd(end, "circuit id reused");
          return;
        }
        const target = hex(message.target);
        this.toRelay({ type: "open", from, circuit, target });
        return;
      }
      case CircuitOp.Incoming:
        this.incoming(from, circuit, hex(message.from));
        return;
      default: {
        const end = this.ends.get(endKey(from, circuit));
        if (end) this.toEnd(end, message);
        else this.toRelay(relayEvent(from, message));
      }
    }
  }

  private toRelay(event: CircuitRelayEvent): void {
    this.perform(this.relay.handle(event, this.clock.now()));
    if (this.relay.size > 0 && this.tickTimer === undefined && !this.closed) this.armTick();
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = undefined;
      this.perform(this.relay.handle({ type: "tick" }, this.clock.now()));
      if (this.relay.size > 0 && !this.closed) this.armTick();
    }, CIRCUIT_TICK_MS);
  }

  private perform(actions: readonly CircuitRelayAction[]): void {
    for (const action of actions) {
      if (action.type === "send") {
        this.node.sendTo(action.to, action.frame);
      } else if (action.type === "limited") {
        // A byte or time limit is news to whoever runs the relay; an unanswered OPEN is not.
        const level = action.code === CircuitCloseCode.TargetRefused ? "debug" : "info";
        const name = CIRCUIT_CLOSE_NAMES[action.code];
        this.log[level](
          `cut the circuit from ${short(action.initiator)} to ${short(action.target)}: ${name} (${action.why})`,
        );
      } else if (action.report) {
        const more = action.more > 0 ? ` (and ${action.more} more in the last minute)` : "";
        const level = action.code === CircuitCloseCode.Refused ? "info" : "debug";
        this.log[level](`refused a circuit from ${short(action.from)}: ${action.why}${more}`);
      }
    }
  }

  /** The relay `relay` offers us a circuit from `from`. */
  private incoming(relay: string, id: number, from: string): void {
    if (this.ids.ours(relay, id)) {
      this.node.sendTo(relay, wrongParity(id));
      return;
    }
    const taken = this.ends.get(endKey(relay, id));
    if (taken || this.relay.has(relay, id)) {
      if (taken) this.protocolOnEnd(taken, "circuit id reused");
      else
        this.toRelay({
          type: "close",
          from: relay,
          circuit: id,
          code: CircuitCloseCode.Protocol,
          reason: "",
        });
      this.node.sendTo(
        relay,
        encodeCircuitClose(id, CircuitCloseCode.Protocol, "circuit id reused"),
      );
      return;
    }
    const why = this.incomingRefusal(relay, from);
    if (why !== undefined) {
      this.node.sendTo(relay, encodeCircuitClose(id, CircuitCloseCode.TargetRefused, why));
      this.log.debug(`refused a relayed stream from ${short(from)} via ${short(relay)}: ${why}`);
      return;
    }
    const stream = this.stream("inbound", relay, id);
    this.ends.set(endKey(relay, id), { state: "open", relay, id, stream });
    this.node.sendTo(relay, encodeCircuitAccept(id));
    try {
      this.options.onIncoming(stream, { fromNodeId: from, relayNodeId: relay });
    } catch (error) {
      this.log.error("taking a relayed stream failed:", error);
      stream.destroy();
    }
  }

  /** Why this peer does not take a stream from `from` through `relay`, if it does not. */
  private incomingRefusal(relay: string, from: string): string | undefined {
    if (this.closed) return "shutting down";
    if (from === this.node.nodeIdHex) return "a circuit to itself";
    if (this.ends.size >= this.maxEnds) return `already ${this.maxEnds} relayed streams open`;
    if (this.options.accepting && !this.options.accepting(from, relay))
      return "not accepting relayed streams";
    return undefined;
  }

  /** ACCEPT, DATA or CLOSE for one of our ends. */
  private toEnd(end: End, message: CircuitMessage): void {
    if (end.state === "opening") {
      if (message.op === CircuitOp.Accept) {
        this.clock.clearTimeout(end.timer);
        const stream = this.stream("outbound", end.relay, end.id);
        this.ends.set(endKey(end.relay, end.id), {
          state: "open",
          relay: end.relay,
          id: end.id,
          stream,
        });
        end.resolve({ ok: true, stream });
      } else if (message.op === CircuitOp.Close) {
        this.clock.clearTimeout(end.timer);
        this.ends.delete(endKey(end.relay, end.id));
        const reason = describeCircuitClose(message.code, message.reason);
        end.resolve({ ok: false, reason, code: message.code });
      } else {
        this.protocolOnEnd(end, "DATA before ACCEPT");
      }
      return;
    }
    const { stream } = end;
    try {
      if (message.op === CircuitOp.Data) stream.receive(message.data);
      else if (message.op === CircuitOp.Close) stream.remoteClosed(message.code, message.reason);
      else this.protocolOnEnd(end, "ACCEPT out of turn");
    } catch (error) {
      // A bug above the stream: it must not close the link to the relay, only this circuit.
      this.log.error("a relayed stream's reader failed:", error);
      stream.destroy();
    }
  }

  /** One of our circuits broke the rules at the relay's end: CLOSE it, and say so locally. */
  private protocolOnEnd(end: End, why: string): void {
    this.node.sendTo(end.relay, encodeCircuitClose(end.id, CircuitCloseCode.Protocol, why));
    if (end.state === "open") {
      end.stream.remoteClosed(CircuitCloseCode.Protocol, why);
      return;
    }
    this.clock.clearTimeout(end.timer);
    this.ends.delete(endKey(end.relay, end.id));
    const code = CircuitCloseCode.Protocol;
    end.resolve({ ok: false, reason: describeCircuitClose(code, why), code });
  }

  private stream(direction: "inbound" | "outbound", relay: string, id: number): CircuitStream {
    const info = this.node.neighbours().find((n) => n.nodeId === relay);
    const relayAddress: Endpoint = info?.address ?? { host: "unknown", port: 0 };
    const local = this.node.linkSockets(relay)?.local ?? { host: "unknown", port: 0 };
    return new CircuitStream({
      direction,
      via: { relayNodeId: relay, relayAddress },
      local,
      circuit: id,
      clock: this.clock,
      send: (frame) => this.node.sendTo(relay, frame),
      congested: () => this.node.congested(relay),
      onClosed: (stream) => {
        const key = endKey(relay, id);
        const end = this.ends.get(key);
        if (end?.state === "open" && end.stream === stream) this.ends.delete(key);
      },
    });
  }

  /** A neighbour's link closed: the circuits through it or to it are over. */
  private lost(nodeId: string): void {
    this.toRelay({ type: "lost", nodeId });
    for (const end of [...this.ends.values()]) {
      if (end.relay !== nodeId) continue;
      if (end.state === "open") {
        end.stream.remoteClosed(CircuitCloseCode.LinkLost, "lost the link to the relay");
        continue;
      }
      this.clock.clearTimeout(end.timer);
      this.ends.delete(endKey(end.relay, end.id));
      end.resolve({ ok: false, reason: "lost the link to the relay" });
    }
  }
}

function relayEvent(from: string, message: CircuitMessage): CircuitRelayEvent {
  const { circuit } = message;
  switch (message.op) {
    case CircuitOp.Accept:
      return { type: "accept", from, circuit };
    case CircuitOp.Data:
      return { type: "data", from, circuit, data: message.data };
    case CircuitOp.Close:
      return { type: "close", from, circuit, code: message.code, reason: message.reason };
    default:
      throw new Error(`not a relay event: op ${message.op}`);
  }
}

function endKey(relay: string, id: number): string {
  return `${relay}/${id}`;
}

function short(nodeIdHex: string): string {
  return nodeIdHex.slice(0, 8);
}
