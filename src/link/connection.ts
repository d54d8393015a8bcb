import { ProtocolError, type ProtocolErrorCode } from "../errors.ts";
import { WireErrorCode } from "../protocol/constants.ts";
import { encodeBye, encodeError } from "../protocol/control.ts";
import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import { type Frame, FrameDecoder } from "../protocol/frame-decoder.ts";
import type { ByteStream, RelayedVia, StreamClosed } from "../transport/byte-stream.ts";
import { CONGESTED_ABOVE_BYTES, MAX_PENDING_BYTES } from "../transport/limits.ts";

/** How to close a connection. */
export type CloseRequest =
  /** Graceful leave: BYE with a reason, flushed, then the link closes. */
  | { readonly kind: "bye"; readonly reason: string }
  /** A policy failure: ERROR (best effort), then close. */
  | { readonly kind: "error"; readonly code: WireErrorCode; readonly message: string }
  /** The remote broke the protocol: ERROR with the matching code, then close. */
  | { readonly kind: "violation"; readonly error: ProtocolError }
  /**
   * No frame: self-dials, duplicate links, dead links. With `drain`, frames still
   * arriving are delivered until the remote closes too: the other end of a duplicate
   * link may send on it until it reaches the same decision, and nothing it sent may be
   * lost.
   */
  | { readonly kind: "quiet"; readonly reason: string; readonly drain?: boolean };

/** Why a connection closed; reported once to {@link ConnectionHandler.close}. */
export interface ConnectionClosed {
  /** Which side ended it. */
  readonly by: "local" | "remote";
  /** Short, human-readable: "quit", "protocol error: …", "connection reset". */
  readonly reason: string;
  /** Set when this side closed it for breaking the protocol or a limit. */
  readonly code?: WireErrorCode;
  /** The exception behind a local close, for the log. */
  readonly error?: unknown;
}

/** What the node receives from a connection. */
export interface ConnectionHandler {
  /**
   * One frame. May throw: a {@link ProtocolError} closes the connection with the
   * matching ERROR code; anything else closes it as an internal error. Either way only
   * this connection is affected.
   */
  frame(frame: Frame): void;
  close(info: ConnectionClosed): void;
  /** The send queue, congested earlier, has drained below the transport's clear mark. */
  clear?(): void;
  /**
   * Sees the BYE or ERROR frame written by `close`, so that traces and taps see every
   * frame that leaves, not only those passed to `send`.
   */
  finalFrame?(frame: Uint8Array): void;
  /** Receives an exception thrown by `close` above (a bug there), which must not escape. */
  handlerError?(error: unknown): void;
}

/** Byte and frame counters for one connection. */
export interface ConnectionStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * The narrow interface the node sees: frames in, frames out, close. Implemented by
 * {@link FrameConnection} over any {@link ByteStream}, TCP or in-memory alike.
 */
export interface Connection {
  readonly id: number;
  readonly direction: Direction;
  readonly remote: Endpoint;
  /** Set for a link carried by a relay's circuit (its `remote` is then the relay). */
  readonly via?: RelayedVia | undefined;
  readonly local: Endpoint;
  readonly stats: Readonly<ConnectionStats>;
  /** Bytes queued towards the remote and not yet taken by the kernel. */
  readonly pendingBytes: number;
  /** Bytes the kernel has taken so far. */
  readonly bytesSent: number;
  /**
   * More is queued than the transport's congestion mark: flow control holds the other
   * links back until `clear` reports it drained.
   */
  readonly congested: boolean;
  readonly closed: boolean;
  start(handler: ConnectionHandler): void;
  /**
   * Queues one encoded frame, `bytes[start, end)` (all of `bytes` by default). Returns
   * false if it was not queued: the connection is closed, or the remote is a slow
   * consumer and is being dropped.
   */
  send(bytes: Uint8Array, start?: number, end?: number): boolean;
  close(request: CloseRequest): void;
  /** Drops the connection at once, unflushed, with no frame: a crash as the remote sees it. */
  abort(): void;
  /** Stops and restarts reading from the remote (flow control); idempotent. */
  pause(): void;
  resume(): void;
}

/** Dials an endpoint and brings up a link to it; never rejects. */
export type Dial = (endpoint: Endpoint) => Promise<DialOutcome>;

/** What a {@link Dial} gives: a connection, not yet started, or why there is none. */
export type DialOutcome =
  | { readonly ok: true; readonly connection: Connection }
  | { readonly ok: false; readonly error: Error };

let nextConnectionId = 1;

/**
 * Frames over a byte stream: decodes incoming chunks with a {@link FrameDecoder}, sends
 * encoded frames, and turns every failure into a close of this one connection with a
 * reason: bad framing, a handler exception, a remote that stops reading (past
 * {@link MAX_PENDING_BYTES}, the slow-consumer cap), or the socket going away.
 */
export class FrameConnection implements Connection {
  readonly id = nextConnectionId++;
  readonly stats: ConnectionStats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  private readonly decoder = new FrameDecoder();
  private handler: ConnectionHandler | undefined;
  private localClose: ConnectionClosed | undefined;
  private draining = false;
  private reported = false;

  constructor(private readonly stream: ByteStream) {}

  get direction(): Direction {
    return this.stream.direction;
  }
  get remote(): Endpoint {
    return this.stream.remote;
  }

  get via(): RelayedVia | undefined {
    return this.stream.via;
  }
  get local(): Endpoint {
    return this.stream.local;
  }
  get pendingBytes(): number {
    return this.stream.pendingBytes;
  }
  get bytesSent(): number {
    return this.stream.bytesSent;
  }
  get congested(): boolean {
    return this.stream.pendingBytes > CONGESTED_ABOVE_BYTES;
  }
  get closed(): boolean {
    return this.reported || this.localClose !== undefined || this.stream.closed;
  }

  start(handler: ConnectionHandler): void {
    this.handler = handler;
    this.stream.start({
      data: (chunk) => this.onData(chunk),
      close: (info) => this.onStreamClosed(info),
      clear: () => this.handler?.clear?.(),
    });
  }

  send(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.localClose) return false;
    const status = this.stream.write(bytes, start, end);
    if (status === "queued") {
      this.stats.framesOut++;
      this.stats.bytesOut += end - start;
      return true;
    }
    if (status === "overflow") {
      this.close({
        kind: "error",
        code: WireErrorCode.SlowConsumer,
        message: `slow consumer: more than ${MAX_PENDING_BYTES} bytes pending`,
      });
    }
    return false;
  }

  close(
    request: CloseRequest,
    detail?: { readonly reason: string; readonly error: unknown },
  ): void {
    if (this.localClose || this.reported) return;
    switch (request.kind) {
      case "violation": {
        const { error } = request;
        const reason = `protocol error: ${error.message}`;
        const code = wireCodeFor(error.code);
        this.localClose = { by: "local", reason, code, error };
        this.endWith(encodeError({ code, message: error.message }));
        break;
      }
      case "bye":
        this.localClose = { by: "local", reason: request.reason };
        this.endWith(encodeBye(request.reason));
        break;
      case "error":
        this.localClose = {
          by: "local",
          reason: detail?.reason ?? request.message,
          code: request.code,
          error: detail?.error,
        };
        this.endWith(encodeError({ code: request.code, message: request.message }));
        break;
      case "quiet":
        this.localClose = { by: "local", reason: request.reason };
        this.draining = request.drain === true;
        this.stream.end(undefined, { drain: this.draining });
        break;
    }
  }

  private endWith(frame: Uint8Array): void {
    this.handler?.finalFrame?.(frame);
    this.stream.end(frame);
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  abort(): void {
    if (this.reported) return;
    this.localClose ??= { by: "local", reason: "aborted" };
    this.stream.destroy();
  }

  private onData(chunk: Uint8Array): void {
    if (this.localClose && !this.draining) return; // closing: ignore whatever still arrives
    this.stats.bytesIn += chunk.length;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    const handler = this.handler;
    for (const frame of frames) {
      if ((this.localClose && !this.draining) || !handler) return;
      this.stats.framesIn++;
      try {
        handler.frame(frame);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    if (this.decoder.error) this.fail(this.decoder.error);
  }

  /** Closes after a decode failure or a handler exception. */
  private fail(error: unknown): void {
    if (this.localClose) {
      // Already closing (a draining duplicate link): stop delivering, nothing more to say.
      this.draining = false;
      return;
    }
    if (error instanceof ProtocolError) {
      this.close({ kind: "violation", error });
    } else {
      // The detail stays in the local log; the remote learns only that we gave up.
      const message = error instanceof Error ? error.message : String(error);
      this.close(
        { kind: "error", code: WireErrorCode.Internal, message: "internal error" },
        { reason: `internal error: ${message}`, error },
      );
    }
  }

  private onStreamClosed(info: StreamClosed): void {
    if (this.reported) return;
    this.reported = true;
    const closed: ConnectionClosed = this.localClose ?? {
      by: "remote",
      reason: info.reason ?? (info.error ? describeSocketError(info.error) : "closed"),
    };
    try {
      this.handler?.close(closed);
    } catch (error) {
      // A bug in the layer above must not escape into the socket's callback, or into
      // whoever happened to trigger the close (a dial in progress, say).
      this.handler?.handlerError?.(error);
    }
  }
}

const WIRE_CODES: Readonly<Record<ProtocolErrorCode, WireErrorCode>> = {
  FRAME_TOO_LARGE: WireErrorCode.BadFrame,
  FRAME_EMPTY: WireErrorCode.BadFrame,
  BAD_FRAME_TYPE: WireErrorCode.BadFrame,
  TRUNCATED: WireErrorCode.BadFrame,
  TRAILING_BYTES: WireErrorCode.BadFrame,
  BAD_UTF8: WireErrorCode.BadMessage,
  BAD_FIELD: WireErrorCode.BadMessage,
  BAD_HANDSHAKE: WireErrorCode.BadHandshake,
  VERSION_MISMATCH: WireErrorCode.VersionMismatch,
};

/** The ERROR code sent for a protocol violation. */
export function wireCodeFor(code: ProtocolErrorCode): WireErrorCode {
  return WIRE_CODES[code];
}

function describeSocketError(code: string): string {
  switch (code) {
    case "ECONNRESET":
      return "connection reset";
    case "EPIPE":
      return "connection broken";
    case "ETIMEDOUT":
      return "connection timed out";
    default:
      return `connection lost (${code})`;
  }
}

/** How long a closing connection may take to flush before it is closed regardless. */
export { CLOSE_FLUSH_TIMEOUT_MS } from "../transport/limits.ts";
