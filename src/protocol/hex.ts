const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lower-case hex of `bytes`. For display and JSON, not for hot-path keys. */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Bytewise comparison: negative if `a` sorts first, 0 if equal, positive otherwise. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Bytes of a hex string (even length, 0-9a-f). */
export function fromHex(text: string): Uint8Array {
  const out = new Uint8Array(text.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * `bytes[start, start + n)` as a latin1 string (one char per byte): a cheap map key
 * for ids and keys, where hex would cost twice the characters and a lookup table.
 */
export function latin1(bytes: Uint8Array, start: number, n: number): string {
  let s = "";
  for (let i = start; i < start + n; i++) s += String.fromCharCode(bytes[i] as number);
  return s;
}
