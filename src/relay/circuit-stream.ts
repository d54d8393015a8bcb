import type { Clock, TimerHandle } from "../node/clock.ts";
import {
  CircuitCloseCode,
  describeCircuitClose,
  encodeCircuitClose,
  encodeCircuitData,
  MAX_CIRCUIT_DATA_BYTES,
} from "../protocol/circuit.ts";
import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  EndOptions,
  RelayedVia,
  StreamClosed,
  WriteStatus,
} from "../transport/byte-stream.ts";
import {
  CLEAR_BELOW_BYTES,
  CLOSE_FLUSH_TIMEOUT_MS,
  CONGESTED_ABOVE_BYTES,
  FINAL_FRAME_RESERVE_BYTES,
  MAX_PENDING_BYTES,
} from "../transport/limits.ts";
import { WriteBuffer } from "../transport/write-buffer.ts";

/** How soon a stream whose relay link is congested (or gone a moment) tries to send again. */
export const CONGESTED_RETRY_MS = 20;

/** The reason in the CLOSE that {@link CircuitStream.destroy} sends. */
const RESET_REASON = "reset";

/** What a {@link CircuitStream} needs from the driver. */
export interface CircuitStreamOptions {
  /** `outbound` for the end that opened the circuit, `inbound` for the target. */
  readonly direction: Direction;
  /** The relay; its address is the stream's `remote`. */
  readonly via: RelayedVia;
  /** Our end of the link to the relay. */
  readonly local: Endpoint;
  /** This circuit's id on the link to the relay (ours or the relay's, as it was named). */
  readonly circuit: number;
  readonly clock: Clock;
  /** Sends one frame to the relay; false if the link is not taking it. */
  readonly send: (frame: Uint8Array) => boolean;
  /** True while the link to the relay has more queued than its congestion mark. */
  readonly congested: () => boolean;
  /** Called once, when the stream is over, however it ended: the driver forgets it. */
  readonly onClosed: (stream: CircuitStream) => void;
}

/** How a circuit ended, when a CLOSE said so (or the link to the relay was lost). */
export interface CircuitEnding {
  readonly code: CircuitCloseCode;
  readonly reason: string;
  /** `local`: this end sent the CLOSE. */
  readonly by: "local" | "remote";
}

/**
 * One end of a relay circuit as a {@link ByteStream}: what is written leaves as CIRCUIT
 * DATA frames of at most {@link MAX_CIRCUIT_DATA_BYTES} on the link to the relay, and the
 * DATA that arrives is handed up. The secure channel runs on top, end to end.
 *
 * Writes wait in a queue of their own, capped like a socket's ({@link MAX_PENDING_BYTES}),
 * while the link to the relay is congested: the link's own queue is shared by every
 * frame to that neighbour, and a circuit must not fill it alone.
 *
 * Reading cannot push back: the relay link carries other traffic, and a circuit has no
 * window of its own, so there is nothing TCP-like to slow the far end with. A paused
 * stream keeps what arrives, up to {@link MAX_PENDING_BYTES}, and closes the circuit past
 * it. (The node pauses links only while another of its links is congested, briefly.)
 *
 * The wire has no half-close: `end()` flushes, then sends CLOSE, and the relay drops the
 * circuit. With `drain`, the CLOSE waits until the far end closes too or the flush
 * deadline passes, so that what the far end still sends is read.
 */
export class CircuitStream implements ByteStream {
  readonly direction: Direction;
  readonly via: RelayedVia;
  readonly remote: Endpoint;
  readonly local: Endpoint;
  readonly circuit: number;
  /** Set once a CLOSE ended the circuit, either way. */
  cause: CircuitEnding | undefined;
  private handler: ByteStreamHandler | undefined;
  private phase: "open" | "ending" | "closed" = "open";
  private draining = false;
  private readonly out = new WriteBuffer();
  private flushScheduled = false;
  private retry: TimerHandle | undefined;
  private deadline: TimerHandle | undefined;
  private congestedMark = false;
  private paused = false;
  /** DATA not yet handed up (before `start`, or while paused): copies. */
  private inbox: Uint8Array[] = [];
  private inboxBytes = 0;
  private deliveryScheduled = false;
  private sent = 0;
  /** Set once over; reported to the handler when the inbox is empty. */
  private closeInfo: StreamClosed | undefined;
  private reported = false;

  constructor(private readonly options: CircuitStreamOptions) {
    this.direction = options.direction;
    this.via = options.via;
    this.remote = options.via.relayAddress;
    this.local = options.local;
    this.circuit = options.circuit;
  }

  get pendingBytes(): number {
    return this.out.length;
  }

  get bytesSent(): number {
    return this.sent;
  }

  get closed(): boolean {
    return this.phase !== "open";
  }

  start(handler: ByteStreamHandler): void {
    this.handler = handler;
    this.deliverInbox();
  }

  write(bytes: Uint8Array, start = 0, end = bytes.length): WriteStatus {
    if (this.phase !== "open") return "closed";
    if (end <= start) return "queued";
    if (this.out.length + (end - start) > MAX_PENDING_BYTES - FINAL_FRAME_RESERVE_BYTES)
      return "overflow";
    this.out.append(bytes, start, end);
    if (this.out.length > CONGESTED_ABOVE_BYTES) this.congestedMark = true;
    this.scheduleFlush();
    return "queued";
  }

  end(final?: Uint8Array, options?: EndOptions): void {
    if (this.phase !== "open") return;
    this.phase = "ending";
    this.draining = options?.drain === true;
    if (final && final.length > 0) this.out.append(final);
    const { clock } = this.options;
    this.deadline = clock.setTimeout(() => this.closeLocally(""), CLOSE_FLUSH_TIMEOUT_MS);
    this.flush();
  }

  destroy(): void {
    if (this.phase === "closed") return;
    this.out.clear();
    this.inbox = [];
    this.inboxBytes = 0;
    this.closeLocally(RESET_REASON);
  }

  pause(): void {
    if (this.phase !== "closed") this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Later, not now: resume() is called from inside the node's flow control.
    this.scheduleDelivery();
  }

  /** DATA from the far end, through the relay: a view, copied if it must wait. */
  receive(data: Uint8Array): void {
    if (this.phase === "closed" || (this.phase === "ending" && !this.draining)) return;
    if (this.handler && !this.paused && this.inbox.length === 0) {
      this.handler.data(data);
      return;
    }
    if (this.inboxBytes + data.length > MAX_PENDING_BYTES) {
      this.inbox = [];
      this.inboxBytes = 0;
      this.closeLocally(
        "the reader fell behind",
        `reader more than ${MAX_PENDING_BYTES} bytes behind`,
      );
      return;
    }
    this.inbox.push(data.slice());
    this.inboxBytes += data.length;
  }

  /** A CLOSE from the relay (the far end's, or the relay's own), or the relay link lost. */
  remoteClosed(code: CircuitCloseCode, reason: string): void {
    if (this.phase === "closed") return;
    this.cause = { code, reason, by: "remote" };
    // An end we began (drain) completes when the far end closes too: ours, as TCP has it.
    const info: StreamClosed =
      this.phase === "ending"
        ? { by: "local" }
        : code === CircuitCloseCode.Closed && reason === ""
          ? { by: "remote" }
          : { by: "remote", reason: `relayed circuit: ${describeCircuitClose(code, reason)}` };
    this.finish(info);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.retry !== undefined) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Sends queued bytes as DATA frames while the relay link takes them. */
  private flush(): void {
    if (this.phase === "closed") return;
    const { send, congested, circuit } = this.options;
    const out = this.out;
    while (out.length > 0) {
      const n = Math.min(out.segment, MAX_CIRCUIT_DATA_BYTES);
      if (congested() || !send(encodeCircuitData(circuit, out.store, out.offset, out.offset + n))) {
        // Congested, or the link is gone for a moment (a peer-down would have closed us).
        this.armRetry();
        return;
      }
      out.consume(n);
      this.sent += n;
    }
    this.checkClear();
    if (this.phase === "ending" && !this.draining) this.closeLocally("");
  }

  private armRetry(): void {
    if (this.retry !== undefined) return;
    this.retry = this.options.clock.setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, CONGESTED_RETRY_MS);
  }

  private checkClear(): void {
    if (this.congestedMark && this.out.length < CLEAR_BELOW_BYTES) {
      this.congestedMark = false;
      this.handler?.clear?.();
    }
  }

  /** Sends CLOSE and ends the stream: a normal end (reason ""), a reset, or a local failure. */
  private closeLocally(wireReason: string, reason?: string): void {
    if (this.phase === "closed") return;
    const code = CircuitCloseCode.Closed;
    this.options.send(encodeCircuitClose(this.circuit, code, wireReason));
    this.cause = { code, reason: wireReason, by: "local" };
    this.finish(reason === undefined ? { by: "local" } : { by: "local", reason });
  }

  private finish(info: StreamClosed): void {
    this.phase = "closed";
    const { clock } = this.options;
    clock.clearTimeout(this.deadline);
    clock.clearTimeout(this.retry);
    this.retry = undefined;
    this.out.clear();
    this.closeInfo = info;
    this.options.onClosed(this);
    this.deliverInbox();
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    queueMicrotask(() => {
      this.deliveryScheduled = false;
      this.deliverInbox();
    });
  }

  /** Hands up what waited, then the close, if it has come: as a socket, data before its end. */
  private deliverInbox(): void {
    const handler = this.handler;
    if (!handler) return;
    while (this.inbox.length > 0 && !this.paused) {
      const chunk = this.inbox.shift() as Uint8Array;
      this.inboxBytes -= chunk.length;
      handler.data(chunk);
    }
    if (this.closeInfo && this.inbox.length === 0 && !this.reported) {
      this.reported = true;
      handler.close(this.closeInfo);
    }
  }
}
