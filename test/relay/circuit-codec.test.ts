import { describe, expect, test } from "bun:test";
import { ProtocolError, type ProtocolErrorCode } from "../../src/errors.ts";
import {
  CircuitCloseCode,
  CircuitOp,
  decodeCircuit,
  describeCircuitClose,
  encodeCircuitAccept,
  encodeCircuitClose,
  encodeCircuitData,
  encodeCircuitIncoming,
  encodeCircuitOpen,
  MAX_CIRCUIT_DATA_BYTES,
  MAX_CIRCUIT_REASON_BYTES,
} from "../../src/protocol/circuit.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { hex } from "../../src/protocol/hex.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

/** The one frame in `bytes`, through the real decoder, fed whole and a byte at a time. */
function only(bytes: Uint8Array): Frame {
  const whole = new FrameDecoder().push(bytes);
  expect(whole).toHaveLength(1);
  const decoder = new FrameDecoder();
  const bytewise = [...bytes].flatMap((b) => decoder.push(Uint8Array.of(b)));
  expect(bytewise).toHaveLength(1);
  expect(hex((bytewise[0] as Frame).payload)).toBe(hex((whole[0] as Frame).payload));
  const frame = whole[0] as Frame;
  expect(frame.type).toBe(FrameType.Circuit);
  return frame;
}

function errorCode(payload: number[] | Uint8Array): ProtocolErrorCode {
  try {
    decodeCircuit(Uint8Array.from(payload));
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).code;
  }
  throw new Error("expected a ProtocolError");
}

/** `op | circuit 7 | body` as bytes. */
const payload = (op: number, ...body: number[]) => [op, 0, 0, 0, 7, ...body];
const str = (bytes: number[]) => [bytes.length >> 8, bytes.length & 0xff, ...bytes];

describe("CIRCUIT codec - round trips", () => {
  test("OPEN names the target", () => {
    const m = decodeCircuit(only(encodeCircuitOpen(7, KEY)).payload);
    expect(m.op).toBe(CircuitOp.Open);
    expect(m.circuit).toBe(7);
    if (m.op === CircuitOp.Open) expect(hex(m.target)).toBe(hex(KEY));
  });

  test("INCOMING names who asks", () => {
    const m = decodeCircuit(only(encodeCircuitIncoming(0xffff_fffe, KEY)).payload);
    expect(m).toMatchObject({ op: CircuitOp.Incoming, circuit: 0xffff_fffe });
    if (m.op === CircuitOp.Incoming) expect(hex(m.from)).toBe(hex(KEY));
  });

  test("ACCEPT: golden bytes", () => {
    const frame = encodeCircuitAccept(7);
    expect(hex(frame)).toBe(["00000006", "0b", "03", "00000007"].join(""));
    expect(decodeCircuit(only(frame).payload)).toEqual({ op: CircuitOp.Accept, circuit: 7 });
  });

  test.each([1, 100, MAX_CIRCUIT_DATA_BYTES])("DATA of %p bytes", (n) => {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    const m = decodeCircuit(only(encodeCircuitData(3, bytes)).payload);
    expect(m.op).toBe(CircuitOp.Data);
    if (m.op === CircuitOp.Data) expect(hex(m.data)).toBe(hex(bytes));
  });

  test("DATA from a slice of a larger buffer", () => {
    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
    const m = decodeCircuit(only(encodeCircuitData(3, bytes, 10, 20)).payload);
    if (m.op !== CircuitOp.Data) throw new Error("not DATA");
    expect([...m.data]).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  test.each(Object.entries(CircuitCloseCode))("CLOSE %s", (_name, code) => {
    const m = decodeCircuit(only(encodeCircuitClose(9, code, "why ✓")).payload);
    expect(m).toEqual({ op: CircuitOp.Close, circuit: 9, code, reason: "why ✓" });
  });

  test("CLOSE: golden bytes, empty reason", () => {
    expect(hex(encodeCircuitClose(1, CircuitCloseCode.Closed, ""))).toBe(
      ["00000009", "0b", "05", "00000001", "06", "0000"].join(""),
    );
  });

  test("a long CLOSE reason is cut to 256 bytes, never inside a character", () => {
    const frame = encodeCircuitClose(1, CircuitCloseCode.Protocol, "é".repeat(200));
    const m = decodeCircuit(only(frame).payload);
    if (m.op !== CircuitOp.Close) throw new Error("not CLOSE");
    expect(m.reason).toBe("é".repeat(MAX_CIRCUIT_REASON_BYTES / 2));
  });

  test("the encoders refuse what the decoder would", () => {
    expect(() => encodeCircuitData(1, new Uint8Array(0))).toThrow();
    expect(() => encodeCircuitData(1, new Uint8Array(MAX_CIRCUIT_DATA_BYTES + 1))).toThrow();
    expect(() => encodeCircuitOpen(1, new Uint8Array(31))).toThrow();
    expect(() => encodeCircuitIncoming(1, new Uint8Array(33))).toThrow();
  });

  test("close reasons in words", () => {
    expect(describeCircuitClose(CircuitCloseCode.ByteLimit, "100 bytes relayed")).toBe(
      "byte limit: 100 bytes relayed",
    );
    expect(describeCircuitClose(CircuitCloseCode.Closed, "")).toBe("closed");
  });
});

describe("CIRCUIT codec - malformed payloads are protocol errors", () => {
  const key = [...KEY];
  const cases: [string, number[], ProtocolErrorCode][] = [
    ["empty payload", [], "TRUNCATED"],
    ["op only", [1], "TRUNCATED"],
    ["circuit id cut short", [3, 0, 0, 0], "TRUNCATED"],
    ["op 0", payload(0), "BAD_FIELD"],
    ["op 6", payload(6), "BAD_FIELD"],
    ["op 255", payload(255), "BAD_FIELD"],
    ["OPEN without a target", payload(1), "TRUNCATED"],
    ["OPEN with 31 bytes of target", payload(1, ...key.slice(1)), "TRUNCATED"],
    ["OPEN with a trailing byte", payload(1, ...key, 0), "TRAILING_BYTES"],
    ["INCOMING with 31 bytes of key", payload(2, ...key.slice(1)), "TRUNCATED"],
    ["INCOMING with a trailing byte", payload(2, ...key, 9), "TRAILING_BYTES"],
    ["ACCEPT with a body", payload(3, 0), "TRAILING_BYTES"],
    ["DATA with no bytes", payload(4), "BAD_FIELD"],
    ["CLOSE without a code", payload(5), "TRUNCATED"],
    ["CLOSE without a reason", payload(5, 6), "TRUNCATED"],
    ["CLOSE code 0", payload(5, 0, ...str([])), "BAD_FIELD"],
    ["CLOSE code 9", payload(5, 9, ...str([])), "BAD_FIELD"],
    ["CLOSE reason cut short", payload(5, 6, 0, 5, 0x61), "TRUNCATED"],
    ["CLOSE reason not UTF-8", payload(5, 6, ...str([0xff, 0xfe])), "BAD_UTF8"],
    ["CLOSE with a trailing byte", payload(5, 6, ...str([0x61]), 0), "TRAILING_BYTES"],
  ];
  test.each(cases)("%s", (_what, bytes, code) => {
    expect(errorCode(bytes)).toBe(code);
  });

  test("DATA of 16 KiB + 1 bytes", () => {
    expect(errorCode(payload(4, ...new Uint8Array(MAX_CIRCUIT_DATA_BYTES + 1)))).toBe("BAD_FIELD");
  });

  test("CLOSE reason of 257 bytes, before it is read", () => {
    const reason = new Array(MAX_CIRCUIT_REASON_BYTES + 1).fill(0x61);
    expect(errorCode(payload(5, 6, ...str(reason)))).toBe("BAD_FIELD");
    // A length that claims more than the frame holds fails on the length, not the read.
    expect(errorCode(payload(5, 6, 0xff, 0xff))).toBe("BAD_FIELD");
  });
});
