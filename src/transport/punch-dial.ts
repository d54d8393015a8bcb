/**
 * The hole-punch transport: a TCP simultaneous open. Both peers, told of each other
 * through a third, dial each other at the same time, each from the local port the other
 * dials. Each side's outgoing SYN opens its own NAT's mapping and firewall state, so the
 * other's SYN, arriving in reply direction, is let in; a socket still waiting for its
 * SYN-ACK that receives a SYN answers it, and one connection comes up, seen by both
 * sides as the one they dialled.
 *
 * `Bun.connect` cannot bind a local port; node:net's `connect({ localPort })` can (Bun
 * sets SO_REUSEADDR on that socket). node:net is loaded on the first punch only: it
 * costs a peer some megabytes of memory that one that never punches need not carry.
 */

import type { Socket } from "node:net";
import { ConnectionError, type ConnectionErrorCode } from "../errors.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { isIP, unmapIPv4 } from "../protocol/ip.ts";
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
  FINAL_FRAME_RESERVE_BYTES,
  MAX_PENDING_BYTES,
} from "./limits.ts";
import { type DialErrorTable, dialError, errorCode } from "./tcp.ts";
import { WriteBuffer } from "./write-buffer.ts";

/**
 * How long a punch waits for the connection by default. The kernel resends an
 * unanswered SYN after 1 s and 3 s: long enough for both to go out once more should
 * the first of either side be lost.
 */
export const PUNCH_TIMEOUT_MS = 5000;

/** What {@link punchDial} needs. */
export interface PunchOptions {
  /** Where the other side's NAT maps its `localPort` (predicted or observed). */
  readonly remote: Endpoint;
  /** The port to dial from: the one the other side dials. */
  readonly localPort: number;
  /** The address to bind; all of this machine's by default. */
  readonly localHost?: string;
  readonly timeoutMs?: number;
}

/** Outcome of {@link punchDial}: never a rejected promise. */
export type PunchResult =
  | { readonly ok: true; readonly stream: ByteStream }
  | { readonly ok: false; readonly error: ConnectionError };

/**
 * A free local TCP port (on `host`, all addresses by default) to punch from: the
 * kernel picks one for a listener, which is closed again at once. Another program may
 * take it meanwhile; the punch then fails with `ADDRESS_IN_USE`.
 */
export function reservePort(host = "0.0.0.0"): number {
  const probe = Bun.listen({ hostname: host, port: 0, exclusive: true, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

let net: typeof import("node:net") | undefined;

/**
 * Dials `remote` from `localPort`, for a simultaneous open with a peer doing the same the
 * other way. Resolves with the stream (direction `outbound` on both sides), or with why
 * not: `TIMEOUT` (nothing came back: the other side's NAT dropped our SYNs, the usual
 * failure behind a symmetric NAT), `REFUSED` (a reset: the other side was not dialling
 * yet, or is not behind a firewall that drops), `ADDRESS_IN_USE` (the local port is
 * taken), `BAD_ADDRESS`, `UNREACHABLE`.
 */
export async function punchDial(options: PunchOptions): Promise<PunchResult> {
  const { remote, localPort } = options;
  const timeoutMs = options.timeoutMs ?? PUNCH_TIMEOUT_MS;
  if (!isIP(remote.host) || !validPort(remote.port)) {
    return failed("BAD_ADDRESS", `cannot punch to ${remote.host}:${remote.port}`);
  }
  if (!validPort(localPort) || (options.localHost !== undefined && !isIP(options.localHost))) {
    return failed("BAD_ADDRESS", `cannot bind ${options.localHost ?? "*"}:${localPort}`);
  }
  net ??= await import("node:net");
  const connect = net.connect;
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket;
    const settle = (result: PunchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      socket?.destroy();
      settle(timedOut(timeoutMs));
    }, timeoutMs);
    try {
      socket = connect({
        host: remote.host,
        port: remote.port,
        localPort,
        ...(options.localHost !== undefined ? { localAddress: options.localHost } : {}),
        noDelay: true,
      });
    } catch (cause) {
      settle({ ok: false, error: dialError(cause, PUNCH_ERRORS) });
      return;
    }
    const onError = (cause: Error) => {
      socket.destroy();
      settle({ ok: false, error: dialError(cause, PUNCH_ERRORS) });
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      if (settled) {
        socket.destroy();
        return;
      }
      settle({ ok: true, stream: new PunchStream(socket, remote) });
    });
  });
}

/**
 * A {@link ByteStream} over a node:net socket, with the semantics of TcpStream (tcp.ts):
 * writes batched per tick into a {@link WriteBuffer} capped at {@link MAX_PENDING_BYTES}
 * (keeping room for a final frame), `clear` once a congested queue drains, `end` that
 * flushes within {@link CLOSE_FLUSH_TIMEOUT_MS} (with `drain`, reading on until the
 * remote's FIN), chunks that arrive before `start` kept for it, and one close report.
 *
 * node:net keeps what it is given until the kernel takes it; bytes count as pending
 * until then, so the cap covers both queues. It keeps a reference, not a copy, so each
 * block goes to it copied out of the reusable write buffer.
 */
class PunchStream implements ByteStream {
  readonly direction = "outbound";
  readonly remote: Endpoint;
  readonly local: Endpoint;
  private handler: ByteStreamHandler | undefined;
  private early: Uint8Array[] = [];
  private readonly out = new WriteBuffer();
  /** Bytes handed to node:net that the kernel has not taken yet. */
  private inSocket = 0;
  private flushScheduled = false;
  private blocked = false;
  private congested = false;
  private paused = false;
  private sent = 0;
  private ending = false;
  private draining = false;
  /** Ended without draining: what still arrives is read and dropped until the FIN. */
  private discarding = false;
  private closingLocally = false;
  private isClosed = false;
  private closeInfo: StreamClosed | undefined;
  private socketError: string | undefined;
  private deadline: Timer | undefined;

  constructor(
    private readonly socket: Socket,
    dialled: Endpoint,
  ) {
    this.remote = {
      host: unmapped(socket.remoteAddress) ?? dialled.host,
      port: socket.remotePort ?? dialled.port,
    };
    this.local = { host: unmapped(socket.localAddress) ?? "unknown", port: socket.localPort ?? 0 };
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("end", () => this.onEnd());
    socket.on("error", (error: Error) => {
      this.socketError = errorCode(error) ?? error.message;
    });
    socket.on("close", () => this.onClose());
  }

  get pendingBytes(): number {
    return this.out.length + this.inSocket;
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
    if (this.pendingBytes + (end - start) > MAX_PENDING_BYTES - FINAL_FRAME_RESERVE_BYTES) {
      return "overflow";
    }
    this.out.append(bytes, start, end);
    if (this.pendingBytes > CONGESTED_ABOVE_BYTES) this.congested = true;
    this.scheduleFlush();
    return "queued";
  }

  end(final?: Uint8Array, options?: EndOptions): void {
    if (this.isClosed || this.ending) return;
    this.ending = true;
    this.draining = options?.drain === true;
    this.closingLocally = true;
    if (final) this.out.append(final);
    this.deadline = setTimeout(() => this.socket.destroy(), CLOSE_FLUSH_TIMEOUT_MS);
    this.flush();
  }

  destroy(): void {
    if (this.isClosed) return;
    this.closingLocally = true;
    this.out.clear();
    this.socket.destroy();
    this.report({ by: "local" });
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

  private scheduleFlush(): void {
    if (this.flushScheduled || this.blocked) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushTask);
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Hands queued blocks to node:net until it asks us to wait for `drain`. */
  private flush(): void {
    if (this.isClosed) return;
    const out = this.out;
    while (out.length > 0 && !this.blocked) {
      const n = out.segment;
      const block = out.store.slice(out.offset, out.offset + n);
      out.consume(n);
      this.inSocket += n;
      const more = this.socket.write(block, (error) => this.onWritten(n, error));
      if (!more) this.blocked = true;
    }
    if (out.length === 0 && this.ending && !this.blocked) this.closeWrites();
  }

  private onWritten(n: number, error: Error | null | undefined): void {
    if (error) return;
    this.inSocket -= n;
    this.sent += n;
    this.checkClear();
  }

  /**
   * Sends our FIN after the last byte. Draining (or never having written), reading goes
   * on until the remote's FIN. Otherwise the stream is done now, as TcpStream's is; the
   * socket is kept, reading and dropping, until the remote's FIN or the deadline:
   * closing it with bytes unread would reset the connection and could lose the last
   * of ours still in flight.
   */
  private closeWrites(): void {
    if (this.socket.writableEnded) return;
    if (this.sent + this.inSocket > 0 && !this.draining) {
      this.socket.end(() => {
        this.discarding = true;
        this.report({ by: "local" });
      });
    } else {
      this.socket.end();
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private checkClear(): void {
    if (this.congested && this.pendingBytes < CLEAR_BELOW_BYTES) {
      this.congested = false;
      this.handler?.clear?.();
    }
  }

  private onData(chunk: Uint8Array): void {
    if (this.discarding || this.isClosed) return;
    // A copy, as a plain Uint8Array: a Buffer may be a view of a shared pool.
    const bytes = new Uint8Array(chunk);
    if (this.handler) this.handler.data(bytes);
    else this.early.push(bytes);
  }

  private onDrain(): void {
    this.blocked = false;
    this.checkClear();
    this.flush();
  }

  /** The remote's FIN: the end of a drain, or the remote closing first. */
  private onEnd(): void {
    this.out.clear();
    if (!this.socket.writableEnded) this.socket.end();
    this.deadline ??= setTimeout(() => this.socket.destroy(), CLOSE_FLUSH_TIMEOUT_MS);
    this.report({ by: this.closingLocally ? "local" : "remote" });
  }

  private onClose(): void {
    clearTimeout(this.deadline);
    this.out.clear();
    const by = this.closingLocally ? "local" : "remote";
    this.report(this.socketError ? { by, error: this.socketError } : { by });
  }

  private report(info: StreamClosed): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeInfo = info;
    this.handler?.close(info);
  }
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port > 0 && port <= 0xffff;
}

/** node:net may report IPv4 peers as IPv4-mapped IPv6 addresses. */
function unmapped(host: string | undefined): string | undefined {
  return host === undefined ? undefined : unmapIPv4(host);
}

function failed(code: ConnectionErrorCode, message: string): PunchResult {
  return { ok: false, error: new ConnectionError(code, message) };
}

function timedOut(timeoutMs: number): PunchResult {
  return failed(
    "TIMEOUT",
    `no answer within ${timeoutMs / 1000} s: the other side's NAT or firewall dropped our SYNs`,
  );
}

const PUNCH_ERRORS: DialErrorTable = {
  ECONNREFUSED: ["REFUSED", "connection refused: the other side was not dialling yet"],
  ECONNRESET: ["REFUSED", "connection reset as it opened"],
  EADDRINUSE: ["ADDRESS_IN_USE", "the local port is in use"],
  // Binding an address that is not ours, or a connection from this port to that remote
  // is open already.
  EADDRNOTAVAIL: ["ADDRESS_UNAVAILABLE", "local address unavailable"],
  EACCES: ["ADDRESS_UNAVAILABLE", "no permission to bind the local port"],
  ENETUNREACH: ["UNREACHABLE", "network unreachable"],
  EHOSTUNREACH: ["UNREACHABLE", "host unreachable"],
  ETIMEDOUT: ["TIMEOUT", "timed out"],
};
