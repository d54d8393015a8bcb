/**
 * Set reconciliation over message ids (docs/PROTOCOL.md §5c): summaries, a strata
 * estimator and invertible Bloom lookup tables (IBLT; Eppstein, Goodrich, Uyeda and
 * Varghese, "What's the Difference?", SIGCOMM 2011). Pure functions over typed arrays.
 *
 * Every id enters as a 64-bit key, a hash of the id keyed with a salt chosen for the
 * round: a peer cannot make its own ids collide with someone else's in advance. Two
 * peers compare a summary (count and sum of keys); if they differ, one sends a strata
 * estimator to size an IBLT, the other an IBLT of that size, and subtracting it from
 * one's own yields exactly the keys each lacks. The bytes grow with the difference, not
 * with the set: about 20 bytes a difference, against 16 an id to list them all.
 */

/** A round's salt: two 32-bit words. */
export type Salt = readonly [number, number];

/** Cells an id is added to in an IBLT. */
const HASHES = 3;

/** Strata of the estimator, and cells in each. */
export const STRATA = 16;
export const STRATUM_CELLS = 30;

/** Bytes of one IBLT cell on the wire: count u16, key (two u32), check u32. */
export const CELL_BYTES = 14;

const M1 = 0x85ebca6b;
const M2 = 0xc2b2ae35;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, M1);
  h ^= h >>> 13;
  h = Math.imul(h, M2);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The 64-bit key of the 16-byte id at `id[at…]` under `salt`, as two words written to
 * `out[0]` (high) and `out[1]` (low). Two independent lanes of MurmurHash3's finaliser
 * over the id's words, seeded by the salt.
 */
export function keyOf(id: Uint8Array, at: number, salt: Salt, out: Uint32Array): void {
  let a = salt[0];
  let b = salt[1] ^ 0x9e3779b9;
  for (let i = 0; i < 16; i += 4) {
    const w =
      ((id[at + i] as number) << 24) |
      ((id[at + i + 1] as number) << 16) |
      ((id[at + i + 2] as number) << 8) |
      (id[at + i + 3] as number);
    a = fmix((a ^ w) + 0x6b43a9b5);
    b = fmix(Math.imul(b ^ w, 0x27d4eb2f) ^ (a >>> 7));
  }
  out[0] = fmix(a ^ b);
  out[1] = fmix(b + Math.imul(a, 5));
}

/** The check word of a key: tells a cell holding exactly one key from one holding several. */
function checkOf(hi: number, lo: number): number {
  return fmix(hi ^ Math.imul(lo, 0x5bd1e995) ^ 0x7f4a7c15);
}

/** The stratum of a key: its count of trailing zeros (of a third hash), at most STRATA − 1. */
function stratumOf(hi: number, lo: number): number {
  const h = fmix(lo ^ Math.imul(hi, 0x1b873593));
  if (h === 0) return STRATA - 1;
  return Math.min(STRATA - 1, 31 - Math.clz32(h & -h));
}

/** Keys as pairs of words: `words[2i]` high, `words[2i + 1]` low. */
export interface KeySet {
  readonly words: Uint32Array;
  readonly size: number;
}

/** The keys of `ids` (latin1 strings of 16 bytes) under `salt`. */
export function keySet(ids: Iterable<string>, count: number, salt: Salt): KeySet {
  const words = new Uint32Array(count * 2);
  const id = new Uint8Array(16);
  const out = new Uint32Array(2);
  let n = 0;
  for (const key of ids) {
    for (let i = 0; i < 16; i++) id[i] = key.charCodeAt(i);
    keyOf(id, 0, salt, out);
    words[n * 2] = out[0] as number;
    words[n * 2 + 1] = out[1] as number;
    n++;
  }
  return { words, size: n };
}

/** A set's summary: its size and the sum of its keys (mod 2^64, as two words). */
export interface Summary {
  readonly count: number;
  readonly sumHi: number;
  readonly sumLo: number;
}

export function summarize(keys: KeySet): Summary {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < keys.size; i++) {
    const l = lo + (keys.words[i * 2 + 1] as number);
    lo = l >>> 0;
    hi = (hi + (keys.words[i * 2] as number) + (l > 0xffffffff ? 1 : 0)) >>> 0;
  }
  return { count: keys.size, sumHi: hi, sumLo: lo };
}

export function sameSummary(a: Summary, b: Summary): boolean {
  return a.count === b.count && a.sumHi === b.sumHi && a.sumLo === b.sumLo;
}

/** An IBLT: `cells` cells of count, key (two words) and check, in one array of 4 words each. */
export class Iblt {
  readonly cells: number;
  /** Per cell: count, key high, key low, check. Counts wrap at 2^16 on the wire. */
  readonly data: Int32Array;

  constructor(cells: number, data?: Int32Array) {
    if (cells <= 0 || cells % HASHES !== 0) throw new Error("IBLT cells must be a multiple of 3");
    this.cells = cells;
    this.data = data ?? new Int32Array(cells * 4);
  }

  /** An IBLT of `cells` cells holding `keys`. */
  static of(keys: KeySet, cells: number): Iblt {
    const t = new Iblt(cells);
    for (let i = 0; i < keys.size; i++)
      t.toggle(keys.words[i * 2] as number, keys.words[i * 2 + 1] as number, 1);
    return t;
  }

  /** Adds (`sign` 1) or removes (−1) a key. */
  toggle(hi: number, lo: number, sign: number): void {
    const part = this.cells / HASHES;
    const check = checkOf(hi, lo);
    const d = this.data;
    for (let h = 0; h < HASHES; h++) {
      const cell = (h * part + (fmix(lo + Math.imul(h + 1, hi ^ 0x3c6ef372)) % part)) * 4;
      d[cell] = (((d[cell] as number) + sign) << 16) >> 16;
      d[cell + 1] = (d[cell + 1] as number) ^ hi;
      d[cell + 2] = (d[cell + 2] as number) ^ lo;
      d[cell + 3] = (d[cell + 3] as number) ^ check;
    }
  }

  /** This minus `other` (same size), as a new IBLT. */
  minus(other: Iblt): Iblt {
    if (other.cells !== this.cells) throw new Error("IBLTs of different sizes");
    const out = new Int32Array(this.data.length);
    for (let i = 0; i < out.length; i += 4) {
      out[i] = (((this.data[i] as number) - (other.data[i] as number)) << 16) >> 16;
      out[i + 1] = (this.data[i + 1] as number) ^ (other.data[i + 1] as number);
      out[i + 2] = (this.data[i + 2] as number) ^ (other.data[i + 2] as number);
      out[i + 3] = (this.data[i + 3] as number) ^ (other.data[i + 3] as number);
    }
    return new Iblt(this.cells, out);
  }

  /**
   * Lists a difference `this − other` by peeling cells that hold one key. Returns the
   * keys only this side has (count +1) and only the other has (−1), or undefined if the
   * difference is too large for the table. Destroys this table's contents.
   */
  decode(): { readonly ours: KeySet; readonly theirs: KeySet } | undefined {
    const d = this.data;
    const ours: number[] = [];
    const theirs: number[] = [];
    const queue: number[] = [];
    for (let c = 0; c < this.cells; c++) if (this.pure(c)) queue.push(c);
    let peeled = 0;
    while (queue.length > 0) {
      const c = (queue.pop() as number) * 4;
      const count = d[c] as number;
      if ((count !== 1 && count !== -1) || !this.pure(c / 4)) continue;
      const hi = (d[c + 1] as number) >>> 0;
      const lo = (d[c + 2] as number) >>> 0;
      (count === 1 ? ours : theirs).push(hi, lo);
      this.toggle(hi, lo, -count);
      if (++peeled > this.cells * 4) return undefined; // a cycle: hostile input
      const part = this.cells / HASHES;
      for (let h = 0; h < HASHES; h++) {
        const cell = h * part + (fmix(lo + Math.imul(h + 1, hi ^ 0x3c6ef372)) % part);
        if (this.pure(cell)) queue.push(cell);
      }
    }
    for (let i = 0; i < d.length; i++) if (d[i] !== 0) return undefined;
    return {
      ours: { words: Uint32Array.from(ours), size: ours.length / 2 },
      theirs: { words: Uint32Array.from(theirs), size: theirs.length / 2 },
    };
  }

  private pure(cell: number): boolean {
    const c = cell * 4;
    const count = this.data[c] as number;
    if (count !== 1 && count !== -1) return false;
    const hi = (this.data[c + 1] as number) >>> 0;
    const lo = (this.data[c + 2] as number) >>> 0;
    return checkOf(hi, lo) === (this.data[c + 3] as number) >>> 0;
  }

  /** The wire form: per cell, count u16, key high u32, key low u32, check u32. */
  encode(): Uint8Array {
    const out = new Uint8Array(this.cells * CELL_BYTES);
    const view = new DataView(out.buffer);
    for (let c = 0; c < this.cells; c++) {
      const o = c * CELL_BYTES;
      view.setUint16(o, (this.data[c * 4] as number) & 0xffff);
      view.setUint32(o + 2, (this.data[c * 4 + 1] as number) >>> 0);
      view.setUint32(o + 6, (this.data[c * 4 + 2] as number) >>> 0);
      view.setUint32(o + 10, (this.data[c * 4 + 3] as number) >>> 0);
    }
    return out;
  }

  /** Reads the wire form of `cells` cells (the caller has checked the length). */
  static decodeCells(bytes: Uint8Array, cells: number): Iblt {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const data = new Int32Array(cells * 4);
    for (let c = 0; c < cells; c++) {
      const o = c * CELL_BYTES;
      data[c * 4] = (view.getUint16(o) << 16) >> 16;
      data[c * 4 + 1] = view.getUint32(o + 2) | 0;
      data[c * 4 + 2] = view.getUint32(o + 6) | 0;
      data[c * 4 + 3] = view.getUint32(o + 10) | 0;
    }
    return new Iblt(cells, data);
  }
}

/** The strata estimator of a key set: {@link STRATA} small IBLTs, one per stratum. */
export function strataOf(keys: KeySet): Iblt[] {
  const strata = Array.from({ length: STRATA }, () => new Iblt(STRATUM_CELLS));
  for (let i = 0; i < keys.size; i++) {
    const hi = keys.words[i * 2] as number;
    const lo = keys.words[i * 2 + 1] as number;
    (strata[stratumOf(hi, lo)] as Iblt).toggle(hi, lo, 1);
  }
  return strata;
}

/**
 * Estimates the size of the symmetric difference of two sets from their strata: the
 * deepest strata hold few keys and decode; the first that does not scales the count.
 */
export function estimateDifference(ours: readonly Iblt[], theirs: readonly Iblt[]): number {
  let count = 0;
  for (let i = STRATA - 1; i >= 0; i--) {
    const decoded = (ours[i] as Iblt).minus(theirs[i] as Iblt).decode();
    if (decoded === undefined) return 2 ** (i + 1) * Math.max(count, 1);
    count += decoded.ours.size + decoded.theirs.size;
  }
  return count;
}

/** IBLT cells for an estimated difference: room to decode with high probability. */
export function cellsFor(estimate: number): number {
  const cells = Math.ceil((estimate * 1.5 + 24) / HASHES) * HASHES;
  return Math.max(cells, 3 * 8);
}
