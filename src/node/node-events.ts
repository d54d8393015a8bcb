import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import type { PeerAddress } from "../protocol/peers.ts";
import type { RelayedVia } from "../transport/byte-stream.ts";
import type { ChatMessage, FloodDelivery } from "./delivery.ts";

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
  /** Set when the link is a circuit through a relay: `address` is then the relay's. */
  readonly via?: RelayedVia;
}

/** The two ends of the socket under a neighbour's link, for the protocols of reach. */
export interface LinkSockets {
  readonly direction: Direction;
  /** Our end: for an outbound link, the source port the neighbour saw (NAT aside). */
  readonly local: Endpoint;
  /** The neighbour's end as we see it (the relay's, for a relayed link). */
  readonly remote: Endpoint;
  readonly via?: RelayedVia;
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

/** No neighbour has answered for a while: this node may be cut off from the network. */
export interface CutOff {
  /** Neighbours it still counts (none of them answering). */
  readonly neighbours: number;
  /** How long the one that went quiet last has not answered, in milliseconds. */
  readonly silentMs: number;
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
  /**
   * Every neighbour has been sent something and answered nothing for 8 s (liveness.ts,
   * `UNANSWERED_AFTER_MS`): once, until one answers again or a new link comes up.
   */
  "cut-off": CutOff;
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
