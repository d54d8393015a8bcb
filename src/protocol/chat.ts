import { ProtocolError } from "../errors.ts";
import { ByteReader, decodeUtf8, readU16 } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { copyBytes } from "./bytes.ts";
import { MAX_NICK_BYTES, MAX_TEXT_BYTES, MIN_NICK_BYTES, MIN_TEXT_BYTES } from "./constants.ts";
import { nickProblem, textProblem } from "./text.ts";
import { utf8TextProblem } from "./utf8.ts";

/** Body of a FLOOD of kind CHAT. */
export interface Chat {
  readonly nick: string;
  readonly text: string;
}

/** Encodes a CHAT body (`nick:str | text:str`). Both must satisfy the protocol limits. */
export function encodeChatBody(chat: Chat): Uint8Array {
  const nick = encodeUtf8(chat.nick);
  const text = encodeUtf8(chat.text);
  return new ByteWriter(2 + nick.length + 2 + text.length).str(nick).str(text).done();
}

/** Bytes of a CHAT body with a nick and a text of these UTF-8 lengths. */
export function chatBodyBytes(nickBytes: number, textBytes: number): number {
  return 2 + nickBytes + 2 + textBytes;
}

/**
 * Writes a CHAT body at `bytes[at…]` from the UTF-8 `nick` and the first `textBytes`
 * bytes of `text`, without intermediate copies (the relay's own-message path).
 */
export function writeChatBody(
  bytes: Uint8Array,
  at: number,
  nick: Uint8Array,
  text: Uint8Array,
  textBytes: number,
): number {
  bytes[at] = nick.length >>> 8;
  bytes[at + 1] = nick.length;
  const textAt = copyBytes(nick, 0, bytes, at + 2, nick.length);
  bytes[textAt] = textBytes >>> 8;
  bytes[textAt + 1] = textBytes;
  return copyBytes(text, 0, bytes, textAt + 2, textBytes);
}

/** The `[start, end)` of the nick in the (already validated) CHAT body at `bytes[at…]`. */
export function chatNickRange(bytes: Uint8Array, at: number): [number, number] {
  return [at + 2, at + 2 + readU16(bytes, at)];
}

/** The `[start, end)` of the text in the (already validated) CHAT body at `bytes[at…]`. */
export function chatTextRange(bytes: Uint8Array, at: number): [number, number] {
  const lengthAt = at + 2 + readU16(bytes, at);
  return [lengthAt + 2, lengthAt + 2 + readU16(bytes, lengthAt)];
}

/** Decodes and validates a CHAT body; a broken limit throws {@link ProtocolError} `BAD_FIELD`. */
export function decodeChatBody(body: Uint8Array): Chat {
  const r = new ByteReader(body);
  const nickBytes = r.bytes(r.u16());
  const textBytes = r.bytes(r.u16());
  r.end("CHAT");
  const nick = decodeUtf8(nickBytes, "nick");
  const text = decodeUtf8(textBytes, "text");
  const problem = nickProblem(nick, nickBytes.length) ?? textProblem(text, textBytes.length);
  if (problem) throw new ProtocolError("BAD_FIELD", `CHAT ${problem}`);
  return { nick, text };
}

/**
 * Validates a CHAT body in place (`bytes[start, end)`) without decoding it: layout,
 * lengths, strict UTF-8 and no control characters, exactly the rules of
 * {@link decodeChatBody}. Throws {@link ProtocolError} like it does.
 */
export function checkChatBody(bytes: Uint8Array, start: number, end: number): void {
  if (end - start < 2) throw new ProtocolError("TRUNCATED", "CHAT body ends before the nick");
  const nickBytes = readU16(bytes, start);
  const nickStart = start + 2;
  const textLengthAt = nickStart + nickBytes;
  if (textLengthAt + 2 > end)
    throw new ProtocolError("TRUNCATED", "CHAT body ends inside the nick");
  const textBytes = readU16(bytes, textLengthAt);
  const textStart = textLengthAt + 2;
  if (textStart + textBytes > end)
    throw new ProtocolError("TRUNCATED", "CHAT body ends inside the text");
  if (textStart + textBytes < end)
    throw new ProtocolError("TRAILING_BYTES", "CHAT: unexpected trailing bytes");
  checkField("nick", bytes, nickStart, nickBytes, MIN_NICK_BYTES, MAX_NICK_BYTES);
  checkField("text", bytes, textStart, textBytes, MIN_TEXT_BYTES, MAX_TEXT_BYTES);
}

function checkField(
  field: string,
  bytes: Uint8Array,
  start: number,
  length: number,
  min: number,
  max: number,
): void {
  const problem = utf8TextProblem(bytes, start, start + length);
  if (problem === "invalid UTF-8")
    throw new ProtocolError("BAD_UTF8", `${field} is not valid UTF-8`);
  if (length < min) throw new ProtocolError("BAD_FIELD", `CHAT ${field} is empty`);
  if (length > max)
    throw new ProtocolError("BAD_FIELD", `CHAT ${field} is ${length} bytes, more than ${max}`);
  if (problem) throw new ProtocolError("BAD_FIELD", `CHAT ${field} contains control characters`);
}
