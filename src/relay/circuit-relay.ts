import {
  CircuitCloseCode,
  encodeCircuitAccept,
  encodeCircuitClose,
  encodeCircuitData,
  encodeCircuitIncoming,
} from "../protocol/circuit.ts";
import { fromHex } from "../protocol/hex.ts";

/** Circuits one relay carries at once. */
export const MAX_CIRCUITS = 64;

/** Circuits at one relay that have one peer as an end (either end). */
export const MAX_CIRCUITS_PER_PEER = 8;

/** Bytes one circuit may carry, both directions summed. */
export const CIRCUIT_MAX_BYTES = 16 * 1024 * 1024;

/** How long one circuit may stay open. */
export const CIRCUIT_MAX_DURATION_MS = 30 * 60_000;

/** An OPEN the target has not ACCEPTed within this long is closed. */
export const CIRCUIT_OPEN_TIMEOUT_MS = 10_000;

/** A peer's refusals are logged at most once in this long. */
export const REFUSAL_REPORT_INTERVAL_MS = 60_000;

/** Peers whose refusals are remembered for the report (the oldest goes first). */
const MAX_REFUSAL_ENTRIES = 256;

/** What one relay allows; every field has a default above. */
export interface CircuitLimits {
  readonly maxCircuits: number;
  readonly maxCircuitsPerPeer: number;
  readonly maxBytes: number;
  readonly maxDurationMs: number;
  readonly openTimeoutMs: number;
}

/** The defaults of {@link CircuitLimits}. */
export const DEFAULT_CIRCUIT_LIMITS: CircuitLimits = {
  maxCircuits: MAX_CIRCUITS,
  maxCircuitsPerPeer: MAX_CIRCUITS_PER_PEER,
  maxBytes: CIRCUIT_MAX_BYTES,
  maxDurationMs: CIRCUIT_MAX_DURATION_MS,
  openTimeoutMs: CIRCUIT_OPEN_TIMEOUT_MS,
};

const ID_SPACE = 0x8000_0000;

/**
 * Chooses circuit ids, one counter for every role this peer plays (relay or end), so that
 * no two of its circuits on one link share an id. On the link between two peers the one
 * with the lower node id uses even ids, the other odd ones (docs/PROTOCOL.md, CIRCUIT):
 * a frame's id then tells whose circuit it names, though either end may open circuits
 * through the other and relay circuits to it over that same link.
 */
export class CircuitIds {
  private counter = 0;

  constructor(private readonly selfHex: string) {}

  /** A fresh id for a circuit this peer names on its link to `peerHex`. */
  next(peerHex: string): number {
    const id = this.counter * 2 + this.parity(peerHex);
    this.counter = (this.counter + 1) % ID_SPACE;
    return id;
  }

  /** True if `id`, on the link to `peerHex`, is one this peer chose (not the neighbour). */
  ours(peerHex: string, id: number): boolean {
    return id % 2 === this.parity(peerHex);
  }

  private parity(peerHex: string): number {
    return this.selfHex < peerHex ? 0 : 1;
  }
}

/** Something that happened to the relay. */
export type CircuitRelayEvent =
  | {
      readonly type: "open";
      readonly from: string;
      readonly circuit: number;
      readonly target: string;
    }
  | { readonly type: "accept"; readonly from: string; readonly circuit: number }
  | {
      readonly type: "data";
      readonly from: string;
      readonly circuit: number;
      readonly data: Uint8Array;
    }
  | {
      readonly type: "close";
      readonly from: string;
      readonly circuit: number;
      readonly code: CircuitCloseCode;
      readonly reason: string;
    }
  /** The link to a neighbour closed: every circuit with it as an end is over. */
  | { readonly type: "lost"; readonly nodeId: string }
  /** Time passed: deadlines are checked. */
  | { readonly type: "tick" }
  /** This peer stops relaying: every circuit is closed on both legs. */
  | { readonly type: "shutdown" };

/** What the relay asks its driver to do. */
export type CircuitRelayAction =
  | { readonly type: "send"; readonly to: string; readonly frame: Uint8Array }
  /**
   * An OPEN was turned down. `report` is true at most once a minute per peer (then
   * `more` is how many other refusals of it went unreported since the last report).
   */
  | {
      readonly type: "refused";
      readonly from: string;
      readonly code: CircuitCloseCode;
      readonly why: string;
      readonly report: boolean;
      readonly more: number;
    }
  /** A circuit between `initiator` and `target` was cut for a limit (also counted in `limited`). */
  | {
      readonly type: "limited";
      readonly initiator: string;
      readonly target: string;
      readonly code: CircuitCloseCode;
      readonly why: string;
    };

/** Relay counters. */
export interface CircuitRelayStats {
  /** Circuits opened through us (accepted by their target). */
  accepted: number;
  /** DATA bytes forwarded, both directions. */
  bytesRelayed: number;
  /** OPENs turned down (full, limits, no route, not relaying). */
  refused: number;
  /** DATA on a circuit id we do not know (it may have just closed): dropped. */
  unknownData: number;
  /** Circuits closed for a limit (bytes, duration, open timeout). */
  limited: number;
}

/** One end of a relayed circuit: the neighbour and the id on its link. */
interface Leg {
  readonly peer: string;
  readonly id: number;
}

interface RelayedCircuit {
  readonly initiator: Leg;
  readonly target: Leg;
  accepted: boolean;
  readonly openedAt: number;
  bytes: number;
}

interface RefusalEntry {
  lastReportAt: number;
  unreported: number;
}

/** Options of a {@link CircuitRelay}. */
export interface CircuitRelayOptions {
  /** Our id allocator, shared with the ends' table so ids never collide on a link. */
  readonly ids: CircuitIds;
  /** False while this peer does not relay (it is not publicly reachable). */
  readonly relaying: () => boolean;
  /** True if a node id (hex) is a neighbour now. */
  readonly isNeighbour: (nodeIdHex: string) => boolean;
  readonly limits?: Partial<CircuitLimits>;
}

/**
 * The relay side of circuits, pure: its table of circuits, and `handle(event, now)` that
 * returns the frames to send. It forwards DATA only on circuits the target ACCEPTed,
 * rewriting the circuit id from one leg's to the other's; it reads none of the bytes.
 * Every circuit is bounded in number (at the relay and per peer), bytes and time.
 */
export class CircuitRelay {
  readonly limits: CircuitLimits;
  readonly stats: CircuitRelayStats = {
    accepted: 0,
    bytesRelayed: 0,
    refused: 0,
    unknownData: 0,
    limited: 0,
  };
  /** `peer/id` → the circuit that leg belongs to. */
  private readonly legs = new Map<string, RelayedCircuit>();
  private readonly circuits = new Set<RelayedCircuit>();
  /** Circuits per peer, either end. */
  private readonly perPeer = new Map<string, number>();
  private readonly refusals = new Map<string, RefusalEntry>();

  constructor(private readonly options: CircuitRelayOptions) {
    this.limits = { ...DEFAULT_CIRCUIT_LIMITS, ...options.limits };
  }

  /** Circuits carried now, opening ones included. */
  get size(): number {
    return this.circuits.size;
  }

  /** Circuits that have `nodeIdHex` as an end. */
  circuitsOf(nodeIdHex: string): number {
    return this.perPeer.get(nodeIdHex) ?? 0;
  }

  /** True if circuit `id` on the link to `peer` is one of the relay's legs. */
  has(peer: string, id: number): boolean {
    return this.legs.has(legKey(peer, id));
  }

  handle(event: CircuitRelayEvent, now: number): CircuitRelayAction[] {
    const out: CircuitRelayAction[] = [];
    switch (event.type) {
      case "open":
        this.open(event.from, event.circuit, event.target, now, out);
        break;
      case "accept":
        this.accept(event.from, event.circuit, out);
        break;
      case "data":
        this.data(event.from, event.circuit, event.data, out);
        break;
      case "close": {
        const circuit = this.legs.get(legKey(event.from, event.circuit));
        if (circuit) {
          // The other end learns why, in the closing end's words.
          this.end(circuit, out, event.code, event.reason, event.from);
        }
        break;
      }
      case "lost":
        for (const circuit of [...this.circuits]) {
          if (circuit.initiator.peer === event.nodeId || circuit.target.peer === event.nodeId) {
            this.end(
              circuit,
              out,
              CircuitCloseCode.LinkLost,
              "the relay lost the other end",
              event.nodeId,
            );
          }
        }
        this.refusals.delete(event.nodeId);
        break;
      case "tick":
        this.tick(now, out);
        break;
      case "shutdown":
        for (const circuit of [...this.circuits])
          this.end(circuit, out, CircuitCloseCode.Closed, "the relay is shutting down");
        break;
    }
    return out;
  }

  private open(
    from: string,
    id: number,
    target: string,
    now: number,
    out: CircuitRelayAction[],
  ): void {
    if (this.options.ids.ours(from, id)) {
      out.push({ type: "send", to: from, frame: wrongParity(id) });
      return;
    }
    const reused = this.legs.get(legKey(from, id));
    if (reused) {
      // An id still in use: the sender lost track of its circuits; neither is trusted.
      this.end(reused, out, CircuitCloseCode.Protocol, "circuit id reused");
      return;
    }
    const refusal = this.refusal(from, target);
    if (refusal) {
      const [code, why] = refusal;
      out.push({ type: "send", to: from, frame: encodeCircuitClose(id, code, why) });
      this.refused(from, code, why, now, out);
      return;
    }
    const circuit: RelayedCircuit = {
      initiator: { peer: from, id },
      target: { peer: target, id: this.options.ids.next(target) },
      accepted: false,
      openedAt: now,
      bytes: 0,
    };
    this.circuits.add(circuit);
    this.legs.set(legKey(from, id), circuit);
    this.legs.set(legKey(target, circuit.target.id), circuit);
    this.count(from, 1);
    this.count(target, 1);
    const incoming = encodeCircuitIncoming(circuit.target.id, fromHex(from));
    out.push({ type: "send", to: target, frame: incoming });
  }

  /** Why an OPEN from `from` to `target` is turned down, if it is. */
  private refusal(from: string, target: string): [CircuitCloseCode, string] | undefined {
    if (!this.options.relaying()) return [CircuitCloseCode.NoRoute, "not relaying"];
    if (target === from || !this.options.isNeighbour(target))
      return [CircuitCloseCode.NoRoute, "the target is not linked to the relay"];
    const { maxCircuits, maxCircuitsPerPeer } = this.limits;
    if (this.circuits.size >= maxCircuits)
      return [CircuitCloseCode.Refused, `relay full (${maxCircuits} circuits)`];
    if (this.circuitsOf(from) >= maxCircuitsPerPeer)
      return [CircuitCloseCode.Refused, `too many circuits (${maxCircuitsPerPeer})`];
    if (this.circuitsOf(target) >= maxCircuitsPerPeer)
      return [CircuitCloseCode.Refused, "too many circuits to the target"];
    return undefined;
  }

  private accept(from: string, id: number, out: CircuitRelayAction[]): void {
    const circuit = this.legs.get(legKey(from, id));
    if (!circuit) return; // closed a moment ago (timed out, its initiator gone)
    if (circuit.accepted || circuit.target.peer !== from || circuit.target.id !== id) {
      this.end(circuit, out, CircuitCloseCode.Protocol, "ACCEPT out of turn");
      return;
    }
    circuit.accepted = true;
    this.stats.accepted++;
    const { peer, id: initiatorId } = circuit.initiator;
    out.push({ type: "send", to: peer, frame: encodeCircuitAccept(initiatorId) });
  }

  private data(from: string, id: number, data: Uint8Array, out: CircuitRelayAction[]): void {
    const circuit = this.legs.get(legKey(from, id));
    if (!circuit) {
      this.stats.unknownData++;
      return;
    }
    if (!circuit.accepted) {
      this.end(circuit, out, CircuitCloseCode.Protocol, "DATA before ACCEPT");
      return;
    }
    const { maxBytes } = this.limits;
    if (circuit.bytes + data.length > maxBytes) {
      this.limit(circuit, out, CircuitCloseCode.ByteLimit, `${maxBytes} bytes relayed`);
      return;
    }
    circuit.bytes += data.length;
    this.stats.bytesRelayed += data.length;
    const to =
      circuit.initiator.peer === from && circuit.initiator.id === id
        ? circuit.target
        : circuit.initiator;
    out.push({ type: "send", to: to.peer, frame: encodeCircuitData(to.id, data) });
  }

  private tick(now: number, out: CircuitRelayAction[]): void {
    const { openTimeoutMs, maxDurationMs } = this.limits;
    for (const circuit of [...this.circuits]) {
      const age = now - circuit.openedAt;
      if (!circuit.accepted && age >= openTimeoutMs) {
        const why = `no answer from the target within ${openTimeoutMs / 1000} s`;
        this.limit(circuit, out, CircuitCloseCode.TargetRefused, why);
      } else if (age >= maxDurationMs) {
        const why = `open for ${Math.round(maxDurationMs / 1000)} s`;
        this.limit(circuit, out, CircuitCloseCode.DurationLimit, why);
      }
    }
    for (const [peer, entry] of this.refusals) {
      if (now - entry.lastReportAt >= REFUSAL_REPORT_INTERVAL_MS && entry.unreported === 0)
        this.refusals.delete(peer);
    }
  }

  /** Removes a circuit and sends CLOSE to its legs (not to `except`, whose link is gone or which closed it). */
  /** Cuts a circuit for a limit: CLOSE to both legs, counted and reported. */
  private limit(
    circuit: RelayedCircuit,
    out: CircuitRelayAction[],
    code: CircuitCloseCode,
    why: string,
  ): void {
    this.stats.limited++;
    const { initiator, target } = circuit;
    out.push({ type: "limited", initiator: initiator.peer, target: target.peer, code, why });
    this.end(circuit, out, code, why);
  }

  private end(
    circuit: RelayedCircuit,
    out: CircuitRelayAction[],
    code: CircuitCloseCode,
    reason: string,
    except?: string,
  ): void {
    this.circuits.delete(circuit);
    for (const leg of [circuit.initiator, circuit.target]) {
      this.legs.delete(legKey(leg.peer, leg.id));
      this.count(leg.peer, -1);
      if (leg.peer !== except)
        out.push({ type: "send", to: leg.peer, frame: encodeCircuitClose(leg.id, code, reason) });
    }
  }

  private count(peer: string, delta: number): void {
    const n = (this.perPeer.get(peer) ?? 0) + delta;
    if (n > 0) this.perPeer.set(peer, n);
    else this.perPeer.delete(peer);
  }

  private refused(
    from: string,
    code: CircuitCloseCode,
    why: string,
    now: number,
    out: CircuitRelayAction[],
  ): void {
    this.stats.refused++;
    let entry = this.refusals.get(from);
    if (!entry) {
      if (this.refusals.size >= MAX_REFUSAL_ENTRIES) {
        const oldest = this.refusals.keys().next().value as string;
        this.refusals.delete(oldest);
      }
      entry = { lastReportAt: Number.NEGATIVE_INFINITY, unreported: 0 };
      this.refusals.set(from, entry);
    }
    const report = now - entry.lastReportAt >= REFUSAL_REPORT_INTERVAL_MS;
    const more = report ? entry.unreported : 0;
    if (report) {
      entry.lastReportAt = now;
      entry.unreported = 0;
    } else {
      entry.unreported++;
    }
    out.push({ type: "refused", from, code, why, report, more });
  }
}

function legKey(peer: string, id: number): string {
  return `${peer}/${id}`;
}

/** CLOSE for an OPEN or INCOMING whose id has the parity of the receiver's ids. */
export function wrongParity(id: number): Uint8Array {
  return encodeCircuitClose(id, CircuitCloseCode.Protocol, "circuit id of the wrong parity");
}
