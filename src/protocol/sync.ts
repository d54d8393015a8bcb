import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import { FrameType, MAX_FRAME_BYTES } from "./constants.ts";

/**
 * SYNC (docs/PROTOCOL.md §5c): two neighbours reconcile the messages they hold. Every
 * SYNC frame is `op:u8 | session:u32 | body`; the bodies are below. The reconciliation
 * itself (keys, summaries, strata, IBLTs) is src/history/sketch.ts; this module only
 * lays out bytes, and checks every length against what the op allows.
 */
export const SyncOp = {
  /** Initiator: `salt:8 | since:u64 | until:u64 | count:u32 | sum:8`. */
  Begin: 1,
  /** Responder: the sets are the same; the round is over. Empty body. */
  Done: 2,
  /** Responder: `since:u64 | count:u32 | sum:8 | strata cells`. */
  Strata: 3,
  /** Initiator: `cells:u16 | cells × 14 bytes`, an IBLT of its keys. */
  Sketch: 4,
  /** Responder: the sketch did not decode; send one of `cells:u16` cells (0: a LIST). */
  Retry: 5,
  /** Initiator: `last:u8 | n × key:8`, all its keys, in one or more frames. */
  List: 6,
  /** Responder: `last:u8 | n × key:8`, the keys it lacks, in one or more frames. */
  Want: 7,
} as const;
export type SyncOp = (typeof SyncOp)[keyof typeof SyncOp];

/** Bytes of a key on the wire. */
export const SYNC_KEY_BYTES = 8;

/** Bytes of one IBLT cell on the wire (see sketch.ts). */
export const SYNC_CELL_BYTES = 14;

/** Most keys one LIST or WANT frame carries. */
export const MAX_KEYS_PER_FRAME = Math.floor((MAX_FRAME_BYTES - 1 - 1 - 4 - 1) / SYNC_KEY_BYTES);

/** Most cells one SKETCH frame carries (a multiple of 3). */
export const MAX_SKETCH_CELLS =
  Math.floor((MAX_FRAME_BYTES - 1 - 1 - 4 - 2) / SYNC_CELL_BYTES / 3) * 3;

/** A 64-bit value as two words: a salt, a key, a sum of keys. */
export type Words = readonly [hi: number, lo: number];

/** A decoded SYNC frame. Byte fields are views into the payload. */
export type SyncMessage =
  | {
      readonly op: typeof SyncOp.Begin;
      readonly session: number;
      readonly salt: Words;
      readonly since: number;
      readonly until: number;
      readonly count: number;
      readonly sum: Words;
    }
  | { readonly op: typeof SyncOp.Done; readonly session: number }
  | {
      readonly op: typeof SyncOp.Strata;
      readonly session: number;
      readonly since: number;
      readonly count: number;
      readonly sum: Words;
      readonly cells: Uint8Array;
    }
  | {
      readonly op: typeof SyncOp.Sketch;
      readonly session: number;
      readonly cellCount: number;
      readonly cells: Uint8Array;
    }
  | { readonly op: typeof SyncOp.Retry; readonly session: number; readonly cellCount: number }
  | {
      readonly op: typeof SyncOp.List | typeof SyncOp.Want;
      readonly session: number;
      readonly last: boolean;
      /** `n × 8` bytes. */
      readonly keys: Uint8Array;
    };

/** Bytes of the strata block of a STRATA frame (`strataCells` cells). */
export function strataBytes(strataCells: number): number {
  return strataCells * SYNC_CELL_BYTES;
}

function frame(op: SyncOp, session: number, bodyBytes: number): ByteWriter {
  return ByteWriter.frame(FrameType.Sync, 1 + 4 + bodyBytes)
    .u8(op)
    .u32(session);
}

export function encodeSyncBegin(
  session: number,
  salt: Words,
  since: number,
  until: number,
  count: number,
  sum: Words,
): Uint8Array {
  return frame(SyncOp.Begin, session, 8 + 8 + 8 + 4 + 8)
    .u32(salt[0])
    .u32(salt[1])
    .u64(since)
    .u64(until)
    .u32(count)
    .u32(sum[0])
    .u32(sum[1])
    .done();
}

export function encodeSyncDone(session: number): Uint8Array {
  return frame(SyncOp.Done, session, 0).done();
}

export function encodeSyncStrata(
  session: number,
  since: number,
  count: number,
  sum: Words,
  cells: Uint8Array,
): Uint8Array {
  return frame(SyncOp.Strata, session, 8 + 4 + 8 + cells.length)
    .u64(since)
    .u32(count)
    .u32(sum[0])
    .u32(sum[1])
    .bytes(cells)
    .done();
}

/** `cells` holds `cells.length / 14` cells, at most {@link MAX_SKETCH_CELLS}. */
export function encodeSyncSketch(session: number, cells: Uint8Array): Uint8Array {
  const count = cells.length / SYNC_CELL_BYTES;
  if (count > MAX_SKETCH_CELLS) throw new Error("sketch too large for one frame");
  return frame(SyncOp.Sketch, session, 2 + cells.length)
    .u16(count)
    .bytes(cells)
    .done();
}

export function encodeSyncRetry(session: number, cellCount: number): Uint8Array {
  return frame(SyncOp.Retry, session, 2).u16(cellCount).done();
}

/** A LIST or WANT frame of `keys` (8 bytes each, at most {@link MAX_KEYS_PER_FRAME}). */
export function encodeSyncKeys(
  op: typeof SyncOp.List | typeof SyncOp.Want,
  session: number,
  last: boolean,
  keys: Uint8Array,
): Uint8Array {
  if (keys.length > MAX_KEYS_PER_FRAME * SYNC_KEY_BYTES) throw new Error("too many keys");
  return frame(op, session, 1 + keys.length)
    .u8(last ? 1 : 0)
    .bytes(keys)
    .done();
}

/**
 * Decodes a SYNC payload whose strata block must hold exactly `strataCells` cells.
 * Anything else (an unknown op, a length that does not fit the op) is a protocol error.
 */
export function decodeSync(payload: Uint8Array, strataCells: number): SyncMessage {
  const r = new ByteReader(payload);
  const op = r.u8();
  const session = r.u32();
  let message: SyncMessage;
  switch (op) {
    case SyncOp.Begin:
      message = {
        op,
        session,
        salt: [r.u32(), r.u32()],
        since: r.u64(),
        until: r.u64(),
        count: r.u32(),
        sum: [r.u32(), r.u32()],
      };
      break;
    case SyncOp.Done:
      message = { op, session };
      break;
    case SyncOp.Strata:
      message = {
        op,
        session,
        since: r.u64(),
        count: r.u32(),
        sum: [r.u32(), r.u32()],
        cells: r.bytes(strataBytes(strataCells)),
      };
      break;
    case SyncOp.Sketch: {
      const cellCount = r.u16();
      if (cellCount === 0 || cellCount % 3 !== 0 || cellCount > MAX_SKETCH_CELLS)
        throw new ProtocolError("BAD_FIELD", `SYNC sketch of ${cellCount} cells`);
      message = { op, session, cellCount, cells: r.bytes(cellCount * SYNC_CELL_BYTES) };
      break;
    }
    case SyncOp.Retry: {
      const cellCount = r.u16();
      if (cellCount % 3 !== 0 || cellCount > MAX_SKETCH_CELLS)
        throw new ProtocolError("BAD_FIELD", `SYNC retry with ${cellCount} cells`);
      message = { op, session, cellCount };
      break;
    }
    case SyncOp.List:
    case SyncOp.Want: {
      const last = r.u8();
      if (last > 1) throw new ProtocolError("BAD_FIELD", "SYNC key list: last is not 0 or 1");
      if (r.remaining % SYNC_KEY_BYTES !== 0)
        throw new ProtocolError("BAD_FIELD", "SYNC key list is not a whole number of keys");
      message = { op, session, last: last === 1, keys: r.bytes(r.remaining) };
      break;
    }
    default:
      throw new ProtocolError("BAD_FIELD", `SYNC op ${op} is not defined`);
  }
  r.end("SYNC");
  return message;
}

/**
 * A HISTORY frame (0x09): a stored message, its FLOOD payload exactly as its origin
 * signed it (`id | origin | seq | sentAt | hops | kind | signature | body`, hops 0).
 */
export function encodeHistory(payload: Uint8Array): Uint8Array {
  return ByteWriter.frame(FrameType.History, payload.length).bytes(payload).done();
}
