import {
  MAX_NICK_BYTES,
  MAX_REASON_BYTES,
  MAX_TEXT_BYTES,
  MIN_NICK_BYTES,
  MIN_TEXT_BYTES,
} from "./constants.ts";

/** C0 controls, DEL and C1 controls: never allowed in a nick or a chat text. */
const CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a nick or text was refused, or `undefined` when it is fine. */
export type TextProblem = string | undefined;

/** Checks a nick against the protocol limits (1–32 UTF-8 bytes, no control characters). */
export function nickProblem(nick: string, byteLength = utf8ByteLength(nick)): TextProblem {
  return fieldProblem("nick", nick, byteLength, MIN_NICK_BYTES, MAX_NICK_BYTES);
}

/** Checks a chat text against the protocol limits (1–4096 UTF-8 bytes, no control characters). */
export function textProblem(text: string, byteLength = utf8ByteLength(text)): TextProblem {
  return fieldProblem("text", text, byteLength, MIN_TEXT_BYTES, MAX_TEXT_BYTES);
}

/** Checks a LEAVE reason (0–256 UTF-8 bytes, no control characters). */
export function reasonProblem(reason: string, byteLength = utf8ByteLength(reason)): TextProblem {
  return fieldProblem("reason", reason, byteLength, 0, MAX_REASON_BYTES);
}

function fieldProblem(
  field: string,
  value: string,
  byteLength: number,
  min: number,
  max: number,
): TextProblem {
  if (byteLength < min) return `${field} is empty`;
  if (byteLength > max) return `${field} is ${byteLength} bytes, more than ${max}`;
  if (CONTROL_CHAR.test(value)) return `${field} contains control characters`;
  return undefined;
}

/** UTF-8 length of a string without encoding it. Lone surrogates count as U+FFFD (3 bytes). */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
