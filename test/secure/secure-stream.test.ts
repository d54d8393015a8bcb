import { describe, expect, test } from "bun:test";
import { FrameType } from "../../src/protocol/constants.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { HANDSHAKE_REFUSED_REASON } from "../../src/secure/constants.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import {
  channelOptions,
  type SecureChannelOptions,
  secureStream,
} from "../../src/secure/secure-stream.ts";
import type { ByteStream, StreamClosed } from "../../src/transport/byte-stream.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** What one end of a secure link saw. */
interface End {
  readonly stream: ByteStream;
  readonly identity: Identity;
  readonly received: Uint8Array[];
  closed: StreamClosed | undefined;
  bytes(): Uint8Array;
}

/**
 * Two secure streams joined through a man in the middle, who may rewrite what passes:
 * `tamper(bytes, towardsResponder)` returns what to deliver instead.
 */
function link(
  options: {
    tamper?: (bytes: Uint8Array, towardsResponder: boolean) => Uint8Array;
    initiator?: Partial<SecureChannelOptions> & { room?: string };
    responder?: Partial<SecureChannelOptions> & { room?: string };
    split?: (bytes: Uint8Array) => Uint8Array[];
  } = {},
): {
  initiator: End;
  responder: End;
  wire: { towardsResponder: number; towardsInitiator: number };
} {
  const [dialler, middleIn] = createMemoryPair(options.split ? { split: options.split } : {});
  const [middleOut, listener] = createMemoryPair(options.split ? { split: options.split } : {});
  const wire = { towardsResponder: 0, towardsInitiator: 0 };
  const tamper = options.tamper ?? ((b) => b);
  middleIn.start({
    data: (chunk) => {
      wire.towardsResponder += chunk.length;
      middleOut.write(tamper(chunk, true));
    },
    // A reset is passed on as a reset, a FIN as a FIN: the dialler tells them apart.
    close: (info) => (info.error ? middleOut.destroy() : middleOut.end()),
  });
  middleOut.start({
    data: (chunk) => {
      wire.towardsInitiator += chunk.length;
      middleIn.write(tamper(chunk, false));
    },
    close: (info) => (info.error ? middleIn.destroy() : middleIn.end()),
  });
  const end = (inner: ByteStream, o: Partial<SecureChannelOptions> & { room?: string } = {}) => {
    const identity = o.identity ?? generateIdentity();
    const stream = secureStream(inner, { ...channelOptions(identity, o.room ?? "lobby"), ...o });
    const e: End = {
      stream,
      identity,
      received: [],
      closed: undefined,
      bytes: () => Uint8Array.from(e.received.flatMap((c) => [...c])),
    };
    stream.start({
      data: (chunk) => e.received.push(chunk.slice()),
      close: (info) => {
        e.closed = info;
      },
    });
    return e;
  };
  return {
    initiator: end(dialler, options.initiator),
    responder: end(listener, options.responder),
    wire,
  };
}

const helloOf = (e: End, nick: string) =>
  encodeHello({ nodeId: e.identity.publicKey, listenPort: 0, nick });

describe("the secure channel", () => {
  test("frames pass both ways intact, HELLO first, whatever the chunking (seeded)", async () => {
    const random = seededRandom(testSeed(31));
    const split = (bytes: Uint8Array) => {
      const parts: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + randomInt(random, Math.min(700, bytes.length - at));
        parts.push(bytes.subarray(at, at + n));
        at += n;
      }
      return parts;
    };
    const { initiator, responder } = link({ split });
    initiator.stream.write(helloOf(initiator, "alice"));
    responder.stream.write(helloOf(responder, "bob"));
    // Everything written, before and after the handshake, in sizes up to 3 Noise messages.
    const sentBy = new Map<End, Uint8Array[]>([
      [initiator, []],
      [responder, []],
    ]);
    for (let i = 0; i < 300; i++) {
      for (const e of [initiator, responder]) {
        const size = i % 50 === 0 ? 150_000 : 1 + randomInt(random, 2000);
        const bytes = randomBytes(random, size);
        expect(e.stream.write(bytes)).toBe("queued");
        sentBy.get(e)?.push(bytes);
      }
      if (i % 20 === 0) await Bun.sleep(0);
    }
    const expected = (e: End) => Uint8Array.from((sentBy.get(e) ?? []).flatMap((b) => [...b]));
    for (const [from, to, nick] of [
      [initiator, responder, "alice"],
      [responder, initiator, "bob"],
    ] as const) {
      const wanted = expected(from);
      await waitFor(() => to.bytes().length >= wanted.length + helloOf(from, nick).length, 10_000);
      const got = to.bytes();
      const hello = new FrameDecoder().push(got)[0];
      expect(hello?.type).toBe(FrameType.Hello);
      expect(got.subarray(0, helloOf(from, nick).length)).toEqual(helloOf(from, nick));
      expect(got.subarray(helloOf(from, nick).length)).toEqual(wanted);
    }
    expect(initiator.closed).toBeUndefined();
    expect(responder.closed).toBeUndefined();
  });

  test("the dialler is up only once the listener is: HELLO arrives after the responder's", async () => {
    const { initiator, responder } = link();
    initiator.stream.write(helloOf(initiator, "alice"));
    responder.stream.write(helloOf(responder, "bob"));
    await waitFor(() => initiator.received.length > 0);
    // By the time the dialler sees the listener's HELLO, the listener has the dialler's.
    expect(responder.received.length).toBeGreaterThan(0);
  });

  test("a flipped ciphertext bit closes the link; nothing forged is delivered", async () => {
    let armed = false;
    const { initiator, responder } = link({
      tamper: (bytes, towardsResponder) => {
        // Once the link is up, the next message towards the responder gets one bit flipped.
        if (!towardsResponder || !armed) return bytes;
        armed = false;
        const copy = bytes.slice();
        copy[copy.length - 20] = (copy[copy.length - 20] as number) ^ 0x01;
        return copy;
      },
    });
    initiator.stream.write(helloOf(initiator, "alice"));
    responder.stream.write(helloOf(responder, "bob"));
    await waitFor(() => initiator.received.length > 0);
    armed = true;
    initiator.stream.write(new Uint8Array(500).fill(0x41));
    await waitFor(() => responder.closed !== undefined, 5000, "responder closed");
    expect(responder.closed?.reason).toContain("tampered");
    // Nothing but the initiator's HELLO was delivered: no byte of the tampered message.
    expect(responder.bytes()).toEqual(helloOf(initiator, "alice"));
  });

  test("another room: refused at message 1; the listener sends not a byte", async () => {
    const { initiator, responder, wire } = link({ initiator: { room: "secret" } });
    initiator.stream.write(helloOf(initiator, "alice"));
    responder.stream.write(helloOf(responder, "bob"));
    await waitFor(() => initiator.closed !== undefined, 5000, "initiator closed");
    expect(initiator.closed?.reason).toBe(HANDSHAKE_REFUSED_REASON);
    expect(wire.towardsInitiator).toBe(0);
    expect(initiator.received).toEqual([]);
    expect(responder.received).toEqual([]);
  });

  test("a HELLO naming someone else's node id fails the signature check", async () => {
    const { initiator, responder } = link();
    const someoneElse = generateIdentity();
    initiator.stream.write(
      encodeHello({ nodeId: someoneElse.publicKey, listenPort: 0, nick: "eve" }),
    );
    responder.stream.write(helloOf(responder, "bob"));
    await waitFor(() => responder.closed !== undefined, 5000, "responder closed");
    expect(responder.closed?.reason).toContain("identity signature does not match");
    expect(responder.received).toEqual([]);
  });

  test("a low-order ephemeral key in message 2 is rejected", async () => {
    // The order-8 point of Curve25519: any DH with it gives a key anyone can compute.
    const lowOrder = Uint8Array.from(
      Buffer.from("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", "hex"),
    );
    const { initiator, responder } = link({
      tamper: (bytes, towardsResponder) => {
        if (towardsResponder) return bytes;
        const copy = bytes.slice();
        copy.set(lowOrder, 2); // message 2 starts with the responder's ephemeral key
        return copy;
      },
    });
    initiator.stream.write(helloOf(initiator, "alice"));
    responder.stream.write(helloOf(responder, "bob"));
    await waitFor(() => initiator.closed !== undefined, 5000, "initiator closed");
    expect(initiator.closed?.reason).toBe("handshake failed (bad-dh)");
    expect(initiator.received).toEqual([]);
  });
});

describe("the secure channel, out of order", () => {
  test("a second message 1 while the listener is still to answer closes the link, no exception", async () => {
    const [dialler, listener] = createMemoryPair();
    const stream = secureStream(listener, channelOptions(generateIdentity(), "lobby"));
    let closed: StreamClosed | undefined;
    stream.start({ data() {}, close: (info) => (closed = info) });
    // No HELLO written yet, so the listener cannot answer message 1; a second arrives.
    const { HandshakeState } = await import("../../src/noise/handshake-state.ts");
    const { generateKeyPair } = await import("../../src/noise/primitives.ts");
    const { roomKey } = await import("../../src/secure/room.ts");
    const { NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } = await import("../../src/secure/constants.ts");
    const initiator = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: true,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey("lobby")],
    });
    const first = initiator.writeMessage();
    if (!first.ok) throw new Error("message 1");
    const framed = Uint8Array.of(0, first.message.length, ...first.message);
    dialler.start({ data() {}, close() {} });
    dialler.write(framed);
    dialler.write(framed);
    await waitFor(() => closed !== undefined, 2000, "closed");
    expect(closed?.reason).toBe("handshake failed (message out of turn)");
  });
});
