import { describe, expect, test } from "bun:test";
import { ProtocolError, type ProtocolErrorCode } from "../../src/errors.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import {
  decodePunch,
  decodeReach,
  encodePunchConnect,
  encodePunchGiveUp,
  encodePunchSync,
  encodeReachDialBack,
  encodeReachDialBackResult,
  encodeReachObserved,
  MAX_PUNCH_ADDRESSES,
  type PunchMessage,
  PunchOp,
  type ReachMessage,
  ReachOp,
} from "../../src/protocol/reach.ts";

/** The one frame in `bytes`, checked to be of `type`: its payload. */
function payloadOf(bytes: Uint8Array, type: number): Uint8Array {
  const frames = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  const frame = frames[0];
  if (!frame) throw new Error("no frame");
  expect(frame.type).toBe(type);
  return frame.payload.slice();
}

function codeOf(fn: () => unknown): ProtocolErrorCode | "no error" | "other" {
  try {
    fn();
    return "no error";
  } catch (error) {
    return error instanceof ProtocolError ? error.code : "other";
  }
}

const u16 = (v: number) => [v >>> 8, v & 0xff];
const str = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...u16(b.length), ...b];
};

describe("REACH codec", () => {
  const cases: Array<[string, Uint8Array, ReachMessage]> = [
    [
      "observed, IPv4",
      encodeReachObserved({ host: "203.0.113.7", port: 40_123 }),
      { op: ReachOp.Observed, host: "203.0.113.7", port: 40_123 },
    ],
    [
      "observed, IPv6",
      encodeReachObserved({ host: "2001:db8::1", port: 1 }),
      { op: ReachOp.Observed, host: "2001:db8::1", port: 1 },
    ],
    ["dial-back", encodeReachDialBack(9000), { op: ReachOp.DialBack, port: 9000 }],
    [
      "dial-back result, open",
      encodeReachDialBackResult(65_535, true),
      { op: ReachOp.DialBackResult, port: 65_535, ok: true },
    ],
    [
      "dial-back result, closed",
      encodeReachDialBackResult(9000, false),
      { op: ReachOp.DialBackResult, port: 9000, ok: false },
    ],
  ];

  test.each(cases)("reach codec - %s round trips", (_name, frame, expected) => {
    expect(decodeReach(payloadOf(frame, FrameType.Reach))).toEqual(expected);
  });

  test("reach codec - byte layout of OBSERVED is op | host:str | port:u16", () => {
    const payload = payloadOf(
      encodeReachObserved({ host: "10.0.0.1", port: 0x1234 }),
      FrameType.Reach,
    );
    expect([...payload]).toEqual([1, ...str("10.0.0.1"), 0x12, 0x34]);
  });

  const bad: Array<[string, number[], ProtocolErrorCode]> = [
    ["empty", [], "TRUNCATED"],
    ["unknown op", [9, 0, 1], "BAD_FIELD"],
    ["op 0", [0], "BAD_FIELD"],
    ["observed, a name, not an IP", [1, ...str("example.com"), ...u16(80)], "BAD_FIELD"],
    ["observed, empty host", [1, ...str(""), ...u16(80)], "BAD_FIELD"],
    ["observed, bracketed IPv6", [1, ...str("[::1]"), ...u16(80)], "BAD_FIELD"],
    ["observed, host with a zone", [1, ...str("fe80::1%eth0"), ...u16(80)], "BAD_FIELD"],
    ["observed, port 0", [1, ...str("10.0.0.1"), ...u16(0)], "BAD_FIELD"],
    ["observed, host cut short", [1, 0, 8, 49, 48], "TRUNCATED"],
    ["observed, invalid UTF-8", [1, 0, 2, 0xc3, 0x28, ...u16(80)], "BAD_UTF8"],
    ["observed, trailing byte", [1, ...str("10.0.0.1"), ...u16(80), 0], "TRAILING_BYTES"],
    ["dial-back, port 0", [2, 0, 0], "BAD_FIELD"],
    ["dial-back, truncated port", [2, 1], "TRUNCATED"],
    ["dial-back, trailing", [2, 0, 80, 1], "TRAILING_BYTES"],
    ["result, ok 2", [3, 0, 80, 2], "BAD_FIELD"],
    ["result, no ok", [3, 0, 80], "TRUNCATED"],
    ["result, port 0", [3, 0, 0, 1], "BAD_FIELD"],
  ];

  test.each(bad)("reach codec - refuses %s", (_name, bytes, code) => {
    expect(codeOf(() => decodeReach(Uint8Array.from(bytes)))).toBe(code);
  });

  test("reach codec - every truncation of a valid payload is refused", () => {
    for (const [, frame] of cases) {
      const payload = payloadOf(frame, FrameType.Reach);
      for (let n = 0; n < payload.length; n++)
        expect(codeOf(() => decodeReach(payload.subarray(0, n)))).not.toBe("no error");
    }
  });

  test("reach codec - encoders refuse what decoders would", () => {
    expect(() => encodeReachObserved({ host: "localhost", port: 80 })).toThrow();
    expect(() => encodeReachObserved({ host: "10.0.0.1", port: 0 })).toThrow();
    expect(() => encodeReachDialBack(70_000)).toThrow();
    expect(() => encodeReachDialBackResult(0, true)).toThrow();
  });
});

describe("PUNCH codec", () => {
  const four = [
    { host: "198.51.100.1", port: 5000 },
    { host: "10.1.2.3", port: 5001 },
    { host: "2001:db8::7", port: 5002 },
    { host: "::ffff:192.0.2.1", port: 65_535 },
  ];
  const cases: Array<[string, Uint8Array, PunchMessage]> = [
    [
      "connect, one address",
      encodePunchConnect(1, [{ host: "198.51.100.1", port: 5000 }]),
      { op: PunchOp.Connect, attempt: 1, addresses: [{ host: "198.51.100.1", port: 5000 }] },
    ],
    [
      "connect, four addresses",
      encodePunchConnect(3, four),
      { op: PunchOp.Connect, attempt: 3, addresses: four },
    ],
    ["sync", encodePunchSync(2), { op: PunchOp.Sync, attempt: 2 }],
    ["give-up", encodePunchGiveUp(255), { op: PunchOp.GiveUp, attempt: 255 }],
  ];

  test.each(cases)("punch codec - %s round trips", (_name, frame, expected) => {
    expect(decodePunch(payloadOf(frame, FrameType.Punch))).toEqual(expected);
  });

  test("punch codec - byte layout of CONNECT is op | attempt | count | endpoints", () => {
    const payload = payloadOf(
      encodePunchConnect(2, [{ host: "1.2.3.4", port: 0x0102 }]),
      FrameType.Punch,
    );
    expect([...payload]).toEqual([1, 2, 1, ...str("1.2.3.4"), 1, 2]);
  });

  const addr = [...str("1.2.3.4"), ...u16(80)];
  const bad: Array<[string, number[], ProtocolErrorCode]> = [
    ["empty", [], "TRUNCATED"],
    ["op only", [1], "TRUNCATED"],
    ["unknown op", [7, 1], "BAD_FIELD"],
    ["attempt 0", [2, 0], "BAD_FIELD"],
    ["connect, count 0", [1, 1, 0], "BAD_FIELD"],
    ["connect, count 5", [1, 1, 5, ...addr, ...addr, ...addr, ...addr, ...addr], "BAD_FIELD"],
    ["connect, fewer addresses than counted", [1, 1, 2, ...addr], "TRUNCATED"],
    ["connect, a name", [1, 1, 1, ...str("relay.example"), ...u16(80)], "BAD_FIELD"],
    ["connect, port 0", [1, 1, 1, ...str("1.2.3.4"), ...u16(0)], "BAD_FIELD"],
    ["connect, trailing", [1, 1, 1, ...addr, 0], "TRAILING_BYTES"],
    ["sync, trailing", [2, 1, 0], "TRAILING_BYTES"],
    ["give-up, trailing", [3, 1, 1], "TRAILING_BYTES"],
  ];

  test.each(bad)("punch codec - refuses %s", (_name, bytes, code) => {
    expect(codeOf(() => decodePunch(Uint8Array.from(bytes)))).toBe(code);
  });

  test("punch codec - every truncation of a valid payload is refused", () => {
    for (const [, frame] of cases) {
      const payload = payloadOf(frame, FrameType.Punch);
      for (let n = 0; n < payload.length; n++)
        expect(codeOf(() => decodePunch(payload.subarray(0, n)))).not.toBe("no error");
    }
  });

  test("punch codec - encoders refuse what decoders would", () => {
    expect(() => encodePunchConnect(1, [])).toThrow();
    const one = { host: "192.0.2.1", port: 1 };
    expect(() => encodePunchConnect(1, [...four, one])).toThrow();
    expect(four).toHaveLength(MAX_PUNCH_ADDRESSES);
    expect(() => encodePunchConnect(0, [one])).toThrow();
    expect(() => encodePunchConnect(1, [{ host: "relay.example", port: 80 }])).toThrow();
    expect(() => encodePunchSync(256)).toThrow();
  });
});
