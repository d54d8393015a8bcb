import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { ConnectionError, type ConnectionErrorCode } from "../errors.ts";
import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  EndOptions,
  StreamClosed,
  WriteStatus,
} from "./byte-stream.ts";
import {
  CLEAR_BELOW_BYTES,
  CLOSE_FLUSH_TIMEOUT_MS,
  CONGESTED_ABOVE_BYTES,
  DIAL_TIMEOUT_MS,
  FINAL_FRAME_RESERVE_BYTES,
  MAX_PENDING_BYTES,
} from "./limits.ts";
import { WriteBuffer } from "./write-buffer.ts";

/**
 * The only code in peerchat that touches `Bun.Socket`.
 *
 * Bun's `socket.write()` is unbuffered: it returns how many bytes the kernel took and
 * keeps none of the rest. Each {@link TcpStream} therefore owns a {@link WriteBuffer}:
 * writes made during one tick are appended and flushed together in a microtask (one
 * syscall for many frames, and a lone frame still leaves in the same tick), whatever
 * the kernel refuses stays queued until Bun's `drain` callback, and the queue is capped
 * at {@link MAX_PENDING_BYTES} so one slow reader cannot exhaust memory.
 */
export class TcpStream implements ByteStream {
  readonly remote: Endpoint;
  readonly local: Endpoint;
  private handler: ByteStreamHandler | undefined;
  private early: Uint8Array[] = [];
  private readonly out = new WriteBuffer();
  private flushScheduled = false;
  private blocked = false;
  /** The queue passed CONGESTED_ABOVE_BYTES; `clear` is due once it drains. */
  private congested = false;
  private paused = false;
  private sent = 0;
  private ending = false;
  /** Ending with a half-close: reading goes on until the remote closes too. */
  private draining = false;
  private closingLocally = false;
  private isClosed = false;
  private closeInfo: StreamClosed | undefined;
  private deadline: Timer | undefined;

  /**
   * @param dialled for outbound streams, the address dialled: Bun leaves the socket's
   *   own address fields empty once a connection has been reset.
   */
  constructor(
    private readonly socket: Socket<TcpStream>,
    readonly direction: Direction,
    dialled?: Endpoint,
  ) {
    this.remote = {
      host: socket.remoteAddress ?? dialled?.host ?? "unknown",
      port: socket.remotePort ?? dialled?.port ?? 0,
    };
    this.local = { host: socket.localAddress ?? "unknown", port: socket.localPort ?? 0 };
    socket.setNoDelay(true);
  }

  get pendingBytes(): number {
    return this.out.length;
  }

  get bytesSent(): number {
    return this.sent;
  }

  get closed(): boolean {
    return this.isClosed || this.ending;
  }

  start(handler: ByteStreamHandler): void {
    this.handler = handler;
    const early = this.early;
    this.early = [];
    for (const chunk of early) handler.data(chunk);
    if (this.isClosed && this.closeInfo) handler.close(this.closeInfo);
  }

  write(bytes: Uint8Array, start = 0, end = bytes.length): WriteStatus {
    if (this.isClosed || this.ending) return "closed";
    if (this.out.length + (end - start) > MAX_PENDING_BYTES - FINAL_FRAME_RESERVE_BYTES) {
      return "overflow";
    }
    this.out.append(bytes, start, end);
    if (this.out.length > CONGESTED_ABOVE_BYTES) this.congested = true;
    this.scheduleFlush();
    return "queued";
  }

  end(final?: Uint8Array, options?: EndOptions): void {
    if (this.isClosed || this.ending) return;
    this.ending = true;
    this.draining = options?.drain === true;
    this.closingLocally = true;
    if (final) this.out.append(final);
    this.deadline = setTimeout(() => this.socket.terminate(), CLOSE_FLUSH_TIMEOUT_MS);
    this.flush();
  }

  destroy(): void {
    if (this.isClosed) return;
    this.closingLocally = true;
    this.out.clear();
    this.socket.terminate();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.blocked) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /**
   * Hands queued bytes to the kernel, a block at a time, until it is all written or the
   * kernel pushes back (then `drain` resumes); ends the socket once drained if closing.
   */
  private flush(): void {
    if (this.isClosed) return;
    const out = this.out;
    while (out.length > 0) {
      const segment = out.segment;
      const written = this.socket.write(out.store, out.offset, segment);
      if (written < 0) return; // closed underneath us; the close callback follows
      out.consume(written);
      this.sent += written;
      if (written < segment) {
        this.blocked = true;
        this.checkClear();
        return;
      }
    }
    this.blocked = false;
    if (this.ending) this.closeWrites();
    else this.checkClear();
  }

  /**
   * Ends our side (FIN). Bun's `end()` also stops reading at once (its close callback
   * runs before it returns); `shutdown()` sends the FIN and reads on until the remote's
   * own FIN closes the socket (or the deadline of `end()` passes). That half-close is for
   * a link being drained, whose last frames must still be read, and for a connection we
   * never wrote to, being turned away: closing a socket with bytes unread resets it, and
   * a dialler takes a reset with no answer for another room (docs/PROTOCOL.md §2a).
   */
  private closeWrites(): void {
    if (this.sent > 0 && !this.draining) {
      this.socket.end();
      return;
    }
    this.socket.shutdown();
    if (this.sent > 0) return;
    this.paused = false;
    this.socket.resume(); // to see the remote's FIN, and drop what it sent
  }

  private checkClear(): void {
    if (this.congested && this.out.length < CLEAR_BELOW_BYTES) {
      this.congested = false;
      this.handler?.clear?.();
    }
  }

  pause(): void {
    if (this.paused || this.isClosed) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || this.isClosed) return;
    this.paused = false;
    this.socket.resume();
  }

  /** @internal Bun `data` callback. */
  onData(chunk: Uint8Array): void {
    if (this.handler) this.handler.data(chunk);
    else this.early.push(chunk);
  }

  /** @internal Bun `drain` callback: the kernel can take more. */
  onDrain(): void {
    this.blocked = false;
    this.flush();
  }

  /** @internal Bun `close` callback. */
  onClose(error: Error | undefined): void {
    if (this.isClosed) return;
    const by = this.closingLocally ? "local" : "remote";
    this.isClosed = true;
    clearTimeout(this.deadline);
    this.out.clear();
    const info: StreamClosed = error ? { by, error: errorCode(error) ?? error.message } : { by };
    this.closeInfo = info;
    this.handler?.close(info);
  }
}

/** A listening socket. */
export interface TcpListener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting; open streams are left to their owners. */
  close(): void;
}

/** Options for {@link listenTcp}. */
export interface ListenOptions {
  readonly host: string;
  /** 0 picks a free port; read it back from the listener. */
  readonly port: number;
  /** Called synchronously for each accepted connection; must call `stream.start()`. */
  readonly onStream: (stream: TcpStream) => void;
}

/**
 * Listens on `host:port`. Throws {@link ConnectionError} (`ADDRESS_IN_USE`,
 * `ADDRESS_UNAVAILABLE`, `BAD_ADDRESS`) when the address cannot be bound.
 */
export function listenTcp(options: ListenOptions): TcpListener {
  let listener: TCPSocketListener<TcpStream>;
  try {
    listener = Bun.listen<TcpStream>({
      hostname: options.host,
      port: options.port,
      exclusive: true,
      socket: {
        ...socketHandlers,
        open(socket) {
          const stream = new TcpStream(socket, "inbound");
          socket.data = stream;
          options.onStream(stream);
        },
      },
    });
  } catch (cause) {
    throw listenError(options.host, options.port, cause);
  }
  return {
    host: options.host,
    port: listener.port,
    close: () => listener.stop(false),
  };
}

/** Outcome of {@link dialTcp}: never a rejected promise. */
export type DialResult =
  | { readonly ok: true; readonly stream: TcpStream }
  | { readonly ok: false; readonly error: ConnectionError };

/**
 * Connects to `endpoint`. Resolves with the stream, or with the reason it failed
 * (refused, unreachable, bad address, no answer within `timeoutMs`).
 */
export function dialTcp(endpoint: Endpoint, timeoutMs = DIAL_TIMEOUT_MS): Promise<DialResult> {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      resolve({
        ok: false,
        error: new ConnectionError("TIMEOUT", `no answer within ${timeoutMs / 1000} s`),
      });
    }, timeoutMs);
    const fail = (cause: unknown) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({ ok: false, error: dialError(cause) });
    };
    let connecting: Promise<Socket<TcpStream>>;
    try {
      connecting = Bun.connect<TcpStream>({
        hostname: endpoint.host,
        port: endpoint.port,
        socket: {
          ...socketHandlers,
          // Bun calls this, then rejects the promise; the rejection is handled below.
          connectError() {},
          open(socket) {
            if (settled) {
              // The dial timed out but the connection came up late: discard it.
              socket.terminate();
              return;
            }
            socket.data = new TcpStream(socket, "outbound", endpoint);
          },
        },
      });
    } catch (cause) {
      fail(cause);
      return;
    }
    connecting.then((socket) => {
      if (!socket.data) {
        // `open` always runs first; should that ever change, fail rather than hang.
        socket.terminate();
        fail(new Error("socket opened without its stream"));
        return;
      }
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({ ok: true, stream: socket.data });
    }, fail);
  });
}

/** Handlers shared by every socket: Bun allocates them once, not per connection. */
const socketHandlers = {
  // Plain Uint8Array chunks: Buffer's non-copying slice() is a trap for code that keeps bytes.
  binaryType: "uint8array",
  data(socket, chunk: Uint8Array) {
    socket.data?.onData(chunk);
  },
  drain(socket) {
    socket.data?.onDrain();
  },
  close(socket, error) {
    socket.data?.onClose(error);
  },
  error(socket, error) {
    // Only reached if a handler above threw past the layers that catch their own
    // exceptions: contain it to this connection.
    socket.data?.onClose(error);
    socket.terminate();
  },
} satisfies SocketHandler<TcpStream>;

/** The `code` of a socket error (`ECONNREFUSED`, …), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function listenError(host: string, port: number, cause: unknown): ConnectionError {
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  switch (errorCode(cause)) {
    case "EADDRINUSE":
      return new ConnectionError("ADDRESS_IN_USE", `${where} is already in use`, { cause });
    case "EADDRNOTAVAIL":
      return new ConnectionError(
        "ADDRESS_UNAVAILABLE",
        `${where} is not an address of this machine`,
        { cause },
      );
    case "EACCES":
      return new ConnectionError("ADDRESS_UNAVAILABLE", `no permission to listen on ${where}`, {
        cause,
      });
    default:
      return new ConnectionError("BAD_ADDRESS", `cannot listen on ${where}`, { cause });
  }
}

/** How a dial's socket error codes read: each a {@link ConnectionError} code and a sentence. */
export type DialErrorTable = Readonly<Record<string, [ConnectionErrorCode, string]>>;

const DIAL_ERRORS: DialErrorTable = {
  ECONNREFUSED: ["REFUSED", "connection refused"],
  // Accepted and reset before it was up: a listener turning away a storm's extra connections.
  ECONNRESET: ["REFUSED", "connection reset as it opened: the peer may be busy"],
  ENETUNREACH: ["UNREACHABLE", "network unreachable"],
  EHOSTUNREACH: ["UNREACHABLE", "host unreachable"],
  ETIMEDOUT: ["TIMEOUT", "timed out"],
  ENOTFOUND: ["BAD_ADDRESS", "host not found"],
  EAI_NONAME: ["BAD_ADDRESS", "host not found"],
  EADDRNOTAVAIL: ["UNREACHABLE", "address not available"],
};

/** The {@link ConnectionError} a failed dial reports, its wording from `table`. */
export function dialError(cause: unknown, table: DialErrorTable = DIAL_ERRORS): ConnectionError {
  const code = errorCode(cause);
  const known = code ? table[code] : undefined;
  if (known) return new ConnectionError(known[0], known[1], { cause });
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ConnectionError("UNREACHABLE", code ? `${message} (${code})` : message, { cause });
}
