import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { FloodKind } from "../../src/protocol/constants.ts";
import {
  decodeBye,
  decodeError,
  decodeNonce,
  encodeBye,
  encodeError,
  encodePing,
} from "../../src/protocol/control.ts";
import { decodePeers, encodePeers } from "../../src/protocol/peers.ts";
import { decodePresenceBody, encodePresenceBody } from "../../src/protocol/presence.ts";

// docs/PROTOCOL.md §2: every payload is consumed exactly, PEERS and presence bodies too.

const payloadOf = (frame: Uint8Array) => frame.subarray(5);
const withExtra = (bytes: Uint8Array) => Uint8Array.of(...bytes, 0);
const errorCode = (decode: () => unknown): string => {
  try {
    decode();
  } catch (error) {
    if (error instanceof ProtocolError) return error.code;
    throw error;
  }
  return "accepted";
};

const peers = payloadOf(
  encodePeers([{ nodeId: new Uint8Array(32).fill(7), host: "10.0.0.7", port: 9001 }]),
);
const join = encodePresenceBody({ kind: FloodKind.Join, nick: "bob" });
const leave = encodePresenceBody({ kind: FloodKind.Leave, reason: "quit" });
const nick = encodePresenceBody({ kind: FloodKind.Nick, nick: "robert" });
const alive = encodePresenceBody({ kind: FloodKind.Alive, nick: "bob" });

const DECODERS: Array<[string, Uint8Array, (payload: Uint8Array) => unknown]> = [
  ["PEERS", peers, decodePeers],
  ["JOIN", join, (b) => decodePresenceBody(FloodKind.Join, b)],
  ["LEAVE", leave, (b) => decodePresenceBody(FloodKind.Leave, b)],
  ["NICK", nick, (b) => decodePresenceBody(FloodKind.Nick, b)],
  ["ALIVE", alive, (b) => decodePresenceBody(FloodKind.Alive, b)],
  ["PING", payloadOf(encodePing(1n)), (b) => decodeNonce(b, "PING")],
  ["BYE", payloadOf(encodeBye("quit")), decodeBye],
  ["ERROR", payloadOf(encodeError({ code: 7, message: "slow" })), decodeError],
];

describe("exact length", () => {
  test.each(DECODERS)("%s: accepted as encoded", (_name, payload, decode) => {
    expect(errorCode(() => decode(payload))).toBe("accepted");
  });

  test.each(DECODERS)("%s: one byte more is TRAILING_BYTES", (_name, payload, decode) => {
    expect(errorCode(() => decode(withExtra(payload)))).toBe("TRAILING_BYTES");
  });

  test.each(DECODERS)("%s: one byte less is TRUNCATED", (_name, payload, decode) => {
    expect(errorCode(() => decode(payload.subarray(0, payload.length - 1)))).toBe("TRUNCATED");
  });

  test("PEERS with no entries is two zero bytes, and accepted", () => {
    expect(payloadOf(encodePeers([]))).toEqual(Uint8Array.of(0, 0));
    expect(decodePeers(Uint8Array.of(0, 0))).toEqual([]);
    expect(errorCode(() => decodePeers(Uint8Array.of(0, 0, 0)))).toBe("TRAILING_BYTES");
  });

  test("a LEAVE reason may be empty; a JOIN nick may not", () => {
    expect(decodePresenceBody(FloodKind.Leave, Uint8Array.of(0, 0))).toEqual({
      kind: FloodKind.Leave,
      reason: "",
    });
    expect(errorCode(() => decodePresenceBody(FloodKind.Join, Uint8Array.of(0, 0)))).toBe(
      "BAD_FIELD",
    );
  });
});
