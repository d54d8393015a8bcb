import { afterEach, expect, test } from "bun:test";
import type { Socket } from "bun";
import { ConnectionError } from "../../src/errors.ts";
import type { StreamClosed } from "../../src/transport/byte-stream.ts";
import { MAX_PENDING_BYTES } from "../../src/transport/limits.ts";
import { dialTcp, listenTcp, type TcpListener, type TcpStream } from "../../src/transport/tcp.ts";
import { waitFor } from "../helpers/wait-for.ts";

let listener: TcpListener | undefined;
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
  listener?.close();
  listener = undefined;
});

/** A listener whose accepted streams are collected (not started). */
function listen(): { accepted: TcpStream[]; port: number } {
  const accepted: TcpStream[] = [];
  listener = listenTcp({ host: "127.0.0.1", port: 0, onStream: (s) => accepted.push(s) });
  return { accepted, port: listener.port };
}

/** A raw client that starts paused (not reading), counting what it receives. */
async function pausedClient(port: number) {
  const received: Uint8Array[] = [];
  let bytes = 0;
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      open(s) {
        s.pause();
      },
      data(_s, chunk: Uint8Array) {
        received.push(chunk.slice());
        bytes += chunk.length;
      },
    },
  });
  cleanup.push(() => socket.terminate());
  return { socket, received, bytes: () => bytes };
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

test("what the kernel does not take is kept and flushed on drain, in order", async () => {
  const { accepted, port } = listen();
  const client = await pausedClient(port);
  await waitFor(() => accepted.length === 1);
  const stream = accepted[0] as TcpStream;
  stream.start({ data() {}, close() {} });
  // 6 MB in 64 KiB writes: more than loopback buffers hold while the reader is paused.
  const chunks = Array.from({ length: 96 }, (_, i) => pattern(64 * 1024, i));
  for (const chunk of chunks) expect(stream.write(chunk)).toBe("queued");
  await waitFor(
    () => stream.pendingBytes > 0 && stream.pendingBytes < 6 * 1024 * 1024,
    5000,
    "kernel buffers full",
  );
  const stuck = stream.pendingBytes;
  await Bun.sleep(50);
  expect(stream.pendingBytes).toBe(stuck); // nothing moves while the reader sleeps
  client.socket.resume();
  await waitFor(
    () => client.bytes() === 96 * 64 * 1024,
    10_000,
    () => `all bytes (got ${client.bytes()})`,
  );
  expect(stream.pendingBytes).toBe(0);
  const all = new Uint8Array(client.bytes());
  let o = 0;
  for (const c of client.received) {
    all.set(c, o);
    o += c.length;
  }
  for (const [i, chunk] of chunks.entries()) {
    const got = Buffer.from(all.buffer, i * chunk.length, chunk.length);
    expect(got.equals(chunk), `chunk ${i}`).toBe(true);
  }
});

test("past the cap a write is refused, and the final frame still fits under it", async () => {
  const { accepted, port } = listen();
  await pausedClient(port);
  await waitFor(() => accepted.length === 1);
  const stream = accepted[0] as TcpStream;
  let closed: StreamClosed | undefined;
  stream.start({
    data() {},
    close(info) {
      closed = info;
    },
  });
  const chunk = new Uint8Array(256 * 1024);
  let status = stream.write(chunk);
  while (status === "queued") status = stream.write(chunk);
  expect(status).toBe("overflow");
  expect(stream.pendingBytes).toBeLessThanOrEqual(MAX_PENDING_BYTES);
  stream.end(new Uint8Array(300)); // an ERROR or BYE frame is at most a few hundred bytes
  expect(stream.pendingBytes).toBeLessThanOrEqual(MAX_PENDING_BYTES);
  expect(stream.write(new Uint8Array(1))).toBe("closed");
  // The reader never drains it: the flush deadline closes the stream anyway.
  await waitFor(() => closed !== undefined, 3000, "closed at the flush deadline");
  expect(closed?.by).toBe("local");
});

test("bytes that arrive before start() are delivered first, in order", async () => {
  const { accepted, port } = listen();
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
  cleanup.push(() => socket.terminate());
  socket.write(Uint8Array.of(1, 2, 3));
  socket.flush();
  await waitFor(() => accepted.length === 1);
  await Bun.sleep(50); // let the bytes land before anyone listens for them
  const got: number[] = [];
  (accepted[0] as TcpStream).start({
    data: (chunk) => got.push(...chunk),
    close() {},
  });
  socket.write(Uint8Array.of(4, 5));
  await waitFor(() => got.length === 5);
  expect(got).toEqual([1, 2, 3, 4, 5]);
});

test("dialling a closed port resolves with REFUSED, never a rejection", async () => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const result = await dialTcp({ host: "127.0.0.1", port });
  expect(result.ok).toBe(false);
  if (!result.ok) {
    expect(result.error).toBeInstanceOf(ConnectionError);
    expect(result.error.code).toBe("REFUSED");
  }
});

test("listening on a port in use fails with ADDRESS_IN_USE naming the address", () => {
  const { port } = listen();
  try {
    listenTcp({ host: "127.0.0.1", port, onStream() {} });
    throw new Error("listened twice");
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).code).toBe("ADDRESS_IN_USE");
    expect((error as ConnectionError).message).toContain(`127.0.0.1:${port}`);
  }
});

test("a draining end sends FIN but still delivers what the remote sends until it closes too", async () => {
  const { accepted, port } = listen();
  const dialled = await dialTcp({ host: "127.0.0.1", port });
  if (!dialled.ok) throw dialled.error;
  await waitFor(() => accepted.length === 1);
  const [local, remote] = [accepted[0] as TcpStream, dialled.stream];
  const got: number[] = [];
  const gotRemote: number[] = [];
  let localClosed: StreamClosed | undefined;
  let remoteClosed: StreamClosed | undefined;
  local.start({
    data: (chunk) => got.push(...chunk),
    close: (info) => {
      localClosed = info;
    },
  });
  remote.start({
    data: (chunk) => gotRemote.push(...chunk),
    close: (info) => {
      remoteClosed = info;
    },
  });
  local.end(Uint8Array.of(9), { drain: true });
  expect(local.write(Uint8Array.of(0))).toBe("closed");
  // Sent before the remote has read the FIN: a duplicate link's other end, still undecided.
  expect(remote.write(Uint8Array.of(1, 2, 3))).toBe("queued");
  await waitFor(() => localClosed !== undefined && remoteClosed !== undefined, 3000, "both closed");
  expect(got).toEqual([1, 2, 3]);
  expect(gotRemote).toEqual([9]);
  expect(localClosed?.by).toBe("local");
  expect(remoteClosed?.by).toBe("remote");
});
