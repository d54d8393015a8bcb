/**
 * The transport's contract with the layers above: an ordered, reliable byte stream to
 * one remote party. Implemented over Bun's TCP sockets (tcp.ts) and in memory for tests
 * (test/helpers/memory-stream.ts). The secure channel implements it too, wrapping another
 * stream.
 */

import type { Direction, Endpoint } from "../protocol/endpoint.ts";

/** Why a stream closed. */
export interface StreamClosed {
  /** `local`: this side called end/destroy. `remote`: the other side closed or the link failed. */
  readonly by: "local" | "remote";
  /** Set when the socket failed (e.g. `ECONNRESET`) rather than closing cleanly. */
  readonly error?: string;
  /**
   * Why, in words, when a layer above the socket closed it for a reason of its own
   * (a secure channel whose handshake failed, say). Wins over `error`.
   */
  readonly reason?: string;
}

/** Outcome of {@link ByteStream.write}. */
export type WriteStatus =
  /** Accepted: written or queued for the next flush. */
  | "queued"
  /** Refused: the pending bytes would pass the cap. The remote is a slow consumer. */
  | "overflow"
  /** Refused: the stream is closing or closed. */
  | "closed";

/** Callbacks from a stream. Exceptions thrown by them are the caller's bug: catch inside. */
export interface ByteStreamHandler {
  data(chunk: Uint8Array): void;
  close(info: StreamClosed): void;
  /**
   * The queue went above `CONGESTED_ABOVE_BYTES` earlier and has now drained below
   * `CLEAR_BELOW_BYTES` (limits.ts).
   */
  clear?(): void;
}

/** How {@link ByteStream.end} closes. */
export interface EndOptions {
  /**
   * Close only the sending half (FIN) and go on delivering what arrives until the remote
   * closes its end too, or the flush deadline passes: the remote may still be sending,
   * unaware, and what it sent must not be lost.
   */
  readonly drain?: boolean;
}

/** The relay a relayed stream passes through (a circuit, docs/PROTOCOL.md §5d). */
export interface RelayedVia {
  /** Hex node id of the relay. */
  readonly relayNodeId: string;
  /** The relay's address: the stream's `remote` too. */
  readonly relayAddress: Endpoint;
}

/** An ordered, reliable byte stream with a bounded write queue. */
export interface ByteStream {
  readonly direction: Direction;
  /** Set when the stream is a circuit through a relay rather than a socket of its own. */
  readonly via?: RelayedVia;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  /** Bytes accepted by `write` and not yet handed to the operating system. */
  readonly pendingBytes: number;
  /** Bytes the operating system has taken so far: progress, for flow control. */
  readonly bytesSent: number;
  /** True once `end`, `destroy` or a remote close has happened. */
  readonly closed: boolean;
  /** Starts delivery to `handler`; chunks that arrived earlier are delivered first. */
  start(handler: ByteStreamHandler): void;
  /**
   * Queues `bytes[start, end)` (all of it by default). Writes in one tick are batched
   * into one socket write. The bytes are copied, so the caller may reuse its buffer.
   */
  write(bytes: Uint8Array, start?: number, end?: number): WriteStatus;
  /**
   * Queues `final` (even past the cap, which keeps room for it), flushes, then closes.
   * Gives up and closes anyway after a deadline if the remote does not read.
   */
  end(final?: Uint8Array, options?: EndOptions): void;
  /** Closes at once, dropping pending bytes. */
  destroy(): void;
  /** Stops reading (TCP then slows the sender down); `resume` reads again. Idempotent. */
  pause(): void;
  resume(): void;
}

/**
 * Opens a byte stream to an endpoint: TCP by default, a fault-injecting proxy in tests.
 * Never rejects.
 */
export type StreamDial = (
  endpoint: Endpoint,
) => Promise<
  { readonly ok: true; readonly stream: ByteStream } | { readonly ok: false; readonly error: Error }
>;
