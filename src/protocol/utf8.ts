/**
 * Strict UTF-8 validation over bytes, for the relay's hot path: a message can be
 * checked (and relayed) without decoding it into a string nobody may read.
 *
 * Accepts exactly what `new TextDecoder("utf-8", { fatal: true })` accepts (no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence), and in the
 * same pass refuses the control characters the protocol forbids in nicks and texts:
 * C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F).
 */

/** Why bytes were refused, or undefined when they are valid text. */
export type Utf8Problem = "invalid UTF-8" | "control characters" | undefined;

/**
 * Checks `bytes[start, end)`; see the module comment for what passes. Invalid UTF-8 is
 * reported in preference to control characters, as decoding first would.
 */
export function utf8TextProblem(bytes: Uint8Array, start: number, end: number): Utf8Problem {
  let control = false;
  let i = start;
  while (i < end) {
    const c = bytes[i] as number;
    if (c < 0x80) {
      if (c < 0x20 || c === 0x7f) control = true;
      i++;
      continue;
    }
    if (c < 0xc2) return "invalid UTF-8"; // continuation byte, or overlong 2-byte lead
    if (c < 0xe0) {
      if (i + 1 >= end) return "invalid UTF-8";
      const c1 = bytes[i + 1] as number;
      if ((c1 & 0xc0) !== 0x80) return "invalid UTF-8";
      if (c === 0xc2 && c1 < 0xa0) control = true; // U+0080–U+009F
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= end) return "invalid UTF-8";
      const c1 = bytes[i + 1] as number;
      const c2 = bytes[i + 2] as number;
      if ((c1 & 0xc0) !== 0x80 || (c2 & 0xc0) !== 0x80) return "invalid UTF-8";
      if (c === 0xe0 && c1 < 0xa0) return "invalid UTF-8"; // overlong
      if (c === 0xed && c1 >= 0xa0) return "invalid UTF-8"; // UTF-16 surrogate
      i += 3;
      continue;
    }
    if (c < 0xf5) {
      if (i + 3 >= end) return "invalid UTF-8";
      const c1 = bytes[i + 1] as number;
      const c2 = bytes[i + 2] as number;
      const c3 = bytes[i + 3] as number;
      if ((c1 & 0xc0) !== 0x80 || (c2 & 0xc0) !== 0x80 || (c3 & 0xc0) !== 0x80)
        return "invalid UTF-8";
      if (c === 0xf0 && c1 < 0x90) return "invalid UTF-8"; // overlong
      if (c === 0xf4 && c1 >= 0x90) return "invalid UTF-8"; // above U+10FFFF
      i += 4;
      continue;
    }
    return "invalid UTF-8";
  }
  return control ? "control characters" : undefined;
}
