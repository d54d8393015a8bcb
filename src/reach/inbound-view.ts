import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  EndOptions,
  RelayedVia,
  WriteStatus,
} from "../transport/byte-stream.ts";

/**
 * A punched stream seen as accepted rather than dialled. A TCP simultaneous open leaves
 * both ends "outbound", yet one must answer the Noise handshake (the secure channel
 * takes its role from the direction): the punch's responder, as DCUtR assigns it.
 */
export function inboundView(stream: ByteStream): ByteStream {
  return new InboundView(stream);
}

class InboundView implements ByteStream {
  readonly direction: Direction = "inbound";

  constructor(private readonly inner: ByteStream) {}

  get via(): RelayedVia | undefined {
    return this.inner.via;
  }
  get remote(): Endpoint {
    return this.inner.remote;
  }
  get local(): Endpoint {
    return this.inner.local;
  }
  get pendingBytes(): number {
    return this.inner.pendingBytes;
  }
  get bytesSent(): number {
    return this.inner.bytesSent;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  start(handler: ByteStreamHandler): void {
    this.inner.start(handler);
  }
  write(bytes: Uint8Array, start?: number, end?: number): WriteStatus {
    return this.inner.write(bytes, start, end);
  }
  end(final?: Uint8Array, options?: EndOptions): void {
    this.inner.end(final, options);
  }
  destroy(): void {
    this.inner.destroy();
  }
  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }
}
