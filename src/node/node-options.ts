import type { ConsolaInstance } from "consola";
import type { Dial } from "../link/connection.ts";
import type { Clock } from "./clock.ts";
import type { FloodLimits } from "./flood-limits.ts";
import {
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  HANDSHAKE_TIMEOUT_MS,
} from "./handshake.ts";
import type { FloodSigner } from "./relay.ts";
import type { WireTap } from "./trace.ts";

/** Options for a {@link PeerNode}. */
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
  /** Cap on connections, handshaking ones included; default 64. */
  readonly maxPeers?: number;
  readonly clock?: Clock;
  readonly handshakeTimeoutMs?: number;
  readonly seenTtlMs?: number;
  readonly seenMaxEntries?: number;
  readonly tap?: WireTap;
  /** FLOOD rate limits; the defaults of flood-limits.ts unless given. */
  readonly floodLimits?: FloodLimits;
  /** The `seq` of this identity's last message, from its history: numbering goes on. */
  readonly lastSeq?: number;
  /** Inbound connections allowed to be mid-handshake at once; default 32. */
  readonly maxPendingHandshakes?: number;
}

/** The connection limits and dialler of a node, defaults applied. */
export interface NodeConfig {
  readonly maxPeers: number;
  readonly maxPendingHandshakes: number;
  readonly handshakeTimeoutMs: number;
  readonly dial: Dial | undefined;
}

/** The {@link NodeConfig} of `options`. */
export function nodeConfig(options: PeerNodeOptions): NodeConfig {
  return {
    maxPeers: options.maxPeers ?? DEFAULT_MAX_PEERS,
    maxPendingHandshakes: options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
    dial: options.dial,
  };
}
