import type { Socket } from "bun";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import type { Endpoint } from "../../src/transport/byte-stream.ts";

/** A bare TCP client for feeding a peer hand-made (often hostile) bytes. */
export interface RawClient {
  readonly socket: Socket<undefined>;
  /** Frames received, decoded leniently (decoding stops at the first bad header). */
  readonly frames: Frame[];
  /** Our local port: how the peer's logs name us. */
  readonly localPort: number;
  closed: boolean;
  readonly closedAt: Promise<number>;
  write(bytes: Uint8Array): void;
  close(): void;
}

export async function rawConnect(
  to: Endpoint,
  options: { paused?: boolean } = {},
): Promise<RawClient> {
  const decoder = new FrameDecoder();
  const frames: Array<{ type: number; payload: Uint8Array }> = [];
  let markClosed: (at: number) => void = () => {};
  const closedAt = new Promise<number>((resolve) => {
    markClosed = resolve;
  });
  const client = { frames, closed: false, closedAt } as RawClient & { closed: boolean };
  const socket = await Bun.connect({
    hostname: to.host,
    port: to.port,
    socket: {
      binaryType: "uint8array",
      open(s) {
        if (options.paused) s.pause();
      },
      data(_s, chunk: Uint8Array) {
        if (decoder.error) return;
        for (const f of decoder.push(chunk))
          frames.push({ type: f.type, payload: f.payload.slice() });
      },
      close() {
        client.closed = true;
        markClosed(performance.now());
      },
      connectError() {},
    },
  });
  return Object.assign(client, {
    socket,
    localPort: socket.localPort,
    write(bytes: Uint8Array) {
      let offset = 0;
      // Tests write small amounts; loop in case the kernel takes less.
      while (offset < bytes.length) {
        const n = socket.write(bytes.subarray(offset));
        if (n <= 0) break;
        offset += n;
      }
    },
    close() {
      socket.end();
    },
  });
}
