import { ProtocolError } from "../errors.ts";
import type { CloseRequest } from "../link/connection.ts";
import { FrameType, WireErrorCode } from "../protocol/constants.ts";
import type { Direction } from "../protocol/endpoint.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { decodeHello, encodeHello, type Hello } from "../protocol/hello.ts";
import { compareBytes, hex } from "../protocol/hex.ts";
import type { Bar } from "./abuse-guard.ts";
import { describeFarewell } from "./farewell.ts";

/** A peer must send its HELLO within this long of the connection opening. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/**
 * Inbound connections that may be mid-handshake at once, shared fairly between source
 * addresses ({@link admit}); more are turned away at once.
 */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 32;

/** Default cap on connections (inbound and outbound, handshaking included). */
export const DEFAULT_MAX_PEERS = 64;

/** The one place a HELLO is built: who we are, where we listen, what we are called. */
export function helloFrame(nodeId: Uint8Array, listenPort: number, nick: string): Uint8Array {
  return encodeHello({ nodeId, listenPort, nick });
}

/** Why this node cannot dial now, or undefined if it can. */
export function dialRefusal(
  closing: boolean,
  links: number,
  config: { readonly dial?: unknown; readonly maxPeers: number },
): string | undefined {
  if (!config.dial) return "this node cannot dial";
  if (closing) return "peer is shutting down";
  if (links >= config.maxPeers) return `at the connection cap (${config.maxPeers})`;
  return undefined;
}

/** How a link whose HELLO did not come within `timeoutMs` is closed. */
export function timedOut(timeoutMs: number): CloseRequest {
  const message = `no HELLO within ${timeoutMs / 1000} s`;
  return { kind: "error", code: WireErrorCode.HandshakeTimeout, message };
}

/** What the node knows when a connection arrives or is dialled. */
export interface Admission {
  readonly direction: Direction;
  /** The node is shutting down. */
  readonly closing: boolean;
  /** Open connections, handshaking ones included. */
  readonly links: number;
  /** Inbound connections still in their handshake. */
  readonly pendingInbound: number;
  /** Of those, how many come from the newcomer's source (its address group: `sourceGroup`). */
  readonly pendingFromSource: number;
  /** The most that any one source holds. */
  readonly pendingFromHeaviest: number;
  readonly maxPeers: number;
  readonly maxPendingHandshakes: number;
}

/** Whether a new connection may start its handshake, and if not, how it is turned away. */
export type AdmissionVerdict =
  | { readonly action: "accept" }
  /**
   * Take it, in the place of the oldest handshake pending from the source that holds the
   * most, closed with `close`: the places are full, and that source holds more than its share.
   */
  | { readonly action: "evict"; readonly close: CloseRequest; readonly reason: string }
  | {
      readonly action: "refuse";
      readonly close: CloseRequest;
      /** For the log and for a dial waiting on this connection. */
      readonly reason: string;
      /** Worth an info line (a full listener); otherwise debug. */
      readonly notable: boolean;
    };

const ACCEPT: AdmissionVerdict = Object.freeze({ action: "accept" });

/**
 * Decides whether a new connection is taken on (docs/PROTOCOL.md §7). Handshake places
 * are shared fairly between sources: when they are all taken, a newcomer whose source
 * holds at least two fewer than the heaviest source takes the place of that source's
 * oldest handshake (so a flood from a few addresses cannot keep anyone else out);
 * otherwise it is turned away at once, before any cryptography or buffering.
 */
export function admit(a: Admission): AdmissionVerdict {
  if (a.closing)
    return refuse(
      { kind: "quiet", reason: "peer is shutting down" },
      "peer is shutting down",
      false,
    );
  let evict = false;
  if (a.direction === "inbound" && a.pendingInbound >= a.maxPendingHandshakes) {
    // Two fewer, not one: taking a place from a source one ahead only swaps the two, and
    // a flood from many addresses would then churn the places without end.
    evict = a.pendingFromHeaviest >= a.pendingFromSource + 2;
    if (!evict) {
      // A connection storm: the neighbours we have keep being served. Real peers retry.
      const reason = `${a.maxPendingHandshakes} handshakes pending`;
      return refuse({ kind: "quiet", reason: "too many pending handshakes" }, reason, false);
    }
  }
  // An eviction frees a connection as well as a handshake place.
  if (a.links - (evict ? 1 : 0) < a.maxPeers) {
    if (!evict) return ACCEPT;
    const reason = "its address holds more pending handshakes than its share";
    return { action: "evict", close: { kind: "quiet", reason }, reason };
  }
  const reason = `at the connection cap (${a.maxPeers})`;
  if (a.direction === "outbound") return refuse({ kind: "quiet", reason }, reason, false);
  // Only a full listener says so on the wire: it is the one case the dialler can act on.
  const message = `too many peers (limit ${a.maxPeers})`;
  return refuse({ kind: "error", code: WireErrorCode.TooManyPeers, message }, reason, true);
}

function refuse(close: CloseRequest, reason: string, notable: boolean): AdmissionVerdict {
  return { action: "refuse", close, reason, notable };
}

/** One of the links to a node, as the duplicate-link rule sees it. */
export interface LinkEnd {
  readonly direction: Direction;
  /** The TCP source port of whichever side dialled it: the same number at both ends. */
  readonly dialerPort: number;
  /** Carried by a relay's circuit: a direct link to the same node replaces it. */
  readonly relayed: boolean;
}

/** What the node knows when a frame arrives on a link still in its handshake. */
export interface HandshakeContext {
  /** This node's id. */
  readonly selfId: Uint8Array;
  /** This link. */
  readonly link: LinkEnd;
  /** The established link to the same node, if there is one; looked up by hex id. */
  readonly existing: (nodeIdHex: string) => LinkEnd | undefined;
  /** Whether a node id (hex) is barred for abuse, and why. */
  readonly barOf: (nodeIdHex: string) => Bar | undefined;
}

/** What to do with the first frame of a link. */
export type HandshakeStep =
  /** The remote refused us with an ERROR: close without a reply. */
  | { readonly action: "refused"; readonly reason: string; readonly close: CloseRequest }
  /** Not a valid HELLO: close with this protocol error. */
  | { readonly action: "violation"; readonly close: CloseRequest }
  /** Our own id: we dialled ourselves. Close quietly. */
  | {
      readonly action: "self";
      readonly hello: Hello;
      readonly key: string;
      readonly close: CloseRequest;
    }
  /** Barred for abuse a moment ago: close with this ERROR, so the dialler can say why. */
  | {
      readonly action: "barred";
      readonly hello: Hello;
      readonly key: string;
      readonly close: CloseRequest;
    }
  /** A link to this node exists: keep the one named, close the other quietly (drained). */
  | {
      readonly action: "duplicate";
      readonly hello: Hello;
      readonly key: string;
      readonly keep: "existing" | "fresh";
    }
  /** A new neighbour. */
  | { readonly action: "establish"; readonly hello: Hello; readonly key: string };

/**
 * Decides what the first frame of a link means (docs/PROTOCOL.md §3): a refusal, a
 * protocol error, a self-dial, a barred id, a duplicate link (and which survives), or a
 * new neighbour. Pure: the node performs what it returns.
 */
export function handshakeStep(frame: Frame, ctx: HandshakeContext): HandshakeStep {
  if (frame.type === FrameType.Error) {
    // The remote refused us (full, or it disliked our HELLO): no reply to a refusal.
    const reason = `refused: ${describeFarewell(frame)}`;
    return { action: "refused", reason, close: { kind: "quiet", reason } };
  }
  if (frame.type !== FrameType.Hello) {
    const name = frame.type === FrameType.Flood ? "FLOOD" : `frame type ${frame.type}`;
    const error = new ProtocolError("BAD_HANDSHAKE", `expected HELLO first, got ${name}`);
    return { action: "violation", close: { kind: "violation", error } };
  }
  let hello: Hello;
  try {
    hello = decodeHello(frame.payload);
  } catch (error) {
    if (error instanceof ProtocolError)
      return { action: "violation", close: { kind: "violation", error } };
    throw error;
  }
  const key = hex(hello.nodeId);
  if (compareBytes(hello.nodeId, ctx.selfId) === 0)
    return { action: "self", hello, key, close: { kind: "quiet", reason: "connected to self" } };
  const bar = ctx.barOf(key);
  if (bar !== undefined) {
    const seconds = Math.ceil(bar.remainingMs / 1000);
    const message = `barred for abuse for another ${seconds} s`;
    return { action: "barred", hello, key, close: { kind: "error", code: bar.code, message } };
  }
  const existing = ctx.existing(key);
  if (existing === undefined) return { action: "establish", hello, key };
  const weAreLower = compareBytes(ctx.selfId, hello.nodeId) < 0;
  const keep = survivor(existing, ctx.link, weAreLower) === existing ? "existing" : "fresh";
  return { action: "duplicate", hello, key, keep };
}

/**
 * Which of two links to the same node survives. Both ends must pick the same one
 * without talking: prefer the link dialled by the node with the lower id; if the same
 * node dialled both, the one from the lower source port (the same number at both ends).
 * A direct link beats a relayed one whoever dialled it: both ends know which is which,
 * and the direct link is what hole punching was for.
 */
export function survivor<L extends LinkEnd>(a: L, b: L, weAreLower: boolean): L {
  if (a.relayed !== b.relayed) return a.relayed ? b : a;
  const keeper: Direction = weAreLower ? "outbound" : "inbound";
  const aKeeper = a.direction === keeper;
  if (aKeeper !== (b.direction === keeper)) return aKeeper ? a : b;
  return a.dialerPort <= b.dialerPort ? a : b;
}
