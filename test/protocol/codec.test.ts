import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { decodeChatBody, encodeChatBody } from "../../src/protocol/chat.ts";
import {
  FloodKind,
  FrameType,
  MAX_NICK_BYTES,
  MAX_REASON_BYTES,
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
import {
  decodeFlood,
  encodeFlood,
  encodeFloodForward,
  FLOOD_HOPS_OFFSET,
  FLOOD_SIGNATURE_OFFSET,
  floodSigningBytes,
  signFloodFrame,
} from "../../src/protocol/flood.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodeHello, encodeHello } from "../../src/protocol/hello.ts";
import { hex } from "../../src/protocol/hex.ts";
import { encodePeers } from "../../src/protocol/peers.ts";
import { identityFromSeed, verifySignature } from "../../src/secure/identity.ts";

const NODE_ID = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const MESSAGE_ID = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
/** The Ed25519 public key of the seed `01 02 … 20` (docs/PROTOCOL.md §9). */
const BOB_PUBLIC_KEY = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";

/** The one frame in `bytes`, through the real decoder. */
function only(bytes: Uint8Array): Frame {
  const frames = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0] as Frame;
}

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error("expected a ProtocolError");
}

/** Payload bytes for hand-made frames. */
const str = (s: string | number[]) => {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : Uint8Array.from(s);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
};

describe("golden bytes (the examples in docs/PROTOCOL.md)", () => {
  test("HELLO", () => {
    const frame = encodeHello({ nodeId: NODE_ID, listenPort: 9000, nick: "bob" });
    expect(hex(frame)).toBe(
      // length, type, magic "PCHT", version, nodeId, listenPort 9000, nick "bob"
      ["0000002d", "01", "50434854", "02", hex(NODE_ID), "2328", "0003626f62"].join(""),
    );
  });

  test("FLOOD carrying CHAT, signed by the key whose seed is 01 02 … 20", () => {
    // Ed25519 is deterministic: the same key and message give this very signature.
    const bob = identityFromSeed(NODE_ID);
    expect(hex(bob.publicKey)).toBe(BOB_PUBLIC_KEY);
    const frame = signFloodFrame(
      encodeFlood({
        id: MESSAGE_ID,
        origin: bob.publicKey,
        seq: 1,
        sentAt: 1_700_000_000_000,
        hops: 0,
        kind: FloodKind.Chat,
        signature: new Uint8Array(64),
        body: encodeChatBody({ nick: "bob", text: "hi" }),
      }),
      (m) => bob.sign(m),
    );
    const signature =
      "d715c5ddea006a29d2cdc7f0cb7f813d7182cfafdecda13541861a61e062e466" +
      "b965b5b47b8389cc9c77ac4869ffcb63505d79c948acdb9674b67d53fa0e320a";
    expect(hex(frame)).toBe(
      // length, type, id, origin, seq 1, sentAt, hops 0, kind CHAT, signature, nick, text
      [
        "00000088",
        "02",
        hex(MESSAGE_ID),
        BOB_PUBLIC_KEY,
        "00000001",
        "0000018bcfe56800",
        "00",
        "01",
        signature,
        "0003626f62",
        "00026869",
      ].join(""),
    );
    // What was signed: the prefix, then everything but hops and the signature.
    expect(
      new TextDecoder().decode(floodSigningBytes(frame, 5, frame.length).subarray(0, 18)),
    ).toBe("peerchat-flood-v2:");
    const sig = frame.subarray(5 + FLOOD_SIGNATURE_OFFSET, 5 + FLOOD_SIGNATURE_OFFSET + 64);
    expect(verifySignature(bob.publicKey, floodSigningBytes(frame, 5, frame.length), sig)).toBe(
      true,
    );
    // Relays change hops; the signature still holds.
    frame[5 + FLOOD_HOPS_OFFSET] = 7;
    expect(verifySignature(bob.publicKey, floodSigningBytes(frame, 5, frame.length), sig)).toBe(
      true,
    );
  });

  test("PING, PONG, BYE, ERROR", () => {
    expect(hex(encodePing(0x0102030405060708n))).toBe("00000009040102030405060708");
    expect(hex(encodePong(0xffff_ffff_ffff_ffffn))).toBe("0000000905ffffffffffffffff");
    expect(hex(encodeBye("quit"))).toBe("0000000706000471756974");
    expect(hex(encodeError({ code: 7, message: "slow" }))).toBe("000000090700070004736c6f77");
  });
});

describe("round trips", () => {
  test("HELLO", () => {
    const f = only(encodeHello({ nodeId: NODE_ID, listenPort: 65535, nick: "ünïcødé 🎉" }));
    expect(f.type).toBe(FrameType.Hello);
    expect(decodeHello(f.payload)).toEqual({
      version: 2,
      nodeId: NODE_ID,
      listenPort: 65535,
      nick: "ünïcødé 🎉",
    });
  });

  test("FLOOD, and relaying changes only the hops byte", () => {
    const flood = {
      id: MESSAGE_ID,
      origin: NODE_ID,
      seq: 0xffff_ffff,
      sentAt: 2 ** 53 - 1,
      hops: 3,
      kind: 0x7f,
      signature: new Uint8Array(64).fill(0x5a),
      body: Uint8Array.of(1, 2, 3),
    };
    const f = only(encodeFlood(flood));
    expect(f.type).toBe(FrameType.Flood);
    expect(decodeFlood(f.payload)).toEqual(flood);
    const forwarded = encodeFloodForward(f.bytes, f.start, f.end, 4);
    const g = only(forwarded);
    expect(decodeFlood(g.payload)).toEqual({ ...flood, hops: 4 });
    const differing = [...forwarded].flatMap((b, i) => (b === encodeFlood(flood)[i] ? [] : [i]));
    expect(differing).toEqual([5 + FLOOD_HOPS_OFFSET]);
  });

  test("CHAT body at its limits", () => {
    const chat = { nick: "n".repeat(MAX_NICK_BYTES), text: "t".repeat(MAX_TEXT_BYTES) };
    expect(decodeChatBody(encodeChatBody(chat))).toEqual(chat);
    const multibyte = { nick: "é".repeat(16), text: "€".repeat(1365) };
    expect(decodeChatBody(encodeChatBody(multibyte))).toEqual(multibyte);
  });

  test("PING and PONG keep all 64 bits of the nonce", () => {
    for (const nonce of [0n, 1n, 0xdead_beef_cafe_f00dn, 2n ** 64n - 1n]) {
      expect(decodeNonce(only(encodePing(nonce)).payload, "PING")).toBe(nonce);
      expect(decodeNonce(only(encodePong(nonce)).payload, "PONG")).toBe(nonce);
    }
  });

  test("BYE and ERROR, with long reasons cut at a character boundary", () => {
    expect(decodeBye(only(encodeBye("gone fishing")).payload)).toBe("gone fishing");
    expect(decodeError(only(encodeError({ code: 3, message: "nope" })).payload)).toEqual({
      code: 3,
      message: "nope",
    });
    const long = "€".repeat(200); // 600 bytes
    const cut = decodeBye(only(encodeBye(long)).payload);
    expect(new TextEncoder().encode(cut).length).toBeLessThanOrEqual(MAX_REASON_BYTES);
    expect(cut).toBe("€".repeat(85));
  });
});

describe("HELLO validation", () => {
  const hello = (bytes: number[]) => Uint8Array.from(bytes);
  const valid = [0x50, 0x43, 0x48, 0x54, 2, ...NODE_ID, 0x23, 0x28, ...str("bob")];

  test("accepts the valid form", () => {
    expect(decodeHello(hello(valid)).nick).toBe("bob");
  });

  test.each([
    ["bad magic", [0x50, 0x43, 0x48, 0x55, ...valid.slice(4)], "BAD_HANDSHAKE"],
    ["too short for magic", [0x50, 0x43], "BAD_HANDSHAKE"],
    ["truncated node id", valid.slice(0, 20), "TRUNCATED"],
    ["trailing bytes", [...valid, 0], "TRAILING_BYTES"],
    ["invalid UTF-8 nick", [...valid.slice(0, 39), ...str([0xc3, 0x28])], "BAD_UTF8"],
    ["ANSI escape in nick", [...valid.slice(0, 39), ...str("\u001b[31mbob")], "BAD_FIELD"],
    ["empty nick", [...valid.slice(0, 39), ...str("")], "BAD_FIELD"],
    ["33-byte nick", [...valid.slice(0, 39), ...str("x".repeat(33))], "BAD_FIELD"],
  ] as const)("%s is refused", (_name, bytes, code) => {
    expect(protocolError(() => decodeHello(hello([...bytes]))).code).toBe(code);
  });

  test("another version is refused naming both versions, before the rest is parsed", () => {
    const error = protocolError(() => decodeHello(hello([0x50, 0x43, 0x48, 0x54, 1, 0xff])));
    expect(error.code).toBe("VERSION_MISMATCH");
    expect(error.message).toContain("version 1");
    expect(error.message).toContain("version 2");
  });
});

describe("CHAT validation", () => {
  test.each([
    ["empty text", ["bob", ""]],
    ["4,097-byte text", ["bob", "x".repeat(4097)]],
    ["newline in text", ["bob", "a\nb"]],
    ["tab in text", ["bob", "a\tb"]],
    ["NUL in text", ["bob", "a\u0000b"]],
    ["DEL in text", ["bob", "a\u007fb"]],
    ["C1 control (CSI) in text", ["bob", "a\u009b31mb"]],
    ["ESC in nick", ["\u001bbob", "hi"]],
    ["33-byte nick", ["y".repeat(33), "hi"]],
  ] as const)("%s is a protocol error", (_name, [nick, text]) => {
    const body = Uint8Array.from([...str(nick), ...str(text)]);
    expect(protocolError(() => decodeChatBody(body)).code).toBe("BAD_FIELD");
  });

  test("invalid UTF-8 is a protocol error, never replaced", () => {
    const body = Uint8Array.from([...str("bob"), ...str([0x68, 0xff, 0x69])]);
    expect(protocolError(() => decodeChatBody(body)).code).toBe("BAD_UTF8");
  });

  test("a body with bytes after the text is a protocol error", () => {
    const body = Uint8Array.from([...str("bob"), ...str("hi"), 0]);
    expect(protocolError(() => decodeChatBody(body)).code).toBe("TRAILING_BYTES");
  });
});

test("golden bytes: PEERS (the example in docs/PROTOCOL.md)", () => {
  const frame = encodePeers([{ nodeId: NODE_ID, host: "10.0.0.7", port: 9001 }]);
  expect(frame.length).toBe(51);
  expect(hex(frame)).toBe(
    ["0000002f", "03", "0001", hex(NODE_ID), "0008", "31302e302e302e37", "2329"].join(""),
  );
});
