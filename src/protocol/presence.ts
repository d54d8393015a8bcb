import { ProtocolError } from "../errors.ts";
import { ByteReader, decodeUtf8 } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { FloodKind } from "./constants.ts";
import { nickProblem, reasonProblem } from "./text.ts";

/** A presence announcement carried in a FLOOD (kinds JOIN, LEAVE, NICK, ALIVE). */
export type Presence =
  | { readonly kind: typeof FloodKind.Join; readonly nick: string }
  | { readonly kind: typeof FloodKind.Leave; readonly reason: string }
  | { readonly kind: typeof FloodKind.Nick; readonly nick: string }
  | { readonly kind: typeof FloodKind.Alive; readonly nick: string };

/** True for the FLOOD kinds that carry presence. */
export function isPresenceKind(kind: number): kind is Presence["kind"] {
  return (
    kind === FloodKind.Join ||
    kind === FloodKind.Leave ||
    kind === FloodKind.Nick ||
    kind === FloodKind.Alive
  );
}

/** Encodes a presence body: one `str` (the nick, or the LEAVE reason). */
export function encodePresenceBody(presence: Presence): Uint8Array {
  const text = encodeUtf8(presence.kind === FloodKind.Leave ? presence.reason : presence.nick);
  return new ByteWriter(2 + text.length).str(text).done();
}

/** Decodes and validates a presence body of `kind`; a broken limit throws {@link ProtocolError}. */
export function decodePresenceBody(kind: Presence["kind"], body: Uint8Array): Presence {
  const r = new ByteReader(body);
  const bytes = r.bytes(r.u16());
  r.end("presence");
  const text = decodeUtf8(bytes, kind === FloodKind.Leave ? "LEAVE reason" : "nick");
  if (kind === FloodKind.Leave) {
    const problem = reasonProblem(text, bytes.length);
    if (problem) throw new ProtocolError("BAD_FIELD", `LEAVE ${problem}`);
    return { kind, reason: text };
  }
  const problem = nickProblem(text, bytes.length);
  if (problem) throw new ProtocolError("BAD_FIELD", `${KIND_NAMES[kind]} ${problem}`);
  return { kind, nick: text };
}

const KIND_NAMES = {
  [FloodKind.Join]: "JOIN",
  [FloodKind.Leave]: "LEAVE",
  [FloodKind.Nick]: "NICK",
  [FloodKind.Alive]: "ALIVE",
} as const;
