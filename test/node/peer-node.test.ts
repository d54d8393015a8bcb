import { afterEach, describe, expect, test } from "bun:test";
import { FrameConnection } from "../../src/link/connection.ts";
import type { ChatMessage } from "../../src/node/delivery.ts";
import type { PeerDown } from "../../src/node/node-events.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import type { WireTap } from "../../src/node/trace.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import {
  FloodKind,
  FrameType,
  PROTOCOL_VERSION,
  WireErrorCode,
} from "../../src/protocol/constants.ts";
import {
  decodeError,
  decodeNonce,
  encodeBye,
  encodeError,
  encodePing,
} from "../../src/protocol/control.ts";
import { encodeFlood } from "../../src/protocol/flood.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodeHello, encodeHello } from "../../src/protocol/hello.ts";
import { compareBytes } from "../../src/protocol/hex.ts";
import { identityFromSeed } from "../../src/secure/identity.ts";
import type { ByteStream } from "../../src/transport/byte-stream.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createLinkPair, createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

const nodes: PeerNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close("test over")));
});

/** Identities in ascending node-id order: the tie-break of duplicate links depends on it. */
const RANKED_KEYS = Array.from({ length: 8 }, (_, i) =>
  identityFromSeed(new Uint8Array(32).fill(i + 1)),
).sort((x, y) => compareBytes(x.publicKey, y.publicKey));

function makeNode(
  nick: string,
  options: { rank?: number; clock?: FakeClock; maxPeers?: number; tap?: WireTap } = {},
) {
  const log = testLogger(5);
  const node = new PeerNode({
    nick,
    listenPort: 9000,
    logger: log.logger,
    ...(options.rank !== undefined ? { identity: RANKED_KEYS[options.rank] } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.maxPeers ? { maxPeers: options.maxPeers } : {}),
    ...(options.tap ? { tap: options.tap } : {}),
  });
  nodes.push(node);
  const messages: ChatMessage[] = [];
  const downs: PeerDown[] = [];
  node.events.on("message", (m) => messages.push(m));
  node.events.on("peer-down", (d) => downs.push(d));
  return { node, log, messages, downs };
}

/** Links two nodes through an in-memory pair: `a` dials `b`. */
function link(a: PeerNode, b: PeerNode, split?: (bytes: Uint8Array) => Uint8Array[], delayMs = 0) {
  const [out, inb] = createLinkPair({ ...(split ? { split } : {}), delayMs });
  a.addConnection(out);
  b.addConnection(inb);
}

/** The far end of a memory pair, driven by hand: raw frames in and out. */
function rawPeer(node: PeerNode) {
  const [out, inb] = createMemoryPair();
  node.addConnection(new FrameConnection(inb));
  const decoder = new FrameDecoder();
  const frames: Array<{ type: number; payload: Uint8Array }> = [];
  const raw = { frames, closed: false, stream: out as ByteStream };
  out.start({
    data: (chunk) => {
      for (const f of decoder.push(chunk))
        frames.push({ type: f.type, payload: f.payload.slice() });
    },
    close: () => {
      raw.closed = true;
    },
  });
  return raw;
}

const hello = (idByte: number, nick = "raw") =>
  encodeHello({ nodeId: new Uint8Array(32).fill(idByte), listenPort: 0, nick });

describe("PeerNode handshake", () => {
  test("both sides send HELLO at once and become neighbours", async () => {
    const a = makeNode("alice");
    const b = makeNode("bob");
    link(a.node, b.node);
    await waitFor(() => a.node.neighbours().length === 1 && b.node.neighbours().length === 1);
    expect(a.node.neighbours()[0]).toMatchObject({
      nick: "bob",
      direction: "outbound",
      nodeId: b.node.nodeIdHex,
    });
    expect(b.node.neighbours()[0]).toMatchObject({
      nick: "alice",
      direction: "inbound",
      nodeId: a.node.nodeIdHex,
    });
  });

  test("HELLO is the first frame sent, with our id, listen port and nick", async () => {
    const a = makeNode("alice", { rank: 1 });
    const raw = rawPeer(a.node);
    await waitFor(() => raw.frames.length > 0);
    expect(raw.frames[0]?.type).toBe(FrameType.Hello);
    const h = decodeHello(raw.frames[0]?.payload as Uint8Array);
    expect(h).toMatchObject({ version: PROTOCOL_VERSION, listenPort: 9000, nick: "alice" });
    expect(h.nodeId).toEqual(a.node.nodeId);
  });

  test("a HELLO that never comes: ERROR and close after 5 s", async () => {
    const clock = new FakeClock();
    const a = makeNode("alice", { clock });
    const raw = rawPeer(a.node);
    await waitFor(() => raw.frames.length === 1);
    clock.advance(4999);
    await Bun.sleep(10);
    expect(raw.closed).toBe(false);
    clock.advance(1);
    await waitFor(() => raw.closed, 1000, "closed");
    const error = raw.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.HandshakeTimeout);
  });

  test("a FLOOD before HELLO: ERROR (bad handshake) and close", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(
      encodeFlood({
        id: new Uint8Array(16),
        origin: new Uint8Array(32),
        seq: 1,
        sentAt: 0,
        hops: 0,
        kind: 1,
        signature: new Uint8Array(64),
        body: encodeChatBody({ nick: "x", text: "y" }),
      }),
    );
    await waitFor(() => raw.closed, 1000, "closed");
    const error = raw.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.BadHandshake);
    expect(a.log.find("expected HELLO first").filter((e) => e.type === "warn")).toHaveLength(1);
  });

  test("another protocol version is refused with an ERROR naming both", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(
      ByteWriter.frame(FrameType.Hello, 6)
        .bytes(Uint8Array.of(0x50, 0x43, 0x48, 0x54, 9, 0))
        .done(),
    );
    await waitFor(() => raw.closed, 1000, "closed");
    const error = raw.frames.find((f) => f.type === FrameType.Error);
    const decoded = error && decodeError(error.payload);
    expect(decoded?.code).toBe(WireErrorCode.VersionMismatch);
    expect(decoded?.message).toContain("version 9");
    expect(decoded?.message).toContain(`version ${PROTOCOL_VERSION}`);
  });

  test("dialling ourselves closes quietly and reports it", async () => {
    const a = makeNode("alice");
    const [out, inb] = createLinkPair();
    const outcome = new Promise((resolve) =>
      a.node.addConnection(out, { endpoint: { host: "memory", port: 2 }, resolve }),
    );
    a.node.addConnection(inb);
    expect(await outcome).toEqual({ status: "self" });
    await waitFor(() => a.node.connectionCount === 0);
    expect(a.node.neighbours()).toEqual([]);
    expect(a.downs).toEqual([]);
  });

  test("two links between a pair: the one dialled by the lower id survives, at both ends, without a flicker", async () => {
    for (const [lowFirst, label] of [
      [true, "lower dials first"],
      [false, "higher dials first"],
    ] as const) {
      const low = makeNode("low", { rank: 0 });
      const high = makeNode("high", { rank: 7 });
      if (lowFirst) {
        link(low.node, high.node);
        await waitFor(() => low.node.neighbours().length === 1);
        link(high.node, low.node);
      } else {
        link(high.node, low.node);
        await waitFor(() => low.node.neighbours().length === 1);
        link(low.node, high.node);
      }
      await waitFor(
        () => low.node.connectionCount === 1 && high.node.connectionCount === 1,
        2000,
        label,
      );
      expect(low.node.neighbours()[0]?.direction, label).toBe("outbound");
      expect(high.node.neighbours()[0]?.direction, label).toBe("inbound");
      expect(low.downs, label).toEqual([]);
      expect(high.downs, label).toEqual([]);
      // The surviving link carries messages.
      low.node.sendChat(`over the survivor (${label})`);
      await waitFor(() => high.messages.length === 1, 1000, label);
    }
  });

  test("messages sent on a duplicate link while it is being dropped are not lost", async () => {
    for (let round = 0; round < 20; round++) {
      const low = makeNode("low", { rank: 0 });
      const high = makeNode("high", { rank: 7 });
      link(high.node, low.node); // the link that will lose: dialled by the higher id
      await waitFor(
        () => low.node.neighbours().length === 1 && high.node.neighbours().length === 1,
      );
      link(low.node, high.node); // the winner; each side decides at its own moment
      // Both speak at once, on whichever link each still thinks is current.
      const deadline = performance.now() + 50;
      let sent = 0;
      while (performance.now() < deadline) {
        low.node.sendChat(`low ${round}.${sent}`);
        high.node.sendChat(`high ${round}.${sent}`);
        sent++;
        await Bun.sleep(1);
      }
      await waitFor(() => low.node.connectionCount === 1 && high.node.connectionCount === 1);
      await waitFor(
        () =>
          low.messages.filter((m) => !m.own).length === sent &&
          high.messages.filter((m) => !m.own).length === sent,
        2000,
        () =>
          `round ${round}: ${sent} each way; low got ${low.messages.filter((m) => !m.own).length}, high got ${high.messages.filter((m) => !m.own).length}`,
      );
      await Promise.all([low.node.close(), high.node.close()]);
    }
  });

  /**
   * Two links between low and high: the old one, dialled by high, loses. Low's HELLO on
   * the new one waits at high until high takes the connection, so high decides first and
   * drops the old link while low, which has not read high's HELLO yet, still sends on it.
   */
  async function droppedFirstByHigh() {
    const low = makeNode("low", { rank: 0 });
    const high = makeNode("high", { rank: 7 });
    link(high.node, low.node);
    // Up, and quiet: each side's first PING answered, nothing left to flush on it.
    const answered = (n: PeerNode) => n.neighbours()[0]?.rttMs !== undefined;
    await waitFor(() => answered(low.node) && answered(high.node));
    const [out, inb] = createLinkPair();
    low.node.addConnection(out);
    await new Promise((resolve) => setImmediate(resolve)); // low's HELLO now waits at high
    high.node.addConnection(inb); // high reads it at once and drops the old link
    expect(high.node.neighbours()[0]?.direction).toBe("inbound");
    expect(low.node.neighbours()[0]?.direction).toBe("inbound"); // low has not decided yet
    return { low, high };
  }

  test("a FLOOD sent on a duplicate link after the other end dropped it still arrives", async () => {
    const { low, high } = await droppedFirstByHigh();
    const sent = low.node.sendChat("on the old link, after high dropped it");
    expect(sent).toMatchObject({ status: "sent", neighbours: 1 });
    await waitFor(() => low.node.connectionCount === 1 && high.node.connectionCount === 1);
    await waitFor(() => high.messages.length === 1, 1000, "the message at high");
    expect(high.messages[0]?.text).toBe("on the old link, after high dropped it");
    expect(low.node.neighbours()[0]?.direction).toBe("outbound");
  });

  test("a frame of a protocol above the node, sent on a duplicate link after the other end dropped it, still reaches it", async () => {
    const { low, high } = await droppedFirstByHigh();
    const got: string[] = [];
    high.node.handle(0x7f, (from) => got.push(from));
    expect(low.node.sendTo(high.node.nodeIdHex, ByteWriter.frame(0x7f, 1).u8(1).done())).toBe(true);
    await waitFor(() => low.node.connectionCount === 1 && high.node.connectionCount === 1);
    await waitFor(() => got.length === 1, 1000, "the frame at high");
    expect(got).toEqual([low.node.nodeIdHex]);
  });

  test("a simultaneous dial leaves exactly one link", async () => {
    const a = makeNode("a", { rank: 5 });
    const b = makeNode("b", { rank: 2 });
    link(a.node, b.node);
    link(b.node, a.node);
    await waitFor(() => a.node.connectionCount === 1 && b.node.connectionCount === 1);
    expect(a.node.neighbours()).toHaveLength(1);
    expect(b.node.neighbours()[0]?.direction).toBe("outbound"); // b has the lower id
  });

  test("inbound connections past --max-peers are refused with an ERROR frame", async () => {
    const hub = makeNode("hub", { maxPeers: 2 });
    rawPeer(hub.node);
    rawPeer(hub.node);
    const third = rawPeer(hub.node);
    await waitFor(() => third.closed, 1000, "third closed");
    expect(third.frames.map((f) => f.type)).toEqual([FrameType.Error]);
    expect(decodeError(third.frames[0]?.payload as Uint8Array).code).toBe(
      WireErrorCode.TooManyPeers,
    );
    expect(hub.node.connectionCount).toBe(2);
  });
});

describe("PeerNode links", () => {
  test("answers PING with PONG carrying the same nonce", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(hello(0x42));
    raw.stream.write(encodePing(0x1234_5678_9abc_def0n));
    await waitFor(() => raw.frames.some((f) => f.type === FrameType.Pong));
    const pong = raw.frames.find((f) => f.type === FrameType.Pong) as Frame;
    expect(decodeNonce(pong.payload, "PONG")).toBe(0x1234_5678_9abc_def0n);
  });

  test("frame type 0x00 is a framing error (ERROR 1)", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(hello(0x42));
    raw.stream.write(ByteWriter.frame(0x00, 1).u8(0).done());
    await waitFor(() => raw.closed);
    const error = raw.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.BadFrame);
  });

  test("a malformed ERROR as the first frame is a refusal: closed without a reply", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(
      ByteWriter.frame(FrameType.Error, 3)
        .bytes(Uint8Array.of(0, 1, 0))
        .done(),
    );
    await waitFor(() => raw.closed);
    expect(raw.frames.map((f) => f.type)).toEqual([FrameType.Hello]);
  });

  test("the wire tap and --trace see the frames written while closing (ERROR, BYE)", async () => {
    const seen: number[] = [];
    const a = makeNode("alice", {
      tap: { frameOut: (_n, _c, frame) => seen.push(frame[4] as number) },
    });
    const garbled = rawPeer(a.node);
    garbled.stream.write(Uint8Array.of(0, 0, 0, 0));
    await waitFor(() => garbled.closed);
    expect(seen).toEqual([FrameType.Hello, FrameType.Error]);
    const polite = rawPeer(a.node);
    polite.stream.write(hello(0x43));
    await waitFor(() => a.node.neighbours().length === 1);
    await a.node.close("bye now");
    // HELLO, the PING that measures the new link's round trip, then BYE.
    expect(seen.slice(2)).toEqual([FrameType.Hello, FrameType.Ping, FrameType.Bye]);
  });

  test("unknown frame types 0x08–0xFF are skipped; the link stays up", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(hello(0x42));
    for (const type of [0x08, 0x42, 0xff])
      raw.stream.write(
        ByteWriter.frame(type, 3)
          .bytes(Uint8Array.of(1, 2, 3))
          .done(),
      );
    raw.stream.write(encodePing(1n));
    await waitFor(() => raw.frames.some((f) => f.type === FrameType.Pong));
    expect(raw.closed).toBe(false);
    expect(a.node.neighbours()).toHaveLength(1);
  });

  test("BYE: the neighbour leaves with its reason", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(hello(0x42, "bob"));
    await waitFor(() => a.node.neighbours().length === 1);
    raw.stream.write(encodeBye("see you"));
    await waitFor(() => a.downs.length === 1);
    expect(a.downs[0]).toMatchObject({ nick: "bob", reason: "see you", by: "remote" });
  });

  test("an ERROR from the neighbour closes the link with its message", async () => {
    const a = makeNode("alice");
    const raw = rawPeer(a.node);
    raw.stream.write(hello(0x42, "bob"));
    await waitFor(() => a.node.neighbours().length === 1);
    raw.stream.write(encodeError({ code: 99, message: "enough" }));
    await waitFor(() => a.downs.length === 1);
    expect(a.downs[0]?.reason).toBe("enough");
  });

  test("close() says BYE to every neighbour", async () => {
    const a = makeNode("alice");
    const raws = [rawPeer(a.node), rawPeer(a.node)];
    for (const [i, raw] of raws.entries()) raw.stream.write(hello(0x50 + i));
    await waitFor(() => a.node.neighbours().length === 2);
    await a.node.close("bedtime");
    for (const raw of raws) {
      await waitFor(() => raw.closed);
      const bye = raw.frames.find((f) => f.type === FrameType.Bye);
      expect(bye).toBeDefined();
    }
  });

  test("a FLOOD with a control character in its text closes that link only and is not relayed", async () => {
    const hub = makeNode("hub");
    const good = makeNode("good");
    link(good.node, hub.node);
    const bad = rawPeer(hub.node);
    bad.stream.write(hello(0x66, "mallory"));
    await waitFor(() => hub.node.neighbours().length === 2);
    const body = Uint8Array.of(
      0,
      7,
      ...new TextEncoder().encode("mallory"),
      0,
      5,
      0x1b,
      0x5b,
      0x32,
      0x4a,
      0x78,
    );
    bad.stream.write(
      encodeFlood({
        id: new Uint8Array(16).fill(3),
        origin: new Uint8Array(32).fill(0x66),
        seq: 1,
        sentAt: 0,
        hops: 0,
        kind: FloodKind.Chat,
        signature: new Uint8Array(64),
        body,
      }),
    );
    await waitFor(() => bad.closed, 1000, "bad link closed");
    const error = bad.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.BadMessage);
    expect(good.messages).toEqual([]);
    expect(hub.node.neighbours().map((n) => n.nick)).toEqual(["good"]);
    hub.node.sendChat("still here");
    await waitFor(() => good.messages.length === 1);
  });

  test("frames split at every byte still make a working link", async () => {
    const a = makeNode("alice");
    const b = makeNode("bob");
    link(a.node, b.node, (bytes) => Array.from(bytes, (byte) => Uint8Array.of(byte)));
    await waitFor(() => a.node.neighbours().length === 1 && b.node.neighbours().length === 1);
    a.node.sendChat("byte by byte");
    await waitFor(() => b.messages.length === 1);
    expect(b.messages[0]).toMatchObject({
      nick: "alice",
      text: "byte by byte",
      hops: 1,
      own: false,
      seq: 1,
    });
  });

  test("our own message coming back round a cycle is dropped, not shown again", async () => {
    const a = makeNode("a");
    const b = makeNode("b");
    const c = makeNode("c");
    link(a.node, b.node);
    link(b.node, c.node);
    link(a.node, c.node, undefined, 100); // the slow way round: B's copy reaches C first
    await waitFor(() => [a, b, c].every((x) => x.node.neighbours().length === 2));
    const before = a.node.stats.duplicates;
    a.node.sendChat("round the triangle");
    await waitFor(() => a.node.stats.duplicates > before, 2000, "the copy back at A");
    expect(a.messages.filter((m) => m.text === "round the triangle")).toHaveLength(1);
    expect(b.messages.filter((m) => m.text === "round the triangle")).toHaveLength(1);
    expect(c.messages.filter((m) => m.text === "round the triangle")).toHaveLength(1);
  });

  test("own messages are delivered locally once, marked own, with hops 0", () => {
    const a = makeNode("alice");
    const outcome = a.node.sendChat("note to self");
    expect(outcome.status).toBe("sent");
    expect(a.messages).toHaveLength(1);
    expect(a.messages[0]).toMatchObject({
      own: true,
      hops: 0,
      nick: "alice",
      origin: a.node.nodeIdHex,
    });
  });

  test("text and nick limits are enforced on what we send", () => {
    const a = makeNode("alice");
    expect(a.node.sendChat("").status).toBe("invalid");
    expect(a.node.sendChat("x".repeat(4097)).status).toBe("invalid");
    expect(a.node.sendChat("\u001b[2J").status).toBe("invalid");
    expect(a.node.setNick("\u001b[31mred").ok).toBe(false);
    expect(a.node.setNick("bob").ok).toBe(true);
    expect(a.node.nick).toBe("bob");
  });
});
