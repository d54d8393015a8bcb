import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { ConnectionError } from "../../src/errors.ts";
import { concatBytes } from "../../src/protocol/bytes.ts";
import type { ByteStream, StreamClosed } from "../../src/transport/byte-stream.ts";
import {
  CLOSE_FLUSH_TIMEOUT_MS,
  CONGESTED_ABOVE_BYTES,
  MAX_PENDING_BYTES,
} from "../../src/transport/limits.ts";
import { punchDial, reservePort } from "../../src/transport/punch-dial.ts";
import { listenTcp, type TcpListener, type TcpStream } from "../../src/transport/tcp.ts";
import type { CliProcess } from "../helpers/cli.ts";
import { NetLab } from "../helpers/net-lab.ts";
import { waitFor } from "../helpers/wait-for.ts";

// TCP simultaneous open between namespaces (test/helpers/net-lab.ts), each side a
// net-probe.ts `punch` process. Never skipped: without root, `ip` and `iptables`
// NetLab.create() throws and these fail.

const PROBE = join(import.meta.dir, "..", "helpers", "net-probe.ts");
const SEND_BYTES = 300_000;

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

async function said<T>(proc: CliProcess, key: string, timeoutMs = 15_000): Promise<T> {
  const line = await proc.waitForLine(`{"${key}":`, timeoutMs);
  return (JSON.parse(line) as Record<string, T>)[key] as T;
}

interface Side {
  readonly host: string;
  /** The address the other side dials: this host's own, or its router's public one. */
  readonly reachableAt: string;
  /** Predicts the port the other side dials from this side's local port. */
  readonly port?: (localPort: number) => number;
}

interface Punched {
  readonly ok: boolean;
  readonly code?: string;
  readonly elapsedMs: number;
  readonly local?: { host: string; port: number };
  readonly remote?: { host: string; port: number };
  readonly direction?: string;
}

/** Both sides reserve a port, then are told each other's at the same moment and punch. */
async function punchPair(net: NetLab, a: Side, b: Side, timeoutMs: number) {
  const pa = net.spawn(a.host, [process.execPath, PROBE, "punch"]);
  const pb = net.spawn(b.host, [process.execPath, PROBE, "punch"]);
  const [ra, rb] = await Promise.all([
    said<{ localPort: number }>(pa, "ready"),
    said<{ localPort: number }>(pb, "ready"),
  ]);
  const order = (self: number, other: Side, otherPort: number, otherSeed: number) =>
    JSON.stringify({
      remoteHost: other.reachableAt,
      remotePort: other.port ? other.port(otherPort) : otherPort,
      timeoutMs,
      sendBytes: SEND_BYTES,
      seed: self,
      expectBytes: SEND_BYTES,
      expectSeed: otherSeed,
    });
  pa.send(order(1, b, rb.localPort, 2));
  pb.send(order(2, a, ra.localPort, 1));
  const [punchedA, punchedB] = await Promise.all([
    said<Punched>(pa, "punched", timeoutMs + 5000),
    said<Punched>(pb, "punched", timeoutMs + 5000),
  ]);
  return { pa, pb, ports: [ra.localPort, rb.localPort], punched: [punchedA, punchedB] as const };
}

async function exchanged(proc: CliProcess) {
  return {
    received: await said<{ bytes: number; matches: boolean }>(proc, "received"),
    closed: await said<{ by: string; error?: string }>(proc, "closed"),
  };
}

test("punch - two firewalled hosts on one LAN open one connection by dialling each other", async () => {
  lab = await NetLab.create();
  await lab.lan("lan", ["A", "B"], "10.1.0.0/24");
  // Without firewalls the first SYN to arrive finds no socket and is answered with a
  // reset, which fails the other side at once: see the report in punch-dial.ts.
  await lab.firewall("A");
  await lab.firewall("B");
  const { pa, pb, ports, punched } = await punchPair(
    lab,
    { host: "A", reachableAt: "10.1.0.1" },
    { host: "B", reachableAt: "10.1.0.2" },
    5000,
  );
  expect(punched[0]).toMatchObject({
    ok: true,
    direction: "outbound",
    local: { host: "10.1.0.1", port: ports[0] },
    remote: { host: "10.1.0.2", port: ports[1] },
  });
  expect(punched[1]).toMatchObject({
    ok: true,
    local: { host: "10.1.0.2", port: ports[1] },
    remote: { host: "10.1.0.1", port: ports[0] },
  });
  for (const side of [await exchanged(pa), await exchanged(pb)]) {
    expect(side.received).toEqual({ bytes: SEND_BYTES, matches: true });
    expect(side.closed.error).toBeUndefined();
  }
}, 30_000);

test("punch - through port-preserving NATs, each dialling the other's router at its own port", async () => {
  lab = await NetLab.create();
  const topology = await lab.natTopology({ kind: "port-preserving" });
  const [siteA, siteB] = topology.sites;
  const { pa, pb, ports, punched } = await punchPair(
    lab,
    { host: "A", reachableAt: siteA?.publicAddress as string },
    { host: "B", reachableAt: siteB?.publicAddress as string },
    5000,
  );
  // Each sees the other at its router's address, at the port it dialled from.
  expect(punched[0]).toMatchObject({
    ok: true,
    local: { host: "192.168.1.2", port: ports[0] },
    remote: { host: "10.77.0.3", port: ports[1] },
  });
  expect(punched[1]).toMatchObject({
    ok: true,
    local: { host: "192.168.2.2", port: ports[1] },
    remote: { host: "10.77.0.2", port: ports[0] },
  });
  for (const side of [await exchanged(pa), await exchanged(pb)]) {
    expect(side.received).toEqual({ bytes: SEND_BYTES, matches: true });
  }
}, 30_000);

test("punch - through symmetric NATs the same attempt times out on both sides", async () => {
  lab = await NetLab.create();
  const topology = await lab.natTopology({ kind: "symmetric" });
  const [siteA, siteB] = topology.sites;
  const timeoutMs = 2000;
  const { punched } = await punchPair(
    lab,
    { host: "A", reachableAt: siteA?.publicAddress as string },
    { host: "B", reachableAt: siteB?.publicAddress as string },
    timeoutMs,
  );
  for (const side of punched) {
    expect(side).toMatchObject({ ok: false, code: "TIMEOUT" });
    expect(side.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(side.elapsedMs).toBeLessThan(timeoutMs + 1000);
  }
}, 30_000);

// The stream's contract, on loopback: a punch dialled at an ordinary listener is the
// same stream as one that met another punch.

const listeners: TcpListener[] = [];
const dialled: ByteStream[] = [];
afterEach(() => {
  for (const l of listeners.splice(0)) l.close();
  for (const s of dialled.splice(0)) s.destroy();
});

/** A punch from a fresh local port to a listener, and the listener's end of it (not started). */
async function loopbackPair(): Promise<{
  local: ByteStream;
  remote: TcpStream;
  localPort: number;
}> {
  const accepted: TcpStream[] = [];
  const listener = listenTcp({ host: "127.0.0.1", port: 0, onStream: (s) => accepted.push(s) });
  listeners.push(listener);
  const localPort = reservePort("127.0.0.1");
  const result = await punchDial({
    remote: { host: "127.0.0.1", port: listener.port },
    localPort,
    localHost: "127.0.0.1",
    timeoutMs: 2000,
  });
  if (!result.ok) throw result.error;
  dialled.push(result.stream);
  const remote = await waitFor(() => accepted[0]);
  return { local: result.stream, remote, localPort };
}

/** Starts `stream`, collecting what it delivers and every close report. */
function collect(stream: ByteStream) {
  const state = {
    bytes: [] as Uint8Array[],
    closes: [] as StreamClosed[],
    clears: 0,
    total: () => state.bytes.reduce((n, c) => n + c.length, 0),
    all: () => concatBytes(state.bytes),
  };
  stream.start({
    data: (chunk) => state.bytes.push(chunk.slice()),
    close: (info) => state.closes.push(info),
    clear: () => state.clears++,
  });
  return state;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

test("punch stream - reports where it is, dialled from the port asked for", async () => {
  const { local, remote, localPort } = await loopbackPair();
  expect(local.direction).toBe("outbound");
  expect(local.local).toEqual({ host: "127.0.0.1", port: localPort });
  expect(local.remote).toEqual(remote.local);
  expect(remote.remote).toEqual({ host: "127.0.0.1", port: localPort });
});

test("punch stream - bytes arrive in order both ways, many writes per tick", async () => {
  const { local, remote } = await loopbackPair();
  const atRemote = collect(remote);
  const atLocal = collect(local);
  const chunks = Array.from({ length: 64 }, (_, i) => pattern(32 * 1024 + i, i));
  for (const chunk of chunks) expect(local.write(chunk)).toBe("queued");
  for (const chunk of chunks) expect(remote.write(chunk)).toBe("queued");
  const size = chunks.reduce((n, c) => n + c.length, 0);
  await waitFor(() => atRemote.total() === size && atLocal.total() === size, 10_000);
  expect(Buffer.from(atRemote.all()).equals(concatBytes(chunks))).toBe(true);
  expect(Buffer.from(atLocal.all()).equals(concatBytes(chunks))).toBe(true);
  expect(local.bytesSent).toBe(size);
  expect(local.pendingBytes).toBe(0);
});

test("punch stream - bytes that arrive before start() are delivered first", async () => {
  const { local, remote } = await loopbackPair();
  remote.start({ data() {}, close() {} });
  remote.write(Uint8Array.of(1, 2, 3));
  await Bun.sleep(50); // let them land before anyone listens
  const got = collect(local);
  remote.write(Uint8Array.of(4, 5));
  await waitFor(() => got.total() === 5);
  expect([...got.all()]).toEqual([1, 2, 3, 4, 5]);
});

test("punch stream - end flushes everything and the final bytes, then closes once", async () => {
  const { local, remote } = await loopbackPair();
  const atRemote = collect(remote);
  const atLocal = collect(local);
  const body = pattern(3 * 1024 * 1024, 7);
  expect(local.write(body)).toBe("queued");
  local.end(Uint8Array.of(0xee));
  expect(local.closed).toBe(true);
  expect(local.write(Uint8Array.of(1))).toBe("closed");
  await waitFor(() => atRemote.closes.length > 0, 5000, "remote closed");
  expect(atRemote.total()).toBe(body.length + 1);
  expect(atRemote.all()[body.length]).toBe(0xee);
  expect(atRemote.closes).toEqual([{ by: "remote" }]);
  await waitFor(() => atLocal.closes.length > 0);
  local.destroy();
  await Bun.sleep(20);
  expect(atLocal.closes).toEqual([{ by: "local" }]);
});

test("punch stream - the remote closing is reported once, by remote", async () => {
  const { local, remote } = await loopbackPair();
  const atLocal = collect(local);
  remote.start({ data() {}, close() {} });
  remote.end();
  await waitFor(() => atLocal.closes.length > 0);
  expect(local.closed).toBe(true);
  local.destroy();
  local.end();
  await Bun.sleep(50);
  expect(atLocal.closes).toEqual([{ by: "remote" }]);
});

test("punch stream - destroy closes at once, by local, and the remote sees it", async () => {
  const { local, remote } = await loopbackPair();
  const atLocal = collect(local);
  const atRemote = collect(remote);
  local.write(pattern(1000, 1));
  local.destroy();
  expect(atLocal.closes).toEqual([{ by: "local" }]);
  expect(local.pendingBytes).toBe(0);
  await waitFor(() => atRemote.closes.length > 0);
  expect(atRemote.closes[0]?.by).toBe("remote");
});

test("punch stream - a draining end reads on until the remote closes too", async () => {
  const { local, remote } = await loopbackPair();
  const atLocal = collect(local);
  const atRemote = collect(remote);
  local.end(Uint8Array.of(9), { drain: true });
  expect(local.write(Uint8Array.of(0))).toBe("closed");
  expect(remote.write(Uint8Array.of(1, 2, 3))).toBe("queued");
  await waitFor(() => atLocal.closes.length > 0 && atRemote.closes.length > 0, 3000);
  expect([...atLocal.all()]).toEqual([1, 2, 3]);
  expect([...atRemote.all()]).toEqual([9]);
  expect(atLocal.closes).toEqual([{ by: "local" }]);
  expect(atRemote.closes).toEqual([{ by: "remote" }]);
});

test("punch stream - past the cap a write is refused; the final frame still fits; the deadline closes", async () => {
  const { local, remote } = await loopbackPair();
  remote.start({ data() {}, close() {} });
  remote.pause(); // never reads
  const atLocal = collect(local);
  const chunk = new Uint8Array(256 * 1024);
  let status = local.write(chunk);
  while (status === "queued") status = local.write(chunk);
  expect(status).toBe("overflow");
  expect(local.pendingBytes).toBeLessThanOrEqual(MAX_PENDING_BYTES);
  local.end(new Uint8Array(300));
  expect(local.pendingBytes).toBeLessThanOrEqual(MAX_PENDING_BYTES);
  await waitFor(
    () => atLocal.closes.length > 0,
    CLOSE_FLUSH_TIMEOUT_MS + 2000,
    "closed at the deadline",
  );
  expect(atLocal.closes).toEqual([{ by: "local" }]);
});

test("punch stream - a congested queue reports clear once it drains", async () => {
  const { local, remote } = await loopbackPair();
  const atRemote = collect(remote);
  remote.pause();
  const atLocal = collect(local);
  // Write until the kernel's buffers are full and well over the mark is left queued.
  const chunk = pattern(64 * 1024, 3);
  let written = 0;
  while (local.pendingBytes <= 2 * CONGESTED_ABOVE_BYTES) {
    expect(local.write(chunk)).toBe("queued");
    written += chunk.length;
    if (written % (1024 * 1024) === 0) await Bun.sleep(20);
  }
  await Bun.sleep(50);
  expect(local.pendingBytes).toBeGreaterThan(CONGESTED_ABOVE_BYTES);
  const before = atLocal.clears;
  remote.resume();
  await waitFor(() => atLocal.clears === before + 1, 5000, "clear");
  await waitFor(() => atRemote.total() === written, 10_000);
  expect(local.pendingBytes).toBe(0);
  expect(atLocal.clears).toBe(before + 1);
});

test("punch stream - pause stops delivery until resume", async () => {
  const { local, remote } = await loopbackPair();
  remote.start({ data() {}, close() {} });
  const atLocal = collect(local);
  local.pause();
  remote.write(Uint8Array.of(1, 2, 3));
  await Bun.sleep(100);
  expect(atLocal.total()).toBe(0);
  local.resume();
  await waitFor(() => atLocal.total() === 3);
});

test("punch - a closed port is REFUSED, a name is BAD_ADDRESS, a taken local port ADDRESS_IN_USE", async () => {
  const closedPort = reservePort("127.0.0.1");
  const refused = await punchDial({
    remote: { host: "127.0.0.1", port: closedPort },
    localPort: reservePort("127.0.0.1"),
    timeoutMs: 2000,
  });
  expect(refused.ok || refused.error.code).toBe("REFUSED");
  const named = await punchDial({ remote: { host: "localhost", port: 80 }, localPort: 5000 });
  expect(named.ok || named.error.code).toBe("BAD_ADDRESS");
  const listener = listenTcp({ host: "127.0.0.1", port: 0, onStream: (s) => s.destroy() });
  listeners.push(listener);
  const taken = await punchDial({
    remote: { host: "127.0.0.1", port: listener.port },
    localPort: listener.port,
    localHost: "127.0.0.1",
    timeoutMs: 2000,
  });
  expect(taken.ok || taken.error.code).toBe("ADDRESS_IN_USE");
  if (!taken.ok) expect(taken.error).toBeInstanceOf(ConnectionError);
});

test("punch - while one connection from a port is open, another from it may go to a second remote, not the same", async () => {
  const { local, remote, localPort } = await loopbackPair();
  remote.start({ data() {}, close() {} });
  collect(local);
  const other = listenTcp({
    host: "127.0.0.1",
    port: 0,
    onStream: (s) => s.start({ data() {}, close() {} }),
  });
  listeners.push(other);
  const second = await punchDial({
    remote: { host: "127.0.0.1", port: other.port },
    localPort,
    localHost: "127.0.0.1",
    timeoutMs: 2000,
  });
  expect(second.ok).toBe(true);
  if (second.ok) {
    dialled.push(second.stream);
    expect(second.stream.local.port).toBe(localPort);
  }
  const same = await punchDial({
    remote: local.remote,
    localPort,
    localHost: "127.0.0.1",
    timeoutMs: 2000,
  });
  expect(same.ok || same.error.code).toBe("ADDRESS_UNAVAILABLE");
});

test("punch stream - a reset is reported by remote with the socket's error code", async () => {
  const { local, remote } = await loopbackPair();
  remote.start({ data() {}, close() {} });
  remote.pause();
  const atLocal = collect(local);
  local.write(pattern(1000, 1));
  await Bun.sleep(20);
  remote.destroy(); // with bytes unread: the kernel resets the connection
  await waitFor(() => atLocal.closes.length > 0, 3000);
  expect(atLocal.closes).toEqual([{ by: "remote", error: "ECONNRESET" }]);
});
