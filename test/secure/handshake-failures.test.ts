import { afterEach, describe, expect, test } from "bun:test";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { generateKeyPair } from "../../src/noise/primitives.ts";
import { concatBytes } from "../../src/protocol/bytes.ts";
import { FrameType, WireErrorCode } from "../../src/protocol/constants.ts";
import { decodeError, encodeBye, encodeError, encodePing } from "../../src/protocol/control.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import {
  HANDSHAKE_REFUSED_REASON,
  HANDSHAKE_TURNED_AWAY_REASON,
  MAX_TURNING_AWAY,
  NOISE_PROLOGUE,
  NOISE_PROTOCOL_NAME,
} from "../../src/secure/constants.ts";
import {
  hangUpReason,
  SILENT_HANG_UP_REASON,
  sayingNo,
  unansweredReason,
} from "../../src/secure/handshake-refusal.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { roomKey } from "../../src/secure/room.ts";
import { channelOptions, secureStream } from "../../src/secure/secure-stream.ts";
import type { ByteStream, StreamClosed } from "../../src/transport/byte-stream.ts";
import { dialTcp, listenTcp, type TcpListener, type TcpStream } from "../../src/transport/tcp.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** What a secure stream asked of the stream under it. */
interface Watch {
  /** Bytes put on the wire. */
  readonly wire: Uint8Array[];
  /** How it let go: `end` is a FIN, `destroy` a reset. */
  released: "end" | "destroy" | undefined;
}

/** One end of a secure link. */
interface End extends Watch {
  readonly stream: ByteStream;
  /** Frames the node above this end received. */
  readonly frames: { type: number; payload: Uint8Array }[];
  closed: StreamClosed | undefined;
}

/** `inner`, watched: its writes recorded, its end and destroy noted. */
function watched(inner: ByteStream, end: Watch): ByteStream {
  return {
    direction: inner.direction,
    remote: inner.remote,
    local: inner.local,
    get pendingBytes() {
      return inner.pendingBytes;
    },
    get bytesSent() {
      return inner.bytesSent;
    },
    get closed() {
      return inner.closed;
    },
    start: (handler) => inner.start(handler),
    write: (bytes, start = 0, stop = bytes.length) => {
      end.wire.push(bytes.slice(start, stop));
      return inner.write(bytes, start, stop);
    },
    end: (final) => {
      if (final) end.wire.push(final.slice());
      end.released ??= "end";
      inner.end(final);
    },
    destroy: () => {
      end.released ??= "destroy";
      inner.destroy();
    },
    pause: () => inner.pause(),
    resume: () => inner.resume(),
  };
}

/** A secure link in memory. `onHello` is what the node above each end does with a HELLO. */
function link(hellos: {
  initiator: (me: Identity) => Uint8Array;
  responder: (me: Identity) => Uint8Array;
  onHello?: (side: "initiator" | "responder", stream: ByteStream) => void;
}): { initiator: End; responder: End } {
  const [dialler, listener] = createMemoryPair();
  const make = (side: "initiator" | "responder", inner: ByteStream): End => {
    const identity = generateIdentity();
    const watch: Watch = { wire: [], released: undefined };
    const stream = secureStream(watched(inner, watch), channelOptions(identity, "lobby"));
    const e: End = Object.assign(watch, { stream, frames: [], closed: undefined });
    const decoder = new FrameDecoder();
    stream.start({
      data: (chunk) => {
        for (const f of decoder.push(chunk)) {
          e.frames.push({ type: f.type, payload: f.payload.slice() });
          if (f.type === FrameType.Hello) hellos.onHello?.(side, stream);
        }
      },
      close: (info) => {
        e.closed = info;
      },
    });
    stream.write(hellos[side](identity));
    return e;
  };
  return { initiator: make("initiator", dialler), responder: make("responder", listener) };
}

/** The Noise messages in `wire`, each `u16 length | message`, lengths dropped. */
function messages(wire: readonly Uint8Array[]): Uint8Array[] {
  const bytes = concatBytes(wire);
  const out: Uint8Array[] = [];
  for (let at = 0; at + 2 <= bytes.length; ) {
    const length = ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
    out.push(bytes.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return out;
}

const honest = (me: Identity, nick = "honest") =>
  encodeHello({ nodeId: me.publicKey, listenPort: 0, nick });
/** A HELLO naming a node id whose key did not sign this side's Noise static key. */
const impostor = () =>
  encodeHello({ nodeId: generateIdentity().publicKey, listenPort: 0, nick: "eve" });

describe("the secure channel refuses a bad handshake", () => {
  test("a bad identity signature in message 3: the responder resets, past message 2 it sends nothing", async () => {
    const { initiator, responder } = link({ initiator: impostor, responder: (me) => honest(me) });
    await waitFor(() => responder.closed && initiator.closed, 5000, "both closed");
    expect(responder.closed?.reason).toContain("identity signature does not match");
    expect(responder.released).toBe("destroy");
    expect(messages(responder.wire).map((m) => m.length > 48)).toEqual([true]); // message 2 only
    expect([initiator.frames, responder.frames]).toEqual([[], []]);
  });

  test("a bad identity signature in message 2: the initiator resets, message 3 never leaves", async () => {
    const { initiator, responder } = link({ initiator: (me) => honest(me), responder: impostor });
    await waitFor(() => responder.closed && initiator.closed, 5000, "both closed");
    expect(initiator.closed?.reason).toContain("identity signature does not match");
    expect(initiator.released).toBe("destroy");
    expect(messages(initiator.wire).map((m) => m.length)).toEqual([48]); // message 1 only
    expect([initiator.frames, responder.frames]).toEqual([[], []]);
  });

  test.each(["initiator", "responder"] as const)(
    "a HELLO of another version from the %s goes up unchecked, for the node to refuse",
    async (from) => {
      const v3 = () =>
        encodeHello({ version: 3, nodeId: generateIdentity().publicKey, listenPort: 0, nick: "x" });
      const ends = link({
        initiator: from === "initiator" ? v3 : (me) => honest(me),
        responder: from === "responder" ? v3 : (me) => honest(me),
      });
      const to = from === "initiator" ? ends.responder : ends.initiator;
      await waitFor(() => to.frames.length > 0, 5000, "the HELLO handed up");
      expect(to.frames[0]?.type).toBe(FrameType.Hello);
      expect(to.frames[0]?.payload[4]).toBe(3);
      expect(to.closed).toBeUndefined();
    },
  );

  test("the responder's node reads the HELLO before the confirmation leaves: its refusal is the confirmation", async () => {
    const refusal = encodeError({ code: WireErrorCode.BadHandshake, message: "no thanks" });
    const { initiator, responder } = link({
      initiator: (me) => honest(me, "alice"),
      responder: (me) => honest(me, "bob"),
      onHello: (side, stream) => {
        if (side === "responder") stream.end(refusal);
      },
    });
    await waitFor(() => initiator.closed, 5000, "initiator closed");
    // Towards the initiator: message 2, then one transport message holding the ERROR.
    const sizes = messages(responder.wire).map((m) => m.length);
    expect(sizes.slice(1)).toEqual([refusal.length + 16]);
    expect(responder.released).toBe("end");
    // The initiator's node gets the ERROR in place of the responder's HELLO: no link.
    expect(initiator.frames.map((f) => f.type)).toEqual([FrameType.Error]);
    expect(decodeError(initiator.frames[0]?.payload ?? new Uint8Array(0))).toEqual({
      code: WireErrorCode.BadHandshake,
      message: "no thanks",
    });
    expect(initiator.closed?.reason).toBe("refused: no thanks");
    // Message 1 and message 3, nothing after: a refusal gets no reply.
    expect(messages(initiator.wire).length).toBe(2);
    expect(initiator.released).toBe("end");
  });

  test("an accepted link's first frames ride in the confirmation, after the responder's HELLO", async () => {
    const ping = encodePing(7n);
    const { initiator, responder } = link({
      initiator: (me) => honest(me, "alice"),
      responder: (me) => honest(me, "bob"),
      onHello: (side, stream) => {
        if (side === "responder") stream.write(ping);
      },
    });
    await waitFor(() => initiator.frames.length >= 2, 5000, "HELLO and PING");
    expect(
      messages(responder.wire)
        .map((m) => m.length)
        .slice(1),
    ).toEqual([ping.length + 16]);
    expect(initiator.frames.map((f) => f.type)).toEqual([FrameType.Hello, FrameType.Ping]);
    expect([initiator.closed, responder.closed]).toEqual([undefined, undefined]);
  });
});

/** A responder whose node refuses the connection at once, before writing its HELLO. */
function refusingResponder(
  listener: ByteStream,
  final: Uint8Array | undefined,
  options = channelOptions(generateIdentity(), "lobby"),
): End {
  const watch: Watch = { wire: [], released: undefined };
  const stream = secureStream(watched(listener, watch), options);
  const e: End = Object.assign(watch, { stream, frames: [], closed: undefined });
  stream.start({ data() {}, close: (info) => (e.closed = info) });
  stream.end(final);
  return e;
}

/** An initiator whose node writes its HELLO and records the frames it is handed. */
function dialler(inner: ByteStream, room = "lobby"): End {
  const identity = generateIdentity();
  const watch: Watch = { wire: [], released: undefined };
  const stream = secureStream(watched(inner, watch), channelOptions(identity, room));
  const e: End = Object.assign(watch, { stream, frames: [], closed: undefined });
  const decoder = new FrameDecoder();
  stream.start({
    data: (chunk) => {
      for (const f of decoder.push(chunk))
        e.frames.push({ type: f.type, payload: f.payload.slice() });
    },
    close: (info) => (e.closed = info),
  });
  stream.write(honest(identity));
  return e;
}

describe("a refusal before the responder's HELLO", () => {
  const full = encodeError({
    code: WireErrorCode.TooManyPeers,
    message: "too many peers (limit 1)",
  });

  test("travels as message 2: the initiator's node gets the ERROR first, and no message 3 leaves", async () => {
    const [d, l] = createMemoryPair();
    const responder = refusingResponder(l, full);
    const initiator = dialler(d);
    await waitFor(() => initiator.closed && responder.closed, 5000, "both closed");
    // Message 2: e (32), s (32 + 16), the ERROR frame as its payload, and a tag (16).
    expect(messages(responder.wire).map((m) => m.length)).toEqual([96 + full.length]);
    expect(responder.released).toBe("end");
    expect(initiator.frames.map((f) => f.type)).toEqual([FrameType.Error]);
    expect(decodeError(initiator.frames[0]?.payload ?? new Uint8Array(0))).toEqual({
      code: WireErrorCode.TooManyPeers,
      message: "too many peers (limit 1)",
    });
    expect(messages(initiator.wire).map((m) => m.length)).toEqual([48]); // message 1 only
    expect(initiator.released).toBe("end");
    expect(initiator.closed?.reason).toBe("refused: too many peers (limit 1)");
  });

  test("a quiet end, or a BYE (busy, shutting down), turns it away at once: a FIN and not a byte; the dialler says so, not 'different room'", async () => {
    const bye = encodeBye("shutting down");
    for (const final of [undefined, bye]) {
      const [d, l] = createMemoryPair();
      const responder = refusingResponder(l, final);
      expect(responder.released).toBe("end");
      const initiator = dialler(d);
      await waitFor(() => initiator.closed, 5000, "initiator closed");
      expect(responder.wire).toEqual([]);
      expect(initiator.closed?.reason).toBe(HANDSHAKE_TURNED_AWAY_REASON);
      expect(initiator.frames).toEqual([]);
    }
  });

  test("turns away with a FIN at most 128 connections at a time; past that, resets", async () => {
    const options = channelOptions(generateIdentity(), "lobby");
    const turned = Array.from({ length: MAX_TURNING_AWAY + 1 }, () => {
      const [, l] = createMemoryPair();
      return refusingResponder(l, undefined, options);
    });
    expect(turned.map((e) => e.released)).toEqual([
      ...Array(MAX_TURNING_AWAY).fill("end"),
      "destroy",
    ]);
    // Their places come back as they close.
    await waitFor(() => turned.every((e) => e.closed), 5000, "all closed");
    const [d, l] = createMemoryPair();
    const again = refusingResponder(l, undefined, options);
    expect(again.released).toBe("end");
    const initiator = dialler(d);
    await waitFor(() => initiator.closed, 5000, "initiator closed");
    expect(initiator.closed?.reason).toBe(HANDSHAKE_TURNED_AWAY_REASON);
  });

  test("a handshake deadline after the node's HELLO is a reset, not a turn-away", async () => {
    const [d, l] = createMemoryPair();
    const watch: Watch = { wire: [], released: undefined };
    const stream = secureStream(watched(l, watch), channelOptions(generateIdentity(), "lobby"));
    stream.start({ data() {}, close() {} });
    stream.write(honest(generateIdentity()));
    stream.end(
      encodeError({ code: WireErrorCode.HandshakeTimeout, message: "no HELLO within 5 s" }),
    );
    expect(watch.released).toBe("destroy");
    const initiator = dialler(d);
    await waitFor(() => initiator.closed, 5000, "initiator closed");
    expect(initiator.closed?.reason).toBe(HANDSHAKE_REFUSED_REASON);
  });

  test("waits for message 1 in at most 32 connections at a time; past that, turns it away at once", async () => {
    const options = channelOptions(generateIdentity(), "lobby");
    const pairs = Array.from({ length: 33 }, () => createMemoryPair());
    const waiting = pairs.map(([, l]) => refusingResponder(l, full, options));
    expect(waiting.map((e) => e.released)).toEqual([...Array(32).fill(undefined), "end"]);
    expect(waiting[32]?.wire).toEqual([]);
    // One place frees up once its connection is answered and closed.
    const initiator = dialler((pairs[0] as [ByteStream, ByteStream])[0]);
    await waitFor(() => initiator.closed && waiting[0]?.closed, 5000, "first answered");
    const [, l] = createMemoryPair();
    const another = refusingResponder(l, full, options);
    expect(another.released).toBeUndefined();
    for (const e of [...waiting, another]) e.stream.destroy();
  });

  test("a dialler that never sends message 1 is reset at the handshake deadline, without a byte", async () => {
    const [, l] = createMemoryPair();
    const responder = refusingResponder(l, full);
    await Bun.sleep(4500);
    expect(responder.released).toBeUndefined();
    await waitFor(() => responder.closed, 2000, "closed at the deadline");
    expect(responder.released).toBe("destroy");
    expect(responder.wire).toEqual([]);
    expect(responder.closed?.reason).toBe("no handshake within 5 s");
  }, 10_000);

  test("a message 2 payload that is an ERROR frame but does not decode fails the handshake", async () => {
    const [d, l] = createMemoryPair();
    const initiator = dialler(d);
    // A hand-driven responder: message 1 in, then message 2 carrying a broken ERROR.
    const responder = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: false,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey("lobby")],
    });
    const broken = Uint8Array.of(0, 0, 0, 6, FrameType.Error, 0, 6, 0, 1, 0xff); // bad UTF-8
    let read = false;
    l.start({
      data: (chunk) => {
        if (read) return;
        read = true;
        expect(responder.readMessage(chunk.subarray(2)).ok).toBe(true);
        const second = responder.writeMessage(broken);
        if (!second.ok) throw new Error("message 2");
        l.write(Uint8Array.of(second.message.length >> 8, second.message.length & 0xff));
        l.write(second.message);
      },
      close() {},
    });
    await waitFor(() => initiator.closed, 5000, "initiator closed");
    expect(initiator.closed?.reason).toBe("handshake failed (malformed refusal)");
    expect(initiator.released).toBe("destroy");
    expect(initiator.frames).toEqual([]);
  });
});

describe("another room, over TCP", () => {
  let listener: TcpListener | undefined;
  afterEach(() => {
    listener?.close();
    listener = undefined;
  });

  test("the listener reads message 1, then resets the connection without sending a byte", async () => {
    let listenerClosed: StreamClosed | undefined;
    const identity = generateIdentity();
    listener = listenTcp({
      host: "127.0.0.1",
      port: 0,
      onStream: (tcp) => {
        const stream = secureStream(tcp, channelOptions(identity, "lobby"));
        stream.start({ data() {}, close: (info) => (listenerClosed = info) });
        stream.write(encodeHello({ nodeId: identity.publicKey, listenPort: 0, nick: "bob" }));
      },
    });
    const dialler = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: true,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey("another room")],
    });
    const first = dialler.writeMessage();
    if (!first.ok) throw new Error("message 1");
    let received = 0;
    let fin = false;
    let closedWith: string | undefined;
    await Bun.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => {
          socket.write(Uint8Array.of(0, first.message.length, ...first.message));
        },
        data: (_socket, chunk) => {
          received += chunk.length;
        },
        end: () => {
          fin = true;
        },
        close: (_socket, error) => {
          closedWith = (error as { code?: string } | undefined)?.code ?? "clean";
        },
      },
    });
    await waitFor(() => closedWith !== undefined, 5000, "dialler closed");
    expect({ received, fin, closedWith }).toEqual({
      received: 0,
      fin: false,
      closedWith: "ECONNRESET",
    });
    expect(listenerClosed?.reason).toBe(HANDSHAKE_REFUSED_REASON);
  });
});

describe("turned away, over TCP", () => {
  let listener: TcpListener | undefined;
  afterEach(() => {
    listener?.close();
    listener = undefined;
  });

  test("a listener turning a connection away sends a FIN and not a byte, even with message 1 unread; it reads on until the dialler closes", async () => {
    let accepted: TcpStream | undefined;
    let listenerClosed: StreamClosed | undefined;
    listener = listenTcp({
      host: "127.0.0.1",
      port: 0,
      onStream: (tcp) => {
        // Not read until it is turned away: message 1 waits in the kernel, unread.
        tcp.pause();
        accepted = tcp;
      },
    });
    const dialler = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: true,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey("lobby")],
    });
    const first = dialler.writeMessage();
    if (!first.ok) throw new Error("message 1");
    let sent = false;
    let received = 0;
    let fin = false;
    let closedWith: string | undefined;
    await Bun.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      socket: {
        binaryType: "uint8array",
        open: (socket) => {
          socket.write(Uint8Array.of(0, first.message.length, ...first.message));
          sent = true;
        },
        data: (_socket, chunk) => {
          received += chunk.length;
        },
        end: (socket) => {
          fin = true;
          socket.end();
        },
        close: (_socket, error) => {
          closedWith = (error as { code?: string } | undefined)?.code ?? "clean";
        },
      },
    });
    const tcp = await waitFor(
      () => (sent ? accepted : undefined),
      5000,
      "message 1 sent, accepted",
    );
    const stream = secureStream(tcp, channelOptions(generateIdentity(), "lobby"));
    stream.start({ data() {}, close: (info) => (listenerClosed = info) });
    stream.end(); // the node is busy: a quiet close before its HELLO
    await waitFor(() => closedWith !== undefined && listenerClosed, 5000, "both closed");
    expect({ received, fin, closedWith }).toEqual({ received: 0, fin: true, closedWith: "clean" });
    // Closed because the dialler closed its end, not by the deadline's reset.
    expect(listenerClosed).toEqual({ by: "local", reason: "turned away before the handshake" });
  });

  test("the dialler reports a turn-away as one, and another room as another room", async () => {
    const identity = generateIdentity();
    const turnAway = { value: true };
    listener = listenTcp({
      host: "127.0.0.1",
      port: 0,
      onStream: (tcp) => {
        const stream = secureStream(tcp, channelOptions(identity, "lobby"));
        stream.start({ data() {}, close() {} });
        if (turnAway.value) stream.end();
        else stream.write(encodeHello({ nodeId: identity.publicKey, listenPort: 0, nick: "bob" }));
      },
    });
    const dial = async (room: string) => {
      const result = await dialTcp({ host: "127.0.0.1", port: (listener as TcpListener).port });
      if (!result.ok) throw result.error;
      const end = dialler(result.stream, room);
      await waitFor(() => end.closed, 5000, "dialler closed");
      return end.closed?.reason;
    };
    expect(await dial("lobby")).toBe(HANDSHAKE_TURNED_AWAY_REASON);
    turnAway.value = false;
    expect(await dial("another room")).toBe(HANDSHAKE_REFUSED_REASON);
  });
});

describe("what a dialler says when the listener closed during the handshake", () => {
  test.each([
    ["a reset, not a byte in answer: another room", false, true, HANDSHAKE_REFUSED_REASON],
    ["a FIN, not a byte in answer: turned away (busy)", false, false, HANDSHAKE_TURNED_AWAY_REASON],
    ["a reset after an answer: the room was right", true, true, "closed during the handshake"],
    ["a FIN after an answer", true, false, "closed during the handshake"],
  ])("%s", (_name, answered, reset, reason) => {
    expect(unansweredReason(answered, reset)).toBe(reason);
  });
});

describe("sayingNo: how a responder whose node ends the stream during the handshake refuses", () => {
  const error = encodeError({
    code: WireErrorCode.TooManyPeers,
    message: "too many peers (limit 2)",
  });
  test.each([
    ["a full peer's ERROR before its HELLO: in message 2", true, true, true, error, true, true],
    ["busy, no ERROR: turned away", true, true, true, undefined, false, true],
    ["an ERROR after its HELLO (the deadline): a reset", true, true, false, error, false, false],
    ["no ERROR after its HELLO: turned away", true, true, false, undefined, false, true],
    ["message 2 already sent: a reset", true, false, true, error, false, false],
    ["the dialler: a reset", false, true, true, error, false, false],
  ] as const)("%s", (_name, inbound, beforeSecond, nodeSilent, final, inMessage2, turnAway) => {
    expect(sayingNo({ inbound, beforeSecond, nodeSilent, final })).toEqual({
      inMessage2,
      turnAway,
    });
  });

  test("the dialler tells a turn-away from another room; the listener says it was closed", () => {
    expect(hangUpReason(true, false, true)).toBe(HANDSHAKE_REFUSED_REASON);
    expect(hangUpReason(true, false, false)).toBe(HANDSHAKE_TURNED_AWAY_REASON);
    expect(hangUpReason(true, true, true)).toBe("closed during the handshake");
    expect(hangUpReason(false, true, true)).toBe("closed during the handshake");
    // Not a byte from the dialler: a port check (a dial-back), not a failed join.
    expect(hangUpReason(false, false, true)).toBe(SILENT_HANG_UP_REASON);
  });
});
