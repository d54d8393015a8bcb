import { ProtocolError } from "../errors.ts";
import { ByteReader, decodeUtf8 } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import { FrameType, MAX_REASON_BYTES, NODE_ID_BYTES } from "./constants.ts";
import { truncateUtf8 } from "./control.ts";

/**
 * CIRCUIT (0x0B): a relay carries a byte stream between two of its neighbours that cannot
 * dial each other. Every frame is `op:u8 | circuit:u32 | body`; the circuit id names one
 * leg on one link. The ends run the secure channel over the stream, so the relay forwards
 * ciphertext it cannot read.
 *
 * Ids on a link: the end of the link with the lower node id chooses even ids, the other
 * odd ones, whatever role it plays (initiator or relay). Both ends may open circuits and
 * relay them over the same link, and a frame's id must say whose circuit it is.
 */
export const CircuitOp = {
  /** Initiator → relay: `target:key32`; the circuit id is the initiator's. */
  Open: 1,
  /** Relay → target: `from:key32`; the circuit id is the relay's, for that leg. */
  Incoming: 2,
  /** Target → relay (relay's id), then relay → initiator (initiator's id). Empty body. */
  Accept: 3,
  /** Either way, on an accepted circuit: 1..{@link MAX_CIRCUIT_DATA_BYTES} opaque bytes. */
  Data: 4,
  /** Either way: `code:u8 | reason:str`. The circuit is gone for whoever sends or reads it. */
  Close: 5,
} as const;
export type CircuitOp = (typeof CircuitOp)[keyof typeof CircuitOp];

/** Why a circuit closed: the `code` of a CLOSE. */
export const CircuitCloseCode = {
  /** The relay is full, or one of the ends has as many circuits there as it may. */
  Refused: 1,
  /** The target is not a neighbour of the relay, or the relay does not relay. */
  NoRoute: 2,
  /** The target said no (or did not answer in time). */
  TargetRefused: 3,
  /** The circuit carried as many bytes as the relay allows. */
  ByteLimit: 4,
  /** The circuit was open as long as the relay allows. */
  DurationLimit: 5,
  /** A normal end: one end closed its stream. */
  Closed: 6,
  /** The relay lost its link to the other end. */
  LinkLost: 7,
  /** A leg broke the circuit rules (DATA before ACCEPT, an id reused). */
  Protocol: 8,
} as const;
export type CircuitCloseCode = (typeof CircuitCloseCode)[keyof typeof CircuitCloseCode];

/** Names of the CLOSE codes, for logs and close reasons. */
export const CIRCUIT_CLOSE_NAMES: Readonly<Record<CircuitCloseCode, string>> = {
  [CircuitCloseCode.Refused]: "refused by the relay",
  [CircuitCloseCode.NoRoute]: "no route",
  [CircuitCloseCode.TargetRefused]: "refused by the target",
  [CircuitCloseCode.ByteLimit]: "byte limit",
  [CircuitCloseCode.DurationLimit]: "duration limit",
  [CircuitCloseCode.Closed]: "closed",
  [CircuitCloseCode.LinkLost]: "link lost",
  [CircuitCloseCode.Protocol]: "protocol error",
};

/** Most bytes one DATA frame carries. */
export const MAX_CIRCUIT_DATA_BYTES = 16 * 1024;

/** Longest CLOSE reason, in UTF-8 bytes. */
export const MAX_CIRCUIT_REASON_BYTES = MAX_REASON_BYTES;

/** Bytes before a CIRCUIT body: op and circuit id. */
const HEAD_BYTES = 1 + 4;

/** A decoded CIRCUIT frame. Byte fields are views into the payload: copy them to keep them. */
export type CircuitMessage =
  | { readonly op: typeof CircuitOp.Open; readonly circuit: number; readonly target: Uint8Array }
  | { readonly op: typeof CircuitOp.Incoming; readonly circuit: number; readonly from: Uint8Array }
  | { readonly op: typeof CircuitOp.Accept; readonly circuit: number }
  | { readonly op: typeof CircuitOp.Data; readonly circuit: number; readonly data: Uint8Array }
  | {
      readonly op: typeof CircuitOp.Close;
      readonly circuit: number;
      readonly code: CircuitCloseCode;
      readonly reason: string;
    };

function frame(op: CircuitOp, circuit: number, bodyBytes: number): ByteWriter {
  return ByteWriter.frame(FrameType.Circuit, HEAD_BYTES + bodyBytes)
    .u8(op)
    .u32(circuit);
}

function key32(key: Uint8Array): Uint8Array {
  if (key.length !== NODE_ID_BYTES) throw new Error(`a node id is ${NODE_ID_BYTES} bytes`);
  return key;
}

/** OPEN: asks the relay for a circuit to `target` (a node id), named `circuit` on this link. */
export function encodeCircuitOpen(circuit: number, target: Uint8Array): Uint8Array {
  return frame(CircuitOp.Open, circuit, NODE_ID_BYTES).bytes(key32(target)).done();
}

/** INCOMING: tells the target that `from` (a node id) asks for a circuit, named `circuit` here. */
export function encodeCircuitIncoming(circuit: number, from: Uint8Array): Uint8Array {
  return frame(CircuitOp.Incoming, circuit, NODE_ID_BYTES).bytes(key32(from)).done();
}

/** ACCEPT: the target takes the circuit (and the relay passes that on). */
export function encodeCircuitAccept(circuit: number): Uint8Array {
  return frame(CircuitOp.Accept, circuit, 0).done();
}

/** DATA carrying `bytes[start, end)`: 1 to {@link MAX_CIRCUIT_DATA_BYTES} bytes. */
export function encodeCircuitData(
  circuit: number,
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): Uint8Array {
  const n = end - start;
  if (n < 1 || n > MAX_CIRCUIT_DATA_BYTES)
    throw new Error(`CIRCUIT DATA carries 1 to ${MAX_CIRCUIT_DATA_BYTES} bytes, not ${n}`);
  return frame(CircuitOp.Data, circuit, n).bytes(bytes.subarray(start, end)).done();
}

/** CLOSE with a code and a reason (cut to {@link MAX_CIRCUIT_REASON_BYTES} bytes of UTF-8). */
export function encodeCircuitClose(
  circuit: number,
  code: CircuitCloseCode,
  reason: string,
): Uint8Array {
  const bytes = truncateUtf8(reason, MAX_CIRCUIT_REASON_BYTES);
  return frame(CircuitOp.Close, circuit, 1 + 2 + bytes.length)
    .u8(code)
    .str(bytes)
    .done();
}

/** True if `code` is a CLOSE code this version knows. */
export function isCircuitCloseCode(code: number): code is CircuitCloseCode {
  return code >= CircuitCloseCode.Refused && code <= CircuitCloseCode.Protocol;
}

/** `code` and `reason` of a CLOSE in words: "byte limit: 16777216 bytes relayed". */
export function describeCircuitClose(code: CircuitCloseCode, reason: string): string {
  const name = CIRCUIT_CLOSE_NAMES[code];
  return reason === "" ? name : `${name}: ${reason}`;
}

/**
 * Decodes a CIRCUIT payload. An unknown op or close code, a body of the wrong size for
 * its op, an empty or oversized DATA, or an overlong or invalid reason is a protocol error.
 */
export function decodeCircuit(payload: Uint8Array): CircuitMessage {
  const r = new ByteReader(payload);
  const op = r.u8();
  const circuit = r.u32();
  let message: CircuitMessage;
  switch (op) {
    case CircuitOp.Open:
      message = { op, circuit, target: r.bytes(NODE_ID_BYTES) };
      break;
    case CircuitOp.Incoming:
      message = { op, circuit, from: r.bytes(NODE_ID_BYTES) };
      break;
    case CircuitOp.Accept:
      message = { op, circuit };
      break;
    case CircuitOp.Data: {
      const n = r.remaining;
      if (n < 1 || n > MAX_CIRCUIT_DATA_BYTES)
        throw new ProtocolError("BAD_FIELD", `CIRCUIT DATA of ${n} bytes`);
      message = { op, circuit, data: r.bytes(n) };
      break;
    }
    case CircuitOp.Close: {
      const code = r.u8();
      if (!isCircuitCloseCode(code))
        throw new ProtocolError("BAD_FIELD", `CIRCUIT close code ${code} is not defined`);
      const n = r.u16();
      if (n > MAX_CIRCUIT_REASON_BYTES)
        throw new ProtocolError("BAD_FIELD", `CIRCUIT close reason of ${n} bytes`);
      const reason = decodeUtf8(r.bytes(n), "CIRCUIT close reason");
      message = { op, circuit, code, reason };
      break;
    }
    default:
      throw new ProtocolError("BAD_FIELD", `CIRCUIT op ${op} is not defined`);
  }
  r.end("CIRCUIT");
  return message;
}
