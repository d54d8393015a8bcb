/**
 * Base32 as RFC 4648 §6 spells it, lower-case and without padding: the text of an
 * invitation ticket. Its alphabet has no 0, 1, 8 or 9, so no digit is read as a letter.
 */

/** The 32 symbols, in value order. */
export const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** Symbol value by character code; -1 for a character outside the alphabet. */
const VALUE = (() => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < BASE32_ALPHABET.length; i++) table[BASE32_ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** Characters needed for `bytes` bytes: one per 5 bits, the last one padded with zero bits. */
export function base32Length(bytes: number): number {
  return Math.ceil((bytes * 8) / 5);
}

/** `bytes` as lower-case base32, unpadded. */
export function encodeBase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** Why {@link decodeBase32} refused a text. */
export type Base32Problem =
  /** A character outside the alphabet, at `index`. */
  | { readonly kind: "character"; readonly index: number }
  /** A length no byte string encodes to, or a last character whose spare bits are not zero. */
  | { readonly kind: "length" };

/**
 * Decodes lower-case unpadded base32. Strict, so that each byte string has exactly one
 * text: a length that no byte count gives, or set bits in the last character's padding,
 * is refused rather than rounded away (a changed last character must not decode the same).
 */
export function decodeBase32(
  text: string,
): { ok: true; bytes: Uint8Array } | { ok: false; problem: Base32Problem } {
  const bytes = Math.floor((text.length * 5) / 8);
  if (base32Length(bytes) !== text.length) return { ok: false, problem: { kind: "length" } };
  const out = new Uint8Array(bytes);
  let buffer = 0;
  let bits = 0;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? (VALUE[code] as number) : -1;
    if (value < 0) return { ok: false, problem: { kind: "character", index: i } };
    buffer = ((buffer << 5) | value) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (buffer >>> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return { ok: false, problem: { kind: "length" } };
  return { ok: true, bytes: out };
}
