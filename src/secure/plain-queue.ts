import { concatBytes } from "../protocol/bytes.ts";
import { FRAME_HEADER_BYTES } from "../protocol/constants.ts";
import { takeHelloFrame } from "./handshake-payload.ts";

/**
 * The frames the node has written and the secure channel has not yet encrypted. During
 * the handshake the first of them, the node's HELLO, is taken off the front: it becomes
 * the handshake payload.
 */
export class PlainQueue {
  private chunks: Uint8Array[] = [];
  private queued = 0;

  /** Bytes queued. */
  get bytes(): number {
    return this.queued;
  }

  /** Queues a copy of `bytes[start, end)`. */
  push(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.chunks.push(bytes.slice(start, end));
    this.queued += end - start;
  }

  /** The HELLO payload off the front, once its whole frame is queued. */
  takeHello(): Uint8Array | undefined {
    if (this.queued < FRAME_HEADER_BYTES) return undefined;
    const all = concatBytes(this.chunks);
    this.chunks = [all];
    const split = takeHelloFrame(all);
    if (!split) return undefined;
    this.chunks = split.rest.length > 0 ? [split.rest] : [];
    this.queued = split.rest.length;
    return split.hello;
  }

  /** Everything queued, in one buffer; the queue is left empty. */
  take(): Uint8Array {
    const all = concatBytes(this.chunks);
    this.chunks = [];
    this.queued = 0;
    return all;
  }
}
