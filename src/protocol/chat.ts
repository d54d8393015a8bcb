import { ProtocolError } from "../errors.ts";
import { ByteReader, decodeUtf8 } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { nickProblem, textProblem } from "./text.ts";

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
