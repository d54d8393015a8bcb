import type { Socket } from "bun";
import type { Endpoint } from "../../src/protocol/endpoint.ts";

/**
 * A bare TCP connection for attacking the handshake: bytes go out exactly as written
 * (the rest kept and flushed on `drain` when the kernel takes less), and whatever comes
 * back is kept. `until` waits for a condition without polling.
 */
export class PlainConnection {
  closed = false;
  /** Everything received, in one buffer. */
  received: Uint8Array = new Uint8Array(0);
  private pending: Uint8Array[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: Socket<undefined>) {}

  /** Connects; throws if the peer does not accept. */
  static async open(to: Endpoint): Promise<PlainConnection> {
    // Socket events run on later turns of the event loop: `conn` is set by then.
    let conn: PlainConnection | undefined;
    const socket = await Bun.connect({
      hostname: to.host,
      port: to.port,
      socket: {
        binaryType: "uint8array",
        data: (_s, chunk: Uint8Array) => conn?.onData(chunk),
        drain: () => conn?.flush(),
        close: () => conn?.onClose(),
        error: () => conn?.onClose(),
        connectError() {},
      },
    });
    conn = new PlainConnection(socket);
    return conn;
  }

  /** Our port: how the peer's logs name this connection. */
  get localPort(): number {
    return this.socket.localPort;
  }

  write(bytes: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(bytes);
    this.flush();
  }

  /** Resolves true once `condition()` holds, false after `timeoutMs`. */
  until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(false);
      }, timeoutMs);
      const check = () => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(true);
      };
      this.waiters.push(check);
    });
  }

  /**
   * The next `u16 length | message` received at or after byte `from`, once whole; or
   * undefined if the connection closes first or `timeoutMs` passes.
   */
  async noiseMessage(from: number, timeoutMs: number): Promise<Uint8Array | undefined> {
    const whole = () => {
      const r = this.received;
      if (r.length < from + 2) return false;
      return r.length >= from + 2 + (((r[from] as number) << 8) | (r[from + 1] as number));
    };
    await this.until(() => whole() || this.closed, timeoutMs);
    if (!whole()) return undefined;
    const length = ((this.received[from] as number) << 8) | (this.received[from + 1] as number);
    return this.received.slice(from + 2, from + 2 + length);
  }

  terminate(): void {
    if (!this.closed) this.socket.terminate();
  }

  /** Hands the kernel what it will take of the queue (also on `drain`). */
  flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0] as Uint8Array;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
  }

  /** Socket callback. */
  onData(chunk: Uint8Array): void {
    const next = new Uint8Array(this.received.length + chunk.length);
    next.set(this.received);
    next.set(chunk, this.received.length);
    this.received = next;
    this.notify();
  }

  /** Socket callback. */
  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }
}
