import type { Socket } from "bun";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM } from "../../src/secure/room.ts";
import { channelOptions, secureStream } from "../../src/secure/secure-stream.ts";
import type { ByteStream } from "../../src/transport/byte-stream.ts";
import { dialTcp } from "../../src/transport/tcp.ts";

/**
 * A hand-driven client for feeding a peer hand-made (often hostile) frames. By default
 * it speaks the secure channel: the first frame written must be a HELLO (it becomes the
 * handshake payload, signed by {@link RawClient.identity}); later frames are encrypted
 * as a real peer's would be, however malformed they are inside. With `plain`, bytes go
 * onto the TCP connection exactly as written, for attacks on the handshake itself.
 */
export interface RawClient {
  /** The identity whose public key a HELLO must carry as its node id. */
  readonly identity: Identity;
  readonly nodeId: Uint8Array;
  /** Frames received, decoded leniently (decoding stops at the first bad header). */
  readonly frames: RawFrame[];
  /** Bytes received on the wire, before any decryption. */
  readonly wireBytes: number;
  /** Our local port: how the peer's logs name us. */
  readonly localPort: number;
  closed: boolean;
  readonly closedAt: Promise<number>;
  write(bytes: Uint8Array): void;
  /** Closes gracefully. */
  close(): void;
  /** Drops the connection at once. */
  terminate(): void;
}

/** A frame received, copied out of the decoder's buffer. */
export interface RawFrame {
  readonly type: number;
  readonly payload: Uint8Array;
}

export interface RawOptions {
  /** Read nothing once the handshake is done (the kernel buffers fill: a slow consumer). */
  readonly paused?: boolean;
  /** No secure channel: raw bytes on the socket. */
  readonly plain?: boolean;
  readonly room?: string;
  readonly identity?: Identity;
}

export async function rawConnect(to: Endpoint, options: RawOptions = {}): Promise<RawClient> {
  return options.plain ? plainConnect(to, options) : secureConnect(to, options);
}

function closeTracker() {
  let markClosed: (at: number) => void = () => {};
  const closedAt = new Promise<number>((resolve) => {
    markClosed = resolve;
  });
  return { closedAt, markClosed };
}

async function secureConnect(to: Endpoint, options: RawOptions): Promise<RawClient> {
  const identity = options.identity ?? generateIdentity();
  const dialled = await dialTcp(to);
  if (!dialled.ok) throw dialled.error;
  const tcp: ByteStream = dialled.stream;
  let wireBytes = 0;
  // Count what arrives on the wire by wrapping the TCP stream's handler.
  const counted: ByteStream = {
    direction: tcp.direction,
    remote: tcp.remote,
    local: tcp.local,
    get pendingBytes() {
      return tcp.pendingBytes;
    },
    get bytesSent() {
      return tcp.bytesSent;
    },
    get closed() {
      return tcp.closed;
    },
    start: (handler) =>
      tcp.start({
        ...handler,
        data: (chunk) => {
          wireBytes += chunk.length;
          handler.data(chunk);
        },
      }),
    write: (bytes, start, end) => tcp.write(bytes, start, end),
    end: (final) => tcp.end(final),
    destroy: () => tcp.destroy(),
    pause: () => tcp.pause(),
    resume: () => tcp.resume(),
  };
  const stream = secureStream(counted, channelOptions(identity, options.room ?? DEFAULT_ROOM));
  const decoder = new FrameDecoder();
  const frames: RawFrame[] = [];
  const { closedAt, markClosed } = closeTracker();
  const client: RawClient = {
    identity,
    nodeId: identity.publicKey,
    frames,
    get wireBytes() {
      return wireBytes;
    },
    localPort: tcp.local.port,
    closed: false,
    closedAt,
    write: (bytes) => {
      stream.write(bytes);
    },
    close: () => stream.end(),
    terminate: () => stream.destroy(),
  };
  stream.start({
    data(chunk) {
      if (decoder.error) return;
      for (const f of decoder.push(chunk)) {
        frames.push({ type: f.type, payload: f.payload.slice() });
        // The first frame is the peer's HELLO: the handshake is through.
        if (options.paused && frames.length === 1) tcp.pause();
      }
    },
    close() {
      client.closed = true;
      markClosed(performance.now());
    },
  });
  return client;
}

async function plainConnect(to: Endpoint, options: RawOptions): Promise<RawClient> {
  const decoder = new FrameDecoder();
  const frames: RawFrame[] = [];
  const { closedAt, markClosed } = closeTracker();
  let wireBytes = 0;
  const socket: Socket<undefined> = await Bun.connect({
    hostname: to.host,
    port: to.port,
    socket: {
      binaryType: "uint8array",
      open(s) {
        if (options.paused) s.pause();
      },
      data(_s, chunk: Uint8Array) {
        wireBytes += chunk.length;
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
  const identity = options.identity ?? generateIdentity();
  const client: RawClient = {
    identity,
    nodeId: identity.publicKey,
    frames,
    get wireBytes() {
      return wireBytes;
    },
    localPort: socket.localPort,
    closed: false,
    closedAt,
    write(bytes) {
      let offset = 0;
      // Tests write small amounts; loop in case the kernel takes less.
      while (offset < bytes.length) {
        const n = socket.write(bytes.subarray(offset));
        if (n <= 0) break;
        offset += n;
      }
    },
    close: () => socket.end(),
    terminate: () => socket.terminate(),
  };
  return client;
}
