import { createHash } from "node:crypto";
import { ProtocolError } from "../errors.ts";
import { TAG_BYTES } from "../noise/constants.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter } from "./byte-writer.ts";
import {
  MAX_NICK_BYTES,
  MAX_TEXT_BYTES,
  MESSAGE_ID_BYTES,
  MIN_NICK_BYTES,
  MIN_TEXT_BYTES,
  NODE_ID_BYTES,
  SIGNATURE_BYTES,
} from "./constants.ts";
import { nickProblem, textProblem } from "./text.ts";

/*
 * A DIRECT message (FLOOD kind 0x06, docs/PROTOCOL.md §6a): the one home of its layouts.
 *
 *   body   = to:tag16 | ephemeral:key32 | sealed   (sealed = AES-256-GCM ciphertext | tag16)
 *   inner  = type:u8 | author:key32 | nick:str | content | signature:64
 *   content: TEXT (1) = text:str; RECEIPT (2) = of:id16 (the DIRECT it acknowledges)
 *
 * A relay reads only the body's length and `to`; the rest is the recipient's to open.
 */

/** Bytes of the recipient tag that starts a DIRECT body. */
export const DIRECT_TAG_BYTES = 16;

/** Where the sender's ephemeral X25519 key starts within a DIRECT body. */
export const DIRECT_EPHEMERAL_OFFSET = DIRECT_TAG_BYTES;

/** Where the sealed inner message starts within a DIRECT body. */
export const DIRECT_SEALED_OFFSET = DIRECT_EPHEMERAL_OFFSET + NODE_ID_BYTES;

/** What a DIRECT carries inside its seal. */
export const DirectType = { Text: 1, Receipt: 2 } as const;
export type DirectType = (typeof DirectType)[keyof typeof DirectType];

/** The opened inner message: who wrote it, under which nick, and what. */
export type DirectContent =
  | { readonly type: typeof DirectType.Text; readonly text: string }
  | { readonly type: typeof DirectType.Receipt; readonly of: Uint8Array };

export interface DirectInner {
  readonly author: Uint8Array;
  readonly nick: string;
  readonly content: DirectContent;
  readonly signature: Uint8Array;
}

/** Inner bytes before the nick: type and author. */
const INNER_HEAD_BYTES = 1 + NODE_ID_BYTES;

/** Smallest and largest inner messages: a 1-byte text from a 1-byte nick; a full text. */
const MIN_INNER_BYTES =
  INNER_HEAD_BYTES + 2 + MIN_NICK_BYTES + 2 + MIN_TEXT_BYTES + SIGNATURE_BYTES;
const MAX_INNER_BYTES =
  INNER_HEAD_BYTES + 2 + MAX_NICK_BYTES + 2 + MAX_TEXT_BYTES + SIGNATURE_BYTES;

/** Smallest DIRECT body a relay passes. */
export const MIN_DIRECT_BODY_BYTES = DIRECT_SEALED_OFFSET + MIN_INNER_BYTES + TAG_BYTES;

/** Largest DIRECT body a relay passes: a 4,096-byte text from a 32-byte nick, sealed. */
export const MAX_DIRECT_BODY_BYTES = DIRECT_SEALED_OFFSET + MAX_INNER_BYTES + TAG_BYTES;

const TAG_PREFIX = new TextEncoder().encode("peerchat-dm-to:");

/**
 * The recipient tag of node id `nodeId`: the first 16 bytes of
 * SHA-256("peerchat-dm-to:" | nodeId). Not a secret: anyone who knows a node id can tell
 * the messages addressed to it; it spares the recipient a key agreement per message.
 */
export function directTag(nodeId: Uint8Array): Uint8Array {
  const digest = createHash("sha256").update(TAG_PREFIX).update(nodeId).digest();
  return new Uint8Array(digest.subarray(0, DIRECT_TAG_BYTES));
}

/**
 * What a relay checks of a DIRECT body at `bytes[start, end)`: its length. Throws
 * {@link ProtocolError} (`TRUNCATED` or `BAD_FIELD`) outside the bounds.
 */
export function checkDirectBody(start: number, end: number): void {
  const length = end - start;
  if (length < MIN_DIRECT_BODY_BYTES)
    throw new ProtocolError(
      "TRUNCATED",
      `DIRECT body of ${length} bytes is too short to be sealed`,
    );
  if (length > MAX_DIRECT_BODY_BYTES)
    throw new ProtocolError(
      "BAD_FIELD",
      `DIRECT body of ${length} bytes, more than ${MAX_DIRECT_BODY_BYTES}`,
    );
}

/** The inner message without its signature: what the author signs (after a prefix). */
export function encodeInnerUnsigned(inner: Omit<DirectInner, "signature">): Uint8Array {
  const nick = new TextEncoder().encode(inner.nick);
  const c = inner.content;
  const text = c.type === DirectType.Text ? new TextEncoder().encode(c.text) : undefined;
  const contentBytes = text === undefined ? MESSAGE_ID_BYTES : 2 + text.length;
  const w = new ByteWriter(INNER_HEAD_BYTES + 2 + nick.length + contentBytes)
    .u8(c.type)
    .bytes(inner.author)
    .str(nick);
  if (text !== undefined) w.str(text);
  else if (c.type === DirectType.Receipt) w.bytes(c.of);
  return w.done();
}

/**
 * Decodes an opened inner message. Throws {@link ProtocolError} for a layout or a field
 * that breaks the limits: the author signed garbage, or this is not what it claims.
 */
export function decodeInner(bytes: Uint8Array): { inner: DirectInner; unsigned: Uint8Array } {
  if (bytes.length < MIN_INNER_BYTES || bytes.length > MAX_INNER_BYTES)
    throw new ProtocolError("BAD_FIELD", `sealed message of ${bytes.length} bytes`);
  const unsigned = bytes.subarray(0, bytes.length - SIGNATURE_BYTES);
  const signature = bytes.subarray(bytes.length - SIGNATURE_BYTES);
  const r = new ByteReader(unsigned);
  const type = r.u8();
  const author = r.bytes(NODE_ID_BYTES);
  const nick = r.str("nick");
  const problem = nickProblem(nick);
  if (problem) throw new ProtocolError("BAD_FIELD", `DIRECT ${problem}`);
  let content: DirectContent;
  if (type === DirectType.Text) {
    const text = r.str("text");
    const textTrouble = textProblem(text);
    if (textTrouble) throw new ProtocolError("BAD_FIELD", `DIRECT ${textTrouble}`);
    content = { type, text };
  } else if (type === DirectType.Receipt) {
    content = { type, of: r.bytes(MESSAGE_ID_BYTES) };
  } else {
    throw new ProtocolError("BAD_FIELD", `DIRECT of unknown type ${type}`);
  }
  r.end("DIRECT");
  return { inner: { author, nick, content, signature }, unsigned };
}
