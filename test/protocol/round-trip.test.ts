import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { decodeChatBody, encodeChatBody } from "../../src/protocol/chat.ts";
import {
  FloodKind,
  FrameType,
  MAX_NICK_BYTES,
  MAX_TEXT_BYTES,
} from "../../src/protocol/constants.ts";
import {
  decodeBye,
  decodeError,
  decodeNonce,
  encodeBye,
  encodeError,
  encodePing,
  encodePong,
} from "../../src/protocol/control.ts";
import { decodeFlood, encodeFlood } from "../../src/protocol/flood.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodeHello, encodeHello } from "../../src/protocol/hello.ts";
import {
  decodePeers,
  encodePeers,
  MAX_PEERS_PER_FRAME,
  type PeerAddress,
} from "../../src/protocol/peers.ts";
import {
  decodePresenceBody,
  encodePresenceBody,
  type Presence,
} from "../../src/protocol/presence.ts";
import { utf8ByteLength } from "../../src/protocol/text.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

const ALPHABET = [
  ..."abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,!?-_~/<>[]{}#@",
  "é",
  "ü",
  "€",
  "中",
  "🎉",
  "👩‍💻",
];

/** A random valid string of 1..maxBytes UTF-8 bytes (no control characters). */
function randomText(random: () => number, maxBytes: number, minBytes = 1): string {
  const target = minBytes + randomInt(random, maxBytes - minBytes + 1);
  const parts: string[] = [];
  let bytes = 0;
  for (;;) {
    const next = ALPHABET[randomInt(random, ALPHABET.length)] as string;
    const size = utf8ByteLength(next);
    if (bytes + size > target) break;
    parts.push(next);
    bytes += size;
    if (bytes === target) break;
  }
  return parts.length > 0 ? parts.join("") : "x";
}

function randomIp(random: () => number): string {
  if (random() < 0.5) return Array.from({ length: 4 }, () => randomInt(random, 256)).join(".");
  return Array.from({ length: 8 }, () => randomInt(random, 0x10000).toString(16)).join(":");
}

const u64 = (random: () => number) =>
  (BigInt(randomInt(random, 2 ** 32)) << 32n) | BigInt(randomInt(random, 2 ** 32));

function only(bytes: Uint8Array, type: number): Uint8Array {
  const frames: Frame[] = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  expect(frames[0]?.type).toBe(type);
  return frames[0]?.payload as Uint8Array;
}

describe("every frame type round-trips (seeded, 500 random instances each)", () => {
  const seed = testSeed(0xc0dec);
  const cases = 500;

  test("HELLO", () => {
    const random = seededRandom(seed);
    for (let i = 0; i < cases; i++) {
      const hello = {
        nodeId: randomBytes(random, 32),
        listenPort: randomInt(random, 65536),
        nick: randomText(random, MAX_NICK_BYTES),
      };
      expect(
        decodeHello(only(encodeHello(hello), FrameType.Hello)),
        `seed ${seed} case ${i}`,
      ).toEqual({ version: 2, ...hello });
    }
  });

  test("FLOOD with CHAT and with unknown kinds", () => {
    const random = seededRandom(seed + 1);
    for (let i = 0; i < cases; i++) {
      const chat = {
        nick: randomText(random, MAX_NICK_BYTES),
        text: randomText(random, MAX_TEXT_BYTES),
      };
      const kind = random() < 0.5 ? FloodKind.Chat : 0x10 + randomInt(random, 0xf0);
      const body =
        kind === FloodKind.Chat
          ? encodeChatBody(chat)
          : randomBytes(random, randomInt(random, 2000));
      const flood = {
        id: randomBytes(random, 16),
        origin: randomBytes(random, 32),
        seq: randomInt(random, 2 ** 32),
        sentAt: randomInt(random, 2 ** 53),
        hops: randomInt(random, 256),
        kind,
        signature: randomBytes(random, 64),
        body,
      };
      const decoded = decodeFlood(only(encodeFlood(flood), FrameType.Flood));
      expect(decoded, `seed ${seed} case ${i}`).toEqual(flood);
      if (kind === FloodKind.Chat) expect(decodeChatBody(decoded.body)).toEqual(chat);
    }
  });

  test("PING, PONG, BYE, ERROR", () => {
    const random = seededRandom(seed + 2);
    for (let i = 0; i < cases; i++) {
      const nonce = u64(random);
      expect(decodeNonce(only(encodePing(nonce), FrameType.Ping), "PING")).toBe(nonce);
      expect(decodeNonce(only(encodePong(nonce), FrameType.Pong), "PONG")).toBe(nonce);
      const reason = randomText(random, 200);
      expect(decodeBye(only(encodeBye(reason), FrameType.Bye))).toBe(reason);
      const error = { code: randomInt(random, 65536), message: randomText(random, 200) };
      expect(decodeError(only(encodeError(error), FrameType.Error))).toEqual(error);
    }
  });

  test("PEERS", () => {
    const random = seededRandom(seed + 3);
    for (let i = 0; i < cases; i++) {
      const peers: PeerAddress[] = Array.from(
        { length: randomInt(random, MAX_PEERS_PER_FRAME + 1) },
        () => ({
          nodeId: randomBytes(random, 32),
          host: randomIp(random),
          port: 1 + randomInt(random, 65535),
        }),
      );
      expect(
        decodePeers(only(encodePeers(peers), FrameType.Peers)),
        `seed ${seed} case ${i}`,
      ).toEqual(peers);
    }
  });

  test("presence bodies (JOIN, LEAVE, NICK, ALIVE)", () => {
    const random = seededRandom(seed + 4);
    for (let i = 0; i < cases; i++) {
      const nick = randomText(random, MAX_NICK_BYTES);
      const all: Presence[] = [
        { kind: FloodKind.Join, nick },
        { kind: FloodKind.Leave, reason: random() < 0.1 ? "" : randomText(random, 256) },
        { kind: FloodKind.Nick, nick },
        { kind: FloodKind.Alive, nick },
      ];
      for (const p of all) expect(decodePresenceBody(p.kind, encodePresenceBody(p))).toEqual(p);
    }
  });
});

describe("PEERS validation", () => {
  const entry = (host: string, port: number) => {
    const h = new TextEncoder().encode(host);
    return new ByteWriter(32 + 2 + h.length + 2).bytes(new Uint8Array(32)).str(h).u16(port).done();
  };
  const peers = (...entries: Uint8Array[]) => {
    const w = new ByteWriter(2 + entries.reduce((n, e) => n + e.length, 0)).u16(entries.length);
    for (const e of entries) w.bytes(e);
    return w.done();
  };
  const code = (payload: Uint8Array) => {
    try {
      decodePeers(payload);
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
      return (error as ProtocolError).code;
    }
    return "accepted";
  };

  test("an IPv4 and an IPv6 entry are accepted", () => {
    expect(code(peers(entry("10.0.0.1", 9000), entry("fe80::1", 1)))).toBe("accepted");
  });
  test.each([
    ["a host name (we would have to resolve it)", entry("evil.example", 9000), "BAD_FIELD"],
    ["port 0 (not listening: never advertised)", entry("10.0.0.1", 0), "BAD_FIELD"],
    ["a bracketed IPv6 host", entry("[::1]", 9000), "BAD_FIELD"],
  ] as const)("%s is refused", (_name, e, expected) => {
    expect(code(peers(e))).toBe(expected);
  });
  test("more than 64 entries is refused before they are read", () => {
    expect(code(new ByteWriter(2).u16(65).done())).toBe("BAD_FIELD");
  });
  test("a count larger than the entries present is truncated", () => {
    expect(code(new ByteWriter(2).u16(2).done())).toBe("TRUNCATED");
  });
});
