/**
 * `parts` joined into one array. A single part is returned as it is (not copied): callers
 * that keep the result must not reuse that part's buffer.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Copies `n` bytes of `from` at `fromAt` to `to` at `toAt`; returns the end offset in
 * `to`. Small copies (ids, nicks, short texts) are cheaper as a loop than as a
 * `subarray` plus a native `set`, and they are the relay's common case.
 */
export function copyBytes(
  from: Uint8Array,
  fromAt: number,
  to: Uint8Array,
  toAt: number,
  n: number,
): number {
  if (n > 256) {
    to.set(from.subarray(fromAt, fromAt + n), toAt);
  } else {
    for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i] as number;
  }
  return toAt + n;
}
