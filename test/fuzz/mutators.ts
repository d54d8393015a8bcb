import { concatBytes as joinBytes } from "../../src/protocol/bytes.ts";
/**
 * Seeded mutators for the live fuzzer (test/fuzz/mutation-fuzz.test.ts, scripts/fuzz.ts).
 *
 * Byte-level mutators know nothing of the protocol except, optionally, where a unit's
 * length prefix and type byte sit. Value-level mutators make strings and integers that
 * sit on or past the protocol's limits; the corpus uses them for structure-aware
 * mutations. Everything is pure: every choice comes from the `Random` passed in, so a
 * case is a function of its seed and index.
 */
import { randomInt, seededRandom } from "../helpers/random.ts";

/** A source of uniform numbers in [0, 1), e.g. `seededRandom(seed)`. */
export type Random = () => number;

/** Bytes on the edge of a signed or unsigned range. */
export const BOUNDARY_BYTES = [0x00, 0xff, 0x7f, 0x80] as const;

/** What a byte-level mutator may know about the unit (frame, Noise message) it mutates. */
export interface UnitShape {
  /** Width of the big-endian length prefix at offset 0: 2 (Noise), 4 (frame), or none. */
  readonly lengthBytes?: 2 | 4;
  /** Largest legal value of the length prefix. */
  readonly maxLength?: number;
  /** Offset of a type byte, if the unit has one. */
  readonly typeOffset?: number;
  /** Another valid unit of the same kind, to splice with. */
  readonly other: () => Uint8Array;
}

/** Picks one element. */
export function pick<T>(random: Random, items: readonly T[]): T {
  return items[randomInt(random, items.length)] as T;
}

const weightTables = new WeakMap<object, { keys: string[]; cumulative: number[] }>();

/** Picks a key of `weights` with probability proportional to its weight. */
export function pickWeighted<K extends string>(
  random: Random,
  weights: Readonly<Record<K, number>>,
): K {
  let table = weightTables.get(weights);
  if (!table) {
    const keys: string[] = [];
    const cumulative: number[] = [];
    let total = 0;
    for (const [key, w] of Object.entries(weights) as Array<[string, number]>) {
      total += w;
      keys.push(key);
      cumulative.push(total);
    }
    table = { keys, cumulative };
    weightTables.set(weights, table);
  }
  const { keys, cumulative } = table;
  const r = random() * (cumulative[cumulative.length - 1] as number);
  for (let i = 0; i < keys.length; i++) if (r < (cumulative[i] as number)) return keys[i] as K;
  return keys[keys.length - 1] as K;
}

/** `a | b | …` as one array (always a fresh one). */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? (parts[0] as Uint8Array).slice() : joinBytes(parts);
}

/** A small count, 1 most of the time: 1 + Geometric(1/2), capped. */
function smallCount(random: Random, max: number): number {
  let n = 1;
  while (n < max && random() < 0.5) n++;
  return n;
}

function writeLength(bytes: Uint8Array, width: 2 | 4, value: number): void {
  if (bytes.length < width) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (width === 2) view.setUint16(0, value & 0xffff);
  else view.setUint32(0, value >>> 0);
}

/** One byte-level mutation. Returns new bytes; the input is never modified. */
type ByteMutator = (input: Uint8Array, random: Random, shape: UnitShape) => Uint8Array;

const bitFlip: ByteMutator = (input, random) => {
  const out = input.slice();
  if (out.length === 0) return out;
  for (let i = smallCount(random, 8); i > 0; i--) {
    const at = randomInt(random, out.length);
    out[at] = (out[at] as number) ^ (1 << randomInt(random, 8));
  }
  return out;
};

const boundaryByte: ByteMutator = (input, random) => {
  const out = input.slice();
  if (out.length === 0) return out;
  for (let i = smallCount(random, 4); i > 0; i--)
    out[randomInt(random, out.length)] = pick(random, BOUNDARY_BYTES);
  return out;
};

// At least one byte stays: an empty case would send nothing at all.
const truncate: ByteMutator = (input, random) =>
  input.slice(0, 1 + randomInt(random, Math.max(1, input.length - 1)));

const extend: ByteMutator = (input, random) => {
  const n = random() < 0.9 ? 1 + randomInt(random, 64) : 1 + randomInt(random, 2048);
  return concatBytes(input, fastRandomBytes(random, n));
};

const duplicateSlice: ByteMutator = (input, random) => {
  if (input.length === 0) return input.slice();
  const from = randomInt(random, input.length);
  const to = from + 1 + randomInt(random, Math.min(input.length - from, 128));
  const at = randomInt(random, input.length + 1);
  return concatBytes(input.subarray(0, at), input.subarray(from, to), input.subarray(at));
};

/** The length prefix set to 0, 1, the maximum, one past it, all ones, off by one, or random. */
const lengthField: ByteMutator = (input, random, shape) => {
  const width = shape.lengthBytes;
  const out = input.slice();
  if (width === undefined || out.length < width) return bitFlip(input, random, shape);
  const allOnes = width === 2 ? 0xffff : 0xffff_ffff;
  const max = shape.maxLength ?? allOnes;
  const actual = out.length - width;
  const value = pick(random, [
    0,
    1,
    max,
    Math.min(max + 1, allOnes),
    allOnes,
    Math.max(0, actual - 1),
    actual + 1,
    actual * 2,
    randomInt(random, max + 2),
    Math.floor(random() * (allOnes + 1)),
  ]);
  writeLength(out, width, value);
  return out;
};

/** The head of this unit and the tail of another valid one, or the two end to end. */
const splice: ByteMutator = (input, random, shape) => {
  const other = shape.other();
  if (random() < 0.3) return concatBytes(input, other);
  return concatBytes(
    input.subarray(0, randomInt(random, input.length + 1)),
    other.subarray(randomInt(random, other.length + 1)),
  );
};

/** The type byte set to a defined type, 0x00, an unknown one just past them, or anything. */
const typeSwap: ByteMutator = (input, random, shape) => {
  const at = shape.typeOffset;
  if (at === undefined || at >= input.length) return boundaryByte(input, random, shape);
  const out = input.slice();
  out[at] = random() < 0.75 ? randomInt(random, 0x0b) : randomInt(random, 256);
  return out;
};

/** Every byte-level mutator, by name. */
export const BYTE_MUTATORS = {
  bitFlip,
  boundaryByte,
  truncate,
  extend,
  duplicateSlice,
  lengthField,
  splice,
  typeSwap,
} as const satisfies Record<string, ByteMutator>;

export type ByteMutatorName = keyof typeof BYTE_MUTATORS;

/** How often each byte-level mutator is chosen. */
export const BYTE_MUTATOR_WEIGHTS: Readonly<Record<ByteMutatorName, number>> = {
  bitFlip: 4,
  boundaryByte: 3,
  truncate: 2,
  extend: 2,
  duplicateSlice: 2,
  lengthField: 3,
  splice: 2,
  typeSwap: 3,
};

/** The outcome of {@link mutateBytes}: the bytes and the names of what was applied. */
export interface Mutated {
  readonly bytes: Uint8Array;
  readonly applied: readonly string[];
}

/**
 * Applies one to three byte-level mutations. After one that changes the size, the
 * length prefix (if the unit has one) is half the time fixed up to match, so that
 * truncated, extended and spliced units reach the payload parsers instead of always
 * failing at the framing.
 */
export function mutateBytes(input: Uint8Array, random: Random, shape: UnitShape): Mutated {
  let bytes = input;
  const applied: string[] = [];
  for (let i = smallCount(random, 3); i > 0; i--) {
    const name = pickWeighted(random, BYTE_MUTATOR_WEIGHTS);
    const before = bytes.length;
    bytes = BYTE_MUTATORS[name](bytes, random, shape);
    let label: string = name;
    if (
      name !== "lengthField" &&
      bytes.length !== before &&
      shape.lengthBytes !== undefined &&
      random() < 0.5
    ) {
      writeLength(bytes, shape.lengthBytes, bytes.length - shape.lengthBytes);
      label += "(fixed)";
    }
    applied.push(label);
  }
  // Nothing to send is not a case (and the receiver would only wait for more).
  if (bytes.length === 0) bytes = input.slice(0, 1);
  return { bytes, applied };
}

// Values: strings and integers on and past the limits.

const utf8 = new TextEncoder();

/**
 * Characters a nick or text may hold: ASCII, Latin-1 past the C1 block, CJK, astral
 * emoji, a combining mark, bidi overrides, zero-width joiners, a BOM, U+FFFD, a
 * noncharacter, the line separator, and escape-sequence lookalikes without the ESC.
 */
const ALLOWED_PIECES = [
  "a",
  "Z",
  "0",
  " ",
  "~",
  "<",
  ">",
  '"',
  "\\",
  "%s",
  "[2J",
  "\u00a0",
  "é",
  "ß",
  "中",
  "😀",
  "👩‍💻",
  "e\u0301",
  "\u202e",
  "\u2066",
  "\u200d",
  "\ufeff",
  "\ufffd",
  "\uffff",
  "\u2028",
  "𝕏",
];

/** Control characters (C0, DEL, C1): never allowed in a nick, text or reason. */
const CONTROL_PIECES = [
  "\u0000",
  "\n",
  "\r",
  "\t",
  "\u0007",
  "\u001b[31m",
  "\u001b]0;title\u0007",
  "\u007f",
  "\u0080",
  "\u0085",
  "\u009b",
  "\u009f",
];

/** Byte sequences that are not UTF-8. */
const INVALID_UTF8: readonly (readonly number[])[] = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc3, 0x28],
  [0xc0, 0xaf],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x82, 0x82, 0xac],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
];

const ALLOWED_BYTES = ALLOWED_PIECES.map((p) => utf8.encode(p));
const LETTERS = utf8.encode("abcdefghijklmnopqrstuvwxyz");

function generateText(random: Random, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let n = 0;
  while (n < out.length) {
    const piece = random() < 0.6 ? undefined : pick(random, ALLOWED_BYTES);
    if (piece && n + piece.length <= out.length) {
      out.set(piece, n);
      n += piece.length;
    } else out[n++] = LETTERS[randomInt(random, LETTERS.length)] as number;
  }
  return out;
}

/** Long valid texts are cut from this, at character boundaries: generating each is slow. */
const TEXT_POOL = generateText(seededRandom(0x7e57), 1 << 16);

const isContinuation = (b: number | undefined) => b !== undefined && (b & 0xc0) === 0x80;

/** Valid UTF-8 without control characters, of a random length in `min`–`max` bytes. */
export function validText(random: Random, min: number, max: number): Uint8Array {
  const length = min + randomInt(random, max - min + 1);
  if (length <= 64) return generateText(random, length);
  let start = randomInt(random, TEXT_POOL.length - length);
  while (isContinuation(TEXT_POOL[start])) start++;
  let end = start + length;
  while (isContinuation(TEXT_POOL[end])) end--;
  const out = new Uint8Array(length);
  out.set(TEXT_POOL.subarray(start, end));
  // Make up what the cut at character boundaries lost with ASCII.
  for (let i = end - start; i < length; i++) out[i] = 0x78;
  return out;
}

/** `n` random bytes from `random`, four per draw. */
export function fastRandomBytes(random: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    let v = Math.floor(random() * 4294967296);
    for (let j = i; j < Math.min(n, i + 4); j++) {
      out[j] = v & 0xff;
      v >>>= 8;
    }
  }
  return out;
}

function insertAt(random: Random, base: Uint8Array, piece: Uint8Array): Uint8Array {
  // Only at a character boundary, so the rest stays valid: before a non-continuation byte.
  const boundaries: number[] = [];
  for (let i = 0; i <= base.length; i++) {
    if (i === base.length || ((base[i] as number) & 0xc0) !== 0x80) boundaries.push(i);
  }
  const at = pick(random, boundaries);
  return concatBytes(base.subarray(0, at), piece, base.subarray(at));
}

/** A text field's limits, in UTF-8 bytes. */
export interface TextLimits {
  readonly min: number;
  readonly max: number;
}

/** How {@link mutateText} can mutate a text field. */
export const TEXT_MUTATIONS = {
  /** Valid: any allowed characters, within the limits (what the display must survive). */
  valid: 6,
  empty: 1,
  oversize: 2,
  invalidUtf8: 3,
  controlChars: 3,
  /** A `str` length prefix that disagrees with the bytes that follow. */
  lengthLie: 2,
} as const;

export type TextMutation = keyof typeof TEXT_MUTATIONS;

/** A mutated `str`: its bytes and, for a lie, the length its prefix declares. */
export interface MutatedText {
  readonly bytes: Uint8Array;
  readonly declared?: number;
  readonly how: TextMutation;
}

/** A new value for a `str` field with the given limits. */
export function mutateText(random: Random, limits: TextLimits): MutatedText {
  const how = pickWeighted(random, TEXT_MUTATIONS);
  const inLimits = () => validText(random, Math.max(1, limits.min), Math.max(1, limits.max));
  switch (how) {
    case "valid":
      return { bytes: inLimits(), how };
    case "empty":
      return { bytes: new Uint8Array(0), how };
    case "oversize": {
      const over = limits.max + 1 + randomInt(random, Math.min(limits.max * 2, 16_000) + 1);
      return { bytes: validText(random, over, over), how };
    }
    case "invalidUtf8":
      return {
        bytes: insertAt(random, inLimits(), Uint8Array.from(pick(random, INVALID_UTF8))),
        how,
      };
    case "controlChars":
      return {
        bytes: insertAt(random, inLimits(), utf8.encode(pick(random, CONTROL_PIECES))),
        how,
      };
    case "lengthLie": {
      const bytes = inLimits();
      const declared = pick(random, [
        0,
        Math.max(0, bytes.length - 1),
        bytes.length + 1,
        bytes.length + 2,
        0xffff,
        randomInt(random, 0x10000),
      ]);
      return { bytes, declared, how };
    }
  }
}

/** An integer of `bits` bits on an edge: 0, 1, the maximum, around the sign bit, or random. */
export function boundaryInt(random: Random, bits: 8 | 16 | 32 | 64): bigint {
  const max = (1n << BigInt(bits)) - 1n;
  const half = 1n << BigInt(bits - 1);
  return pick(random, [0n, 1n, max, max - 1n, half, half - 1n, randomBigInt(random, bits)]);
}

/** A uniformly random integer of `bits` bits. */
export function randomBigInt(random: Random, bits: number): bigint {
  let v = 0n;
  for (const b of fastRandomBytes(random, Math.ceil(bits / 8))) v = (v << 8n) | BigInt(b);
  return v & ((1n << BigInt(bits)) - 1n);
}

/**
 * The seed of case `index` of stream `stream` in a run seeded `seed`: cases are
 * independent, so any one can be replayed alone from (seed, stream, index).
 */
export function caseSeed(seed: number, stream: number, index: number): number {
  let h = (seed ^ Math.imul(stream + 0x51, 0x9e37_79b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b) >>> 0;
  h = (h ^ index) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x27d4_eb2d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}
