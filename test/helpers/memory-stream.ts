import { type Connection, FrameConnection } from "../../src/link/connection.ts";
import { concatBytes } from "../../src/protocol/bytes.ts";
import type { Direction, Endpoint } from "../../src/protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  EndOptions,
  StreamClosed,
  WriteStatus,
} from "../../src/transport/byte-stream.ts";

/** Options for {@link createMemoryPair}. */
export interface MemoryPairOptions {
  /** Endpoint reported for the dialling side. */
  readonly outboundAddress?: Endpoint;
  /** Endpoint reported for the accepting side. */
  readonly inboundAddress?: Endpoint;
  /**
   * Re-cuts each batch before delivery, to exercise frame reassembly. Default: one
   * chunk per batch, like a socket that reads everything written in a tick.
   */
  readonly split?: (bytes: Uint8Array) => Uint8Array[];
  /** Delivers every batch this much later, in order: a slow link. */
  readonly delayMs?: number;
}

/**
 * Two connected in-memory streams: what the `outbound` side writes, the `inbound` side
 * reads, and back. Delivery is asynchronous (a later macrotask), batched per tick, in
 * order, as over a socket. Lets the node and relay be tested without the kernel.
 */
export function createMemoryPair(
  options: MemoryPairOptions = {},
): [outbound: ByteStream, inbound: ByteStream] {
  const a = options.outboundAddress ?? { host: "memory", port: 1 };
  const b = options.inboundAddress ?? { host: "memory", port: 2 };
  const out = new MemoryStream("outbound", b, a, options.split, options.delayMs ?? 0);
  const inb = new MemoryStream("inbound", a, b, options.split, options.delayMs ?? 0);
  out.peer = inb;
  inb.peer = out;
  return [out, inb];
}

/** {@link createMemoryPair} with frames over it: two linked connections, as a node sees them. */
export function createLinkPair(
  options: MemoryPairOptions = {},
): [outbound: Connection, inbound: Connection] {
  const [out, inb] = createMemoryPair(options);
  return [new FrameConnection(out), new FrameConnection(inb)];
}

class MemoryStream implements ByteStream {
  peer: MemoryStream | undefined;
  private handler: ByteStreamHandler | undefined;
  private inbox: Uint8Array[] = [];
  private outbox: Uint8Array[] = [];
  private flushScheduled = false;
  private isClosed = false;
  private closeInfo: StreamClosed | undefined;
  private ending = false;
  /** Ended with a half-close: still reading until the peer closes too. */
  private halfClosed = false;
  private paused = false;

  constructor(
    readonly direction: Direction,
    readonly remote: Endpoint,
    readonly local: Endpoint,
    private readonly split: ((bytes: Uint8Array) => Uint8Array[]) | undefined,
    private readonly delayMs: number,
  ) {}

  get pendingBytes(): number {
    let n = 0;
    for (const chunk of this.outbox) n += chunk.length;
    return n;
  }

  get closed(): boolean {
    return this.isClosed || this.ending;
  }

  bytesSent = 0;

  start(handler: ByteStreamHandler): void {
    this.handler = handler;
    this.deliverInbox();
  }

  write(bytes: Uint8Array, start = 0, end = bytes.length): WriteStatus {
    if (this.closed) return "closed";
    this.outbox.push(bytes.slice(start, end));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return "queued";
  }

  end(final?: Uint8Array, options?: EndOptions): void {
    if (this.closed) return;
    if (final) this.outbox.push(final.slice());
    this.ending = true;
    setImmediate(() => {
      this.flush();
      if (options?.drain) this.halfClose();
      else this.shutdown("local");
    });
  }

  /** FIN after the bytes already sent; the peer closes on it (as Bun's sockets do). */
  private halfClose(): void {
    this.halfClosed = true;
    const peer = this.peer;
    if (!peer) return;
    const fin = () => peer.shutdown("remote");
    if (this.delayMs > 0) setTimeout(fin, this.delayMs);
    else setImmediate(fin);
  }

  destroy(): void {
    if (this.isClosed) return;
    this.outbox = [];
    this.shutdown("local", true);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliverInbox();
  }

  private flush(): void {
    this.flushScheduled = false;
    const peer = this.peer;
    if (!peer || peer.isClosed || this.outbox.length === 0) return;
    const batch = concatBytes(this.outbox);
    this.outbox = [];
    this.bytesSent += batch.length;
    const deliver = () => {
      for (const chunk of this.split ? this.split(batch) : [batch]) peer.receive(chunk);
    };
    if (this.delayMs > 0) setTimeout(deliver, this.delayMs);
    else deliver();
  }

  private receive(chunk: Uint8Array): void {
    this.inbox.push(chunk);
    if (this.handler) this.deliverInbox();
  }

  private deliverInbox(): void {
    const handler = this.handler;
    if (!handler) return;
    while (this.inbox.length > 0 && !this.isClosed && !this.paused) {
      handler.data(this.inbox.shift() as Uint8Array);
    }
  }

  /** Closes this end, then the peer's; `reset`: as TCP reports a reset (RST), not a FIN. */
  private shutdown(by: "local" | "remote", reset = false): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeInfo =
      by === "remote" && reset
        ? { by, error: "ECONNRESET" }
        : { by: this.halfClosed ? "local" : by };
    this.handler?.close(this.closeInfo);
    const peer = this.peer;
    if (peer && !peer.isClosed) setImmediate(() => peer.shutdown("remote", reset));
  }
}
