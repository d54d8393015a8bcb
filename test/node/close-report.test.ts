import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import type { ConnectionClosed } from "../../src/link/connection.ts";
import { type ClosedLink, type CloseReport, reportClose } from "../../src/node/close-report.ts";
import type { NeighbourInfo } from "../../src/node/node-events.ts";
import { WireErrorCode } from "../../src/protocol/constants.ts";
import type { Direction } from "../../src/protocol/endpoint.ts";

function neighbour(direction: Direction = "inbound", host = "10.0.0.2"): NeighbourInfo {
  return {
    nodeId: "ab".repeat(32),
    nick: "bob",
    address: { host, port: 9000 },
    direction,
    since: 1_700_000_000_000,
    listenPort: 9000,
    pendingBytes: 0,
    rttMs: 12,
  };
}

/** A neighbour's link: established, HELLO in. */
function established(overrides: Partial<ClosedLink> = {}): ClosedLink {
  return {
    established: true,
    superseded: false,
    neighbour: neighbour(),
    nick: "bob",
    graceful: false,
    remoteReason: undefined,
    ...overrides,
  };
}

/** A connection still in its handshake: no HELLO, no nick. */
function handshaking(direction: Direction, overrides: Partial<ClosedLink> = {}): ClosedLink {
  return established({
    established: false,
    nick: undefined,
    neighbour: { ...neighbour(direction, "10.0.0.9"), nodeId: "", nick: "?" },
    ...overrides,
  });
}

const badHello = new ProtocolError("BAD_HANDSHAKE", "HELLO magic is not PCHT");
const otherVersion = new ProtocolError(
  "VERSION_MISMATCH",
  "peer speaks protocol version 9, this peer speaks version 2",
);

const cases: Array<[string, ClosedLink, ConnectionClosed, CloseReport]> = [
  [
    "a neighbour's link closed by the remote: peer-down, by remote",
    established(),
    { by: "remote", reason: "connection reset" },
    {
      reason: "connection reset",
      peerDown: { ...neighbour(), reason: "connection reset", by: "remote", graceful: false },
    },
  ],
  [
    "a neighbour that said BYE: peer-down, graceful, with its reason, by remote",
    established({ remoteReason: "quit", graceful: true }),
    { by: "local", reason: "quit" },
    {
      reason: "quit",
      peerDown: { ...neighbour(), reason: "quit", by: "remote", graceful: true },
    },
  ],
  [
    "a neighbour we left: peer-down, by local",
    established(),
    { by: "local", reason: "quit" },
    { reason: "quit", peerDown: { ...neighbour(), reason: "quit", by: "local", graceful: false } },
  ],
  [
    "a neighbour we closed for a protocol violation: a warning naming the ERROR and its code, link-problem, peer-down",
    established(),
    {
      by: "local",
      reason: "protocol error: second HELLO",
      code: WireErrorCode.BadHandshake,
      error: badHello,
    },
    {
      reason: "protocol error: second HELLO",
      log: {
        level: "warn",
        text: "closed bob (10.0.0.2:9000): protocol error: second HELLO [ERROR 2 BAD_HANDSHAKE, BAD_HANDSHAKE]",
      },
      problem: {
        address: neighbour().address,
        direction: "inbound",
        reason: "protocol error: second HELLO",
        nick: "bob",
      },
      peerDown: {
        ...neighbour(),
        reason: "protocol error: second HELLO",
        by: "local",
        graceful: false,
      },
    },
  ],
  [
    "a handshake we closed for another version: a warning, link-problem without a nick, no peer-down",
    handshaking("inbound"),
    {
      by: "local",
      reason: `protocol error: ${otherVersion.message}`,
      code: WireErrorCode.VersionMismatch,
      error: otherVersion,
    },
    {
      reason: `protocol error: ${otherVersion.message}`,
      log: {
        level: "warn",
        text: `closed 10.0.0.9:9000: protocol error: ${otherVersion.message} [ERROR 3 VERSION_MISMATCH, VERSION_MISMATCH]`,
      },
      problem: {
        address: { host: "10.0.0.9", port: 9000 },
        direction: "inbound",
        reason: `protocol error: ${otherVersion.message}`,
      },
    },
  ],
  [
    "a neighbour we disconnected for its rate: a warning naming the ERROR, no protocol code",
    established({ neighbour: neighbour("outbound", "::1") }),
    { by: "local", reason: "over the FLOOD rate limit (1000/s)", code: WireErrorCode.RateLimited },
    {
      reason: "over the FLOOD rate limit (1000/s)",
      log: {
        level: "warn",
        text: "closed bob ([::1]:9000): over the FLOOD rate limit (1000/s) [ERROR 10 RATE_LIMITED]",
      },
      problem: {
        address: { host: "::1", port: 9000 },
        direction: "outbound",
        reason: "over the FLOOD rate limit (1000/s)",
        nick: "bob",
      },
      peerDown: {
        ...neighbour("outbound", "::1"),
        reason: "over the FLOOD rate limit (1000/s)",
        by: "local",
        graceful: false,
      },
    },
  ],
  [
    "an internal error: logged as an error",
    established(),
    {
      by: "local",
      reason: "internal error: boom",
      code: WireErrorCode.Internal,
      error: new Error("boom"),
    },
    {
      reason: "internal error: boom",
      log: {
        level: "error",
        text: "closed bob (10.0.0.2:9000): internal error: boom [ERROR 8 INTERNAL]",
      },
      problem: {
        address: neighbour().address,
        direction: "inbound",
        reason: "internal error: boom",
        nick: "bob",
      },
      peerDown: { ...neighbour(), reason: "internal error: boom", by: "local", graceful: false },
    },
  ],
  [
    "TOO_MANY_PEERS: no warning, no problem, nothing",
    handshaking("inbound"),
    { by: "local", reason: "too many peers (limit 8)", code: WireErrorCode.TooManyPeers },
    { reason: "too many peers (limit 8)" },
  ],
  [
    "a superseded duplicate link: nothing",
    handshaking("outbound", { superseded: true, nick: "bob" }),
    { by: "local", reason: "duplicate link" },
    { reason: "duplicate link" },
  ],
  [
    "an inbound connection that never finished its handshake: an info line",
    handshaking("inbound"),
    { by: "remote", reason: "closed" },
    {
      reason: "closed",
      log: { level: "info", text: "connection 10.0.0.9:9000 closed before the handshake: closed" },
    },
  ],
  [
    "an outbound one: a debug line (the dialler reports it, with its retry)",
    handshaking("outbound", { remoteReason: "refused: too many peers (limit 8)" }),
    { by: "local", reason: "refused: too many peers (limit 8)" },
    {
      reason: "refused: too many peers (limit 8)",
      log: {
        level: "debug",
        text: "connection 10.0.0.9:9000 closed before the handshake: refused: too many peers (limit 8)",
      },
    },
  ],
  [
    "a liveness timeout: its reason wins, and it is the remote's doing",
    established({ remoteReason: "timed out: no frame for 30 s" }),
    { by: "local", reason: "timed out: no frame for 30 s" },
    {
      reason: "timed out: no frame for 30 s",
      peerDown: {
        ...neighbour(),
        reason: "timed out: no frame for 30 s",
        by: "remote",
        graceful: false,
      },
    },
  ],
  [
    "a remote reason wins over the connection's own",
    established({ remoteReason: "left: maintenance" }),
    { by: "remote", reason: "connection reset" },
    {
      reason: "left: maintenance",
      peerDown: { ...neighbour(), reason: "left: maintenance", by: "remote", graceful: false },
    },
  ],
];

describe("reportClose", () => {
  test.each(cases)("%s", (_name, link, info, expected) => {
    expect(reportClose(link, info)).toEqual(expected);
  });
});
