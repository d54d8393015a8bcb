import { afterEach, describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { type Connection, FrameConnection } from "../../src/link/connection.ts";
import { secureLinks } from "../../src/link/secure-links.ts";
import { systemClock } from "../../src/node/clock.ts";
import { Emitter } from "../../src/node/emitter.ts";
import { helloFrame } from "../../src/node/handshake.ts";
import type { NodeEvents, PeerDown } from "../../src/node/node-events.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import {
  CircuitCloseCode,
  CircuitOp,
  decodeCircuit,
  encodeCircuitData,
  encodeCircuitIncoming,
  encodeCircuitOpen,
  MAX_CIRCUIT_DATA_BYTES,
} from "../../src/protocol/circuit.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { fromHex } from "../../src/protocol/hex.ts";
import {
  CIRCUIT_MAX_BYTES,
  CIRCUIT_OPEN_TIMEOUT_MS,
  CircuitIds,
} from "../../src/relay/circuit-relay.ts";
import { CircuitStream } from "../../src/relay/circuit-stream.ts";
import {
  CIRCUIT_TICK_MS,
  type CircuitNode,
  type CircuitOpenOutcome,
  Circuits,
  type CircuitsLimits,
  type IncomingCircuit,
} from "../../src/relay/circuits.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM } from "../../src/secure/room.ts";
import { channelOptions, secureStream } from "../../src/secure/secure-stream.ts";
import type { StreamClosed } from "../../src/transport/byte-stream.ts";
import { CLOSE_FLUSH_TIMEOUT_MS, MAX_PENDING_BYTES } from "../../src/transport/limits.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { TestNetwork } from "../helpers/network.ts";
import { randomBytes, seededRandom, testSeed } from "../helpers/random.ts";
import { waitFor } from "../helpers/wait-for.ts";

const P = 0;
const A = 1;
const B = 2;

/** What one end of a raw circuit stream read. */
interface Reader {
  bytes: number;
  chunks: Uint8Array[];
  closed: StreamClosed | undefined;
}

function read(stream: CircuitStream, keep = true): Reader {
  const r: Reader = { bytes: 0, chunks: [], closed: undefined };
  stream.start({
    data: (chunk) => {
      r.bytes += chunk.length;
      if (keep) r.chunks.push(chunk.slice());
    },
    close: (info) => {
      r.closed = info;
    },
  });
  return r;
}

/** Three real peers over TCP: A–P and B–P linked, A and B not; circuits at each. */
class Relayed {
  readonly net = new TestNetwork();
  readonly identities: Identity[] = [generateIdentity(), generateIdentity(), generateIdentity()];
  readonly circuits: Circuits[] = [];
  readonly incoming: { stream: CircuitStream; info: IncomingCircuit }[][] = [[], [], []];
  /** DATA bodies P sent (every byte it forwarded), copied. */
  readonly forwarded: Uint8Array[] = [];
  onIncoming: ((i: number, stream: CircuitStream, info: IncomingCircuit) => void) | undefined;

  static async start(
    options: {
      limits?: (Partial<CircuitsLimits> | undefined)[];
      relaying?: () => boolean;
      accepting?: (from: string, relay: string) => boolean;
    } = {},
  ): Promise<Relayed> {
    const r = new Relayed();
    for (let i = 0; i < 3; i++) {
      r.net.add({
        identity: r.identities[i] as Identity,
        ...(i === P
          ? {
              onFrameOut: (_conn: Connection, frame: Uint8Array) => {
                if (frame[4] !== FrameType.Circuit) return;
                const m = decodeCircuit(frame.subarray(5));
                if (m.op === CircuitOp.Data) r.forwarded.push(m.data.slice());
              },
            }
          : {}),
      });
    }
    await r.net.link([
      [A, P],
      [B, P],
    ]);
    for (let i = 0; i < 3; i++) {
      const limits = options.limits?.[i];
      r.circuits.push(
        new Circuits({
          node: r.node(i),
          clock: systemClock,
          logger: r.net.peer(i).log.logger,
          relaying: i === P && options.relaying ? options.relaying : () => true,
          ...(limits ? { limits } : {}),
          ...(i === B && options.accepting ? { accepting: options.accepting } : {}),
          onIncoming: (stream, info) => {
            r.incoming[i]?.push({ stream, info });
            r.onIncoming?.(i, stream, info);
          },
        }),
      );
    }
    return r;
  }

  node(i: number) {
    return this.net.peer(i).peer.node;
  }

  id(i: number): string {
    return this.node(i).nodeIdHex;
  }

  /** A opens a circuit to B through P. */
  open(from = A, to = B): Promise<CircuitOpenOutcome> {
    return (this.circuits[from] as Circuits).open(this.id(P), this.id(to));
  }

  async openOk(from = A, to = B): Promise<{ out: CircuitStream; in: CircuitStream }> {
    const before = this.incoming[to]?.length ?? 0;
    const outcome = await this.open(from, to);
    if (!outcome.ok) throw new Error(`open failed: ${outcome.reason}`);
    const inbound = await waitFor(() => this.incoming[to]?.[before]?.stream, 5000, "INCOMING");
    return { out: outcome.stream, in: inbound };
  }

  /** P's chat still reaches A and B. */
  async chatStillFlows(text: string, to = [A, B]): Promise<void> {
    const m = this.net.send(P, text);
    await this.net.waitDelivered(
      [m.id],
      to.map((i) => this.net.peer(i)),
    );
  }

  async close(): Promise<void> {
    for (const c of this.circuits) c.close();
    await this.net.close();
  }
}

let relayed: Relayed | undefined;
afterEach(async () => {
  await relayed?.close();
  relayed = undefined;
});

/** A frame one end of the secure channel read. */
interface Got {
  readonly type: number;
  readonly payload: Uint8Array;
}

const MARKER = new TextEncoder().encode("PLAINTEXT-MARKER-7c1e9d");

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Frames of type 0x30 (a type no part of the node takes): `marker | n random bytes`. */
function markedFrame(n: number, random: () => number): Uint8Array {
  const body = randomBytes(random, n);
  body.set(MARKER, 0);
  body.set(MARKER, n - MARKER.length);
  return ByteWriter.frame(0x30, n).bytes(body).done();
}

describe("circuits over real TCP", () => {
  test("A and B run the secure channel end to end through P; P forwards only ciphertext", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const { out, in: inbound } = await r.openOk();
    const info = r.incoming[B]?.[0]?.info;
    expect(info).toEqual({ fromNodeId: r.id(A), relayNodeId: r.id(P) });
    expect(out.direction).toBe("outbound");
    expect(inbound.direction).toBe("inbound");
    expect(out.via?.relayNodeId).toBe(r.id(P));
    expect(out.remote).toEqual(r.net.peer(P).peer.listen);
    expect(inbound.remote.port).toBe(r.net.peer(P).peer.listen.port);
    expect(out.local.host).toBe("127.0.0.1");

    const seed = testSeed(1313);
    const random = seededRandom(seed);
    const ends = [
      { stream: out, identity: r.identities[A] as Identity },
      { stream: inbound, identity: r.identities[B] as Identity },
    ].map(({ stream, identity }) => {
      const conn = new FrameConnection(
        secureStream(stream, channelOptions(identity, DEFAULT_ROOM)),
      );
      const got: { frames: Got[]; closed: string | undefined } = { frames: [], closed: undefined };
      conn.start({
        frame: (f) => got.frames.push({ type: f.type, payload: f.payload.slice() }),
        close: (c) => {
          got.closed = c.reason;
        },
      });
      conn.send(helloFrame(identity.publicKey, 0, "end"));
      return { conn, got };
    });
    const [a, b] = ends as [(typeof ends)[0], (typeof ends)[0]];
    await waitFor(() => a.got.frames.length === 1 && b.got.frames.length === 1, 5000, "HELLOs");
    expect(a.got.frames[0]?.type).toBe(FrameType.Hello);
    const sizes = [40_000, 1, 65_000, 100, 20_000];
    const fromA = sizes.map((n) => markedFrame(Math.max(n, 2 * MARKER.length), random));
    const fromB = sizes.map((n) => markedFrame(Math.max(n, 2 * MARKER.length), random));
    for (const f of fromA) expect(a.conn.send(f)).toBe(true);
    for (const f of fromB) expect(b.conn.send(f)).toBe(true);
    await waitFor(
      () => a.got.frames.length === 1 + sizes.length && b.got.frames.length === 1 + sizes.length,
      5000,
      () => `frames both ways (seed ${seed})`,
    );
    const bodies = (fs: Got[]) => fs.slice(1).map((f) => Buffer.from(f.payload).toString("hex"));
    expect(bodies(b.got.frames)).toEqual(
      fromA.map((f) => Buffer.from(f.subarray(5)).toString("hex")),
    );
    expect(bodies(a.got.frames)).toEqual(
      fromB.map((f) => Buffer.from(f.subarray(5)).toString("hex")),
    );

    const total = r.forwarded.reduce((n, d) => n + d.length, 0);
    expect(total).toBeGreaterThan(2 * sizes.reduce((n, s) => n + s, 0));
    expect(r.forwarded.every((d) => d.length <= MAX_CIRCUIT_DATA_BYTES)).toBe(true);
    expect(r.forwarded.some((d) => contains(d, MARKER))).toBe(false);
    expect(r.circuits[P]?.stats).toMatchObject({ relayed: 1, bytesRelayed: total });

    a.conn.close({ kind: "bye", reason: "done" });
    await waitFor(() => b.got.closed !== undefined, 5000, "B to see the end");
    expect(b.got.frames.at(-1)?.type).toBe(FrameType.Bye);
    await waitFor(() => r.circuits[P]?.stats.relayed === 0, 5000, "P to drop the circuit");
  });

  test("the whole link: A and B become neighbours over the circuit, and B's chat reaches A over it", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const links = r.identities.map((identity) => secureLinks(identity, DEFAULT_ROOM));
    r.onIncoming = (i, stream) => r.node(i).addConnection(links[i]?.accept(stream) as Connection);
    const outcome = await r.open();
    if (!outcome.ok) throw new Error(outcome.reason);
    r.node(A).addConnection(links[A]?.accept(outcome.stream) as Connection);
    await waitFor(() => r.net.linked(A, B), 5000, "A and B linked through P");
    const viaP = r
      .node(A)
      .neighbours()
      .find((n) => n.nodeId === r.id(B));
    expect(viaP?.via?.relayNodeId).toBe(r.id(P));
    const before = r.forwarded.length;
    const m = r.net.send(B, "PLAINTEXT-MARKER-7c1e9d over the relayed link");
    await r.net.waitDelivered([m.id], [r.net.peer(A)]);
    await waitFor(() => r.forwarded.length > before, 5000, "the FLOOD to cross the circuit too");
    expect(r.forwarded.some((d) => contains(d, MARKER))).toBe(false);
  });

  test("a 9th circuit from A is refused at P (Refused), logged once, and P's chat still flows", async () => {
    relayed = await Relayed.start({ limits: [undefined, { maxEnds: 16 }, { maxEnds: 16 }] });
    const r = relayed;
    const opened = [];
    for (let i = 0; i < 8; i++) opened.push(await r.openOk());
    const ninth = await r.open();
    expect(ninth.ok).toBe(false);
    if (!ninth.ok) expect(ninth.code).toBe(CircuitCloseCode.Refused);
    await r.chatStillFlows("after the 9th");
    const tenth = await r.open();
    if (!tenth.ok) expect(tenth.code).toBe(CircuitCloseCode.Refused);
    await r.chatStillFlows("after the 10th");
    expect(r.net.peer(P).log.find("refused a circuit from")).toHaveLength(1);
    expect(r.circuits[P]?.stats).toMatchObject({ relayed: 8, refused: 2 });
    // One closed makes room for one more.
    opened[0]?.out.destroy();
    await waitFor(() => r.circuits[P]?.stats.relayed === 7, 5000, "P to drop the closed one");
    expect((await r.open()).ok).toBe(true);
  });

  test("the target's own cap: past maxEnds it answers TargetRefused", async () => {
    relayed = await Relayed.start({ limits: [undefined, undefined, { maxEnds: 2 }] });
    const r = relayed;
    await r.openOk();
    await r.openOk();
    const third = await r.open();
    expect(third.ok ? undefined : third.code).toBe(CircuitCloseCode.TargetRefused);
    await r.chatStillFlows("after the target said no");
  });

  test("a target that does not accept: TargetRefused", async () => {
    relayed = await Relayed.start({ accepting: () => false });
    const outcome = await relayed.open();
    expect(outcome.ok ? undefined : outcome.code).toBe(CircuitCloseCode.TargetRefused);
  });

  test("a relay that does not relay: NoRoute; and no route to a peer P is not linked to", async () => {
    relayed = await Relayed.start({ relaying: () => false });
    const r = relayed;
    const outcome = await r.open();
    expect(outcome.ok ? undefined : outcome.code).toBe(CircuitCloseCode.NoRoute);
    const elsewhere = await r.circuits[A]?.open(r.id(P), "ab".repeat(32));
    expect(elsewhere?.ok ? undefined : elsewhere?.code).toBe(CircuitCloseCode.NoRoute);
    const notLinked = await r.circuits[A]?.open(r.id(B), r.id(P));
    expect(notLinked?.ok).toBe(false);
    await r.chatStillFlows("after no route");
  });

  test("a circuit pushing past a small byte limit is closed with ByteLimit at both ends", async () => {
    const maxBytes = 64 * 1024;
    relayed = await Relayed.start({ limits: [{ maxBytes }] });
    const r = relayed;
    const { out, in: inbound } = await r.openOk();
    const a = read(out);
    const b = read(inbound, false);
    expect(out.write(new Uint8Array(100 * 1024))).toBe("queued");
    await waitFor(() => a.closed && b.closed, 5000, "both ends closed");
    expect(out.cause?.code).toBe(CircuitCloseCode.ByteLimit);
    expect(inbound.cause?.code).toBe(CircuitCloseCode.ByteLimit);
    expect(a.closed?.by).toBe("remote");
    expect(b.bytes).toBeLessThanOrEqual(maxBytes);
    expect(r.circuits[P]?.stats).toMatchObject({ relayed: 0, limited: 1 });
    await r.chatStillFlows("after the byte limit");
  });

  test("the default 16 MiB limit, end to end", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const { out, in: inbound } = await r.openOk();
    read(out, false);
    const b = read(inbound, false);
    const chunk = new Uint8Array(64 * 1024);
    const started = performance.now();
    let written = 0;
    while (written < CIRCUIT_MAX_BYTES + 1024 * 1024 && !out.closed) {
      if (out.pendingBytes > 2 * 1024 * 1024) {
        await Bun.sleep(1);
        continue;
      }
      expect(out.write(chunk)).toBe("queued");
      written += chunk.length;
    }
    await waitFor(() => out.cause && inbound.cause, 20_000, "the circuit closed");
    const seconds = (performance.now() - started) / 1000;
    expect(out.cause?.code).toBe(CircuitCloseCode.ByteLimit);
    expect(inbound.cause?.code).toBe(CircuitCloseCode.ByteLimit);
    expect(b.bytes).toBeLessThanOrEqual(CIRCUIT_MAX_BYTES);
    expect(b.bytes).toBeGreaterThan(CIRCUIT_MAX_BYTES - MAX_CIRCUIT_DATA_BYTES);
    console.log(`16 MiB relayed in ${seconds.toFixed(2)} s`);
    await r.chatStillFlows("after 16 MiB");
  }, 30_000);

  test("killing B closes A's stream (LinkLost) and P forgets the circuit", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const { out } = await r.openOk();
    const a = read(out);
    r.net.kill(B);
    await waitFor(() => a.closed, 5000, "A's stream closed");
    expect(a.closed?.by).toBe("remote");
    expect(out.cause?.code).toBe(CircuitCloseCode.LinkLost);
    expect(r.circuits[P]?.stats.relayed).toBe(0);
    expect(out.write(Uint8Array.of(1))).toBe("closed");
  });

  test("losing the link to the relay closes A's stream", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const { out, in: inbound } = await r.openOk();
    const a = read(out);
    const b = read(inbound);
    r.node(A).disconnect(r.id(P), { kind: "bye", reason: "going" });
    await waitFor(() => a.closed && b.closed, 5000, "both streams closed");
    expect(out.cause?.code).toBe(CircuitCloseCode.LinkLost);
    expect(inbound.cause?.code).toBe(CircuitCloseCode.LinkLost);
  });

  test("a malformed CIRCUIT frame closes the link it came on", async () => {
    relayed = await Relayed.start();
    const r = relayed;
    const bad = ByteWriter.frame(FrameType.Circuit, 5).u8(9).u32(1).done();
    expect(r.node(A).sendTo(r.id(P), bad)).toBe(true);
    await waitFor(() => !r.net.linked(A, P), 5000, "the A–P link closed");
    await waitFor(() => r.net.peer(A).downs.length === 1, 5000, "A to see P go");
    // Only that link: P and B talk on (A redials P in a moment: it is pinned).
    await r.chatStillFlows("B still hears P", [B]);
  });
});

describe("CircuitStream", () => {
  const RELAY = "ab".repeat(32);

  function stream(options: { congested?: () => boolean; send?: (f: Uint8Array) => boolean } = {}) {
    const clock = new FakeClock();
    const frames: ReturnType<typeof decodeCircuit>[] = [];
    let over = 0;
    const s = new CircuitStream({
      direction: "outbound",
      via: { relayNodeId: RELAY, relayAddress: { host: "192.0.2.1", port: 9000 } },
      local: { host: "192.0.2.2", port: 50000 },
      circuit: 7,
      clock,
      send:
        options.send ??
        ((frame) => {
          frames.push(decodeCircuit(frame.subarray(5)));
          return true;
        }),
      congested: options.congested ?? (() => false),
      onClosed: () => over++,
    });
    return { s, clock, frames, over: () => over };
  }

  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

  test("writes of one tick leave together as DATA frames of at most 16 KiB", async () => {
    const { s, frames } = stream();
    read(s);
    s.write(new Uint8Array(30_000));
    s.write(new Uint8Array(10_000).fill(1), 5000);
    expect(s.pendingBytes).toBe(35_000);
    await tick();
    expect(frames.map((f) => (f.op === CircuitOp.Data ? f.data.length : -1))).toEqual([
      16_384, 16_384, 2232,
    ]);
    expect(frames.every((f) => f.circuit === 7)).toBe(true);
    expect(s.pendingBytes).toBe(0);
    expect(s.bytesSent).toBe(35_000);
    expect(s.remote).toEqual({ host: "192.0.2.1", port: 9000 });
  });

  test("while the relay link is congested bytes wait, capped like a socket, and clear once drained", async () => {
    let congested = true;
    const { s, clock, frames } = stream({ congested: () => congested });
    let cleared = 0;
    s.start({ data() {}, close() {}, clear: () => cleared++ });
    const mib = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 7; i++) expect(s.write(mib)).toBe("queued");
    expect(s.write(mib)).toBe("overflow");
    await tick();
    expect(frames).toHaveLength(0);
    expect(s.pendingBytes).toBe(7 * 1024 * 1024);
    congested = false;
    clock.advance(20);
    expect(s.pendingBytes).toBe(0);
    expect(frames).toHaveLength(7 * 64);
    expect(cleared).toBe(1);
  });

  test("end() sends what is queued, then CLOSE Closed; the close is local", async () => {
    const { s, frames, over } = stream();
    const r = read(s);
    s.write(Uint8Array.of(1, 2));
    s.end(Uint8Array.of(3));
    expect(frames.map((f) => f.op)).toEqual([CircuitOp.Data, CircuitOp.Close]);
    expect(frames[1]).toMatchObject({ code: CircuitCloseCode.Closed, reason: "" });
    expect(r.closed).toEqual({ by: "local" });
    expect(over()).toBe(1);
    expect(s.write(Uint8Array.of(1))).toBe("closed");
  });

  test("end() with drain waits for the far end's CLOSE, reading on", () => {
    const { s, frames } = stream();
    const r = read(s);
    s.end(undefined, { drain: true });
    expect(frames).toHaveLength(0);
    s.receive(Uint8Array.of(5));
    expect(r.bytes).toBe(1);
    s.remoteClosed(CircuitCloseCode.Closed, "");
    expect(r.closed).toEqual({ by: "local" });
    expect(frames).toHaveLength(0);
  });

  test("end() gives up after the flush deadline if the relay link stays congested", () => {
    const { s, clock, frames } = stream({ congested: () => true });
    const r = read(s);
    s.write(new Uint8Array(100));
    s.end();
    clock.advance(CLOSE_FLUSH_TIMEOUT_MS);
    expect(frames.map((f) => f.op)).toEqual([CircuitOp.Close]);
    expect(r.closed?.by).toBe("local");
    expect(clock.pending).toBe(0);
  });

  test("destroy() sends CLOSE at once and drops what was queued", () => {
    const { s, frames } = stream();
    const r = read(s);
    s.write(new Uint8Array(100));
    s.destroy();
    expect(frames.map((f) => f.op)).toEqual([CircuitOp.Close]);
    expect(r.closed?.by).toBe("local");
  });

  test("a CLOSE from the far end reports a remote close with the reason", () => {
    const { s, frames } = stream();
    const r = read(s);
    s.remoteClosed(CircuitCloseCode.ByteLimit, "65536 bytes relayed");
    expect(r.closed?.by).toBe("remote");
    expect(r.closed?.reason).toContain("byte limit");
    expect(s.cause).toEqual({
      code: CircuitCloseCode.ByteLimit,
      reason: "65536 bytes relayed",
      by: "remote",
    });
    expect(frames).toHaveLength(0);
  });

  test("a paused stream keeps what arrives and hands it up on resume; data comes before the close", async () => {
    const { s } = stream();
    const r = read(s);
    s.pause();
    s.receive(Uint8Array.of(1));
    s.receive(Uint8Array.of(2));
    s.remoteClosed(CircuitCloseCode.Closed, "");
    expect(r.bytes).toBe(0);
    expect(r.closed).toBeUndefined();
    s.resume();
    await tick();
    expect(r.chunks.map((c) => [...c])).toEqual([[1], [2]]);
    expect(r.closed).toEqual({ by: "remote" });
  });

  test("DATA before start() waits for the handler", () => {
    const { s } = stream();
    s.receive(Uint8Array.of(9));
    const r = read(s);
    expect(r.bytes).toBe(1);
  });

  test("a paused stream past the cap closes the circuit", () => {
    const { s, frames } = stream();
    const r = read(s);
    s.pause();
    const chunk = new Uint8Array(MAX_CIRCUIT_DATA_BYTES);
    for (let i = 0; i < MAX_PENDING_BYTES / chunk.length; i++) s.receive(chunk);
    expect(r.closed).toBeUndefined();
    s.receive(Uint8Array.of(1));
    expect(frames.map((f) => f.op)).toEqual([CircuitOp.Close]);
    expect(r.closed?.by).toBe("local");
  });

  test("the link gone a moment: sending is retried", () => {
    let up = false;
    const sent: Uint8Array[] = [];
    const { s, clock } = stream({ send: (f) => up && sent.push(f) > 0 });
    read(s);
    s.write(Uint8Array.of(1));
    s.end();
    expect(sent).toHaveLength(0);
    up = true;
    clock.advance(20);
    expect(sent.map((f) => decodeCircuit(f.subarray(5)).op)).toEqual([
      CircuitOp.Data,
      CircuitOp.Close,
    ]);
  });
});

test("circuit ids of both roles never collide on one link", () => {
  const ids = new CircuitIds("00".repeat(32));
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(ids.next("ff".repeat(32)));
  expect(seen.size).toBe(1000);
});

describe("Circuits driver, on a fake node and clock", () => {
  const SELF = "11".repeat(32);
  const X = "aa".repeat(32);
  const Y = "bb".repeat(32);

  function driver(options: { onIncoming?: (s: CircuitStream) => void } = {}) {
    const clock = new FakeClock();
    const sent: { to: string; message: ReturnType<typeof decodeCircuit> }[] = [];
    const events = new Emitter<NodeEvents>();
    let handler: ((from: string, frame: Frame) => void) | undefined;
    const node: CircuitNode = {
      nodeIdHex: SELF,
      events,
      handle: (_type, h) => {
        handler = h;
      },
      sendTo: (to, frame) => {
        sent.push({ to, message: decodeCircuit(frame.subarray(5)) });
        return true;
      },
      congested: () => false,
      isNeighbour: (id) => id === X || id === Y,
      neighbours: () => [],
      linkSockets: () => undefined,
    };
    const incoming: CircuitStream[] = [];
    const circuits = new Circuits({
      node,
      clock,
      logger: testLogger(3).logger,
      relaying: () => true,
      onIncoming: (s) => {
        incoming.push(s);
        options.onIncoming?.(s);
      },
    });
    const deliver = (from: string, frame: Uint8Array) => {
      const [f] = new FrameDecoder().push(frame);
      (handler as (from: string, frame: Frame) => void)(from, f as Frame);
    };
    return { clock, sent, events, circuits, deliver, incoming };
  }

  test("an OPEN nobody answers gives up after 10 s and tells the relay", async () => {
    const { clock, sent, circuits } = driver();
    const pending = circuits.open(X, Y);
    expect(sent[0]?.message.op).toBe(CircuitOp.Open);
    const id = sent[0]?.message.circuit as number;
    expect(id % 2).toBe(0); // SELF sorts below X
    clock.advance(CIRCUIT_OPEN_TIMEOUT_MS);
    const outcome = await pending;
    expect(outcome.ok).toBe(false);
    expect(sent[1]).toMatchObject({ to: X, message: { op: CircuitOp.Close, circuit: id } });
    expect(circuits.stats.ends).toBe(0);
  });

  test("the relay link lost while opening: a failed outcome at once", async () => {
    const { events, circuits, clock } = driver();
    const pending = circuits.open(X, Y);
    events.emit("peer-down", { nodeId: X } as PeerDown);
    expect((await pending).ok).toBe(false);
    expect(clock.pending).toBe(0);
  });

  test("as relay: the driver's tick closes an unanswered OPEN, then stops ticking", () => {
    const { clock, sent, circuits, deliver } = driver();
    deliver(X, encodeCircuitOpen(1, fromHex(Y)));
    expect(sent[0]).toMatchObject({ to: Y, message: { op: CircuitOp.Incoming } });
    expect(circuits.stats.relayed).toBe(1);
    clock.advance(CIRCUIT_OPEN_TIMEOUT_MS + CIRCUIT_TICK_MS);
    expect(sent.slice(1).map((s) => [s.to, s.message.op])).toEqual([
      [X, CircuitOp.Close],
      [Y, CircuitOp.Close],
    ]);
    expect(circuits.stats).toMatchObject({ relayed: 0, limited: 1 });
    expect(clock.pending).toBe(0);
  });

  test("an INCOMING with an id of our parity is answered CLOSE Protocol", () => {
    const { sent, deliver, incoming } = driver();
    deliver(X, encodeCircuitIncoming(2, fromHex(Y)));
    expect(sent).toEqual([
      {
        to: X,
        message: expect.objectContaining({ op: CircuitOp.Close, code: CircuitCloseCode.Protocol }),
      },
    ]);
    expect(incoming).toHaveLength(0);
  });

  test("a reader that throws closes its circuit, not the link to the relay", () => {
    const { sent, deliver, incoming } = driver({
      onIncoming: (s) =>
        s.start({
          data() {
            throw new Error("bug above");
          },
          close() {},
        }),
    });
    deliver(X, encodeCircuitIncoming(1, fromHex(Y)));
    expect(sent.map((s) => s.message.op)).toEqual([CircuitOp.Accept]);
    expect(() => deliver(X, encodeCircuitData(1, Uint8Array.of(1)))).not.toThrow();
    expect(sent.map((s) => s.message.op)).toEqual([CircuitOp.Accept, CircuitOp.Close]);
    expect(incoming[0]?.closed).toBe(true);
  });

  test("onIncoming throwing closes that stream only", () => {
    const { sent, deliver, circuits } = driver({
      onIncoming: () => {
        throw new Error("bug above");
      },
    });
    deliver(X, encodeCircuitIncoming(1, fromHex(Y)));
    expect(sent.map((s) => s.message.op)).toEqual([CircuitOp.Accept, CircuitOp.Close]);
    expect(circuits.stats.ends).toBe(0);
  });

  test("a malformed CIRCUIT frame throws a ProtocolError (the node closes that link)", () => {
    const { deliver } = driver();
    const bad = ByteWriter.frame(FrameType.Circuit, 5).u8(4).u32(1).done();
    expect(() => deliver(X, bad)).toThrow(ProtocolError);
  });

  test("close() ends our streams and the relayed circuits", async () => {
    const { sent, deliver, circuits, clock } = driver();
    deliver(X, encodeCircuitIncoming(1, fromHex(Y))); // we are a target
    deliver(Y, encodeCircuitOpen(1, fromHex(X))); // and relay one
    const pending = circuits.open(X, Y);
    sent.length = 0;
    circuits.close();
    expect((await pending).ok).toBe(false);
    expect(sent.every((s) => s.message.op === CircuitOp.Close)).toBe(true);
    expect(sent).toHaveLength(4); // our stream, our OPEN, both legs of the relayed one
    expect(circuits.stats).toMatchObject({ relayed: 0, ends: 0 });
    expect(clock.pending).toBe(0);
  });
});
