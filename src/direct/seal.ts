import type { KeyObject } from "node:crypto";
import {
  cipherKey,
  decryptAesGcm,
  dh,
  encryptAesGcm,
  generateKeyPair,
  hash,
  hkdf2,
} from "../noise/primitives.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import {
  FloodKind,
  MESSAGE_ID_BYTES,
  NODE_ID_BYTES,
  SIGNATURE_BYTES,
} from "../protocol/constants.ts";
import {
  DIRECT_EPHEMERAL_OFFSET,
  DIRECT_SEALED_OFFSET,
  DIRECT_TAG_BYTES,
  type DirectContent,
  type DirectInner,
  decodeInner,
  directTag,
  encodeInnerUnsigned,
} from "../protocol/direct.ts";
import { encodeFlood, signFloodFrame } from "../protocol/flood.ts";
import {
  generateIdentity,
  type Identity,
  identityFromSeed,
  verifySignature,
} from "../secure/identity.ts";
import { sealingPublicKey } from "../secure/sealing-key.ts";

/*
 * Sealing a direct message to one recipient (docs/PROTOCOL.md §6a): a fresh X25519 key
 * per message, agreed with the recipient's sealing key (its node id, converted), the
 * result through HKDF into an AES-256-GCM key used once. Inside, the author's identity
 * and its signature over the whole context: who it is for, under which envelope, with
 * which ephemeral key. Outside, a one-time origin signs the FLOOD, so a relay checks the
 * frame's integrity as for any FLOOD, and learns neither the author nor the text.
 */

const SIGNATURE_PREFIX = new TextEncoder().encode("peerchat-dm-v1:");
const KEY_PREFIX = new TextEncoder().encode("peerchat-dm-key-v1:");

/** What one direct message says, from whom, to whom. */
export interface DirectDraft {
  readonly author: Identity;
  readonly nick: string;
  /** The recipient's node id. */
  readonly to: Uint8Array;
  readonly content: DirectContent;
}

/** A DIRECT FLOOD frame ready to send, and its id. */
export interface SealedDirect {
  readonly frame: Uint8Array;
  readonly id: Uint8Array;
}

/** Opening a DIRECT: not ours, refused (with why), or opened. Never thrown. */
export type OpenOutcome =
  | { readonly status: "not-for-us" }
  | { readonly status: "refused"; readonly reason: string }
  | { readonly status: "opened"; readonly inner: DirectInner };

const NOT_FOR_US: OpenOutcome = Object.freeze({ status: "not-for-us" });

/**
 * Seals `draft` into a whole DIRECT FLOOD frame written at `sentAt`, signed outside by a
 * one-time key. Undefined if the recipient's node id has no sealing key.
 */
export function sealDirect(draft: DirectDraft, sentAt: number): SealedDirect | undefined {
  const recipientKey = sealingPublicKey(draft.to);
  if (recipientKey === undefined) return undefined;
  const ephemeral = generateKeyPair();
  const shared = dh(ephemeral.privateKey, recipientKey);
  if (shared === undefined) return undefined;
  const id = crypto.getRandomValues(new Uint8Array(MESSAGE_ID_BYTES));
  const tag = directTag(draft.to);
  const unsigned = encodeInnerUnsigned({
    author: draft.author.publicKey,
    nick: draft.nick,
    content: draft.content,
  });
  const signed = directSigningBytes(id, sentAt, draft.to, ephemeral.publicKey, unsigned);
  const plaintext = new Uint8Array(unsigned.length + SIGNATURE_BYTES);
  plaintext.set(unsigned);
  plaintext.set(draft.author.sign(signed), unsigned.length);
  const key = sealKey(shared, ephemeral.publicKey, recipientKey);
  const body = sealBody(key, tag, ephemeral.publicKey, id, sentAt, plaintext);
  return directFrame(id, sentAt, body, oneTimeOrigin(draft.author, id));
}

const ORIGIN_PREFIX = new TextEncoder().encode("peerchat-dm-origin-v1:");

/**
 * The one-time origin that signs the envelope of our DIRECT `id`: an Ed25519 key whose
 * seed is SHA-256 of our own (deterministic) signature over the id. To anyone else it
 * is a random key, unlinkable to us or to our other messages; we can derive it again,
 * after a restart too, to know a stored DIRECT (and a receipt for it) as ours.
 */
export function oneTimeOrigin(author: Identity, id: Uint8Array): Identity {
  const signature = author.sign(new Uint8Array([...ORIGIN_PREFIX, ...id]));
  return identityFromSeed(hash(signature));
}

/** The DIRECT body `tag | ephemeral | AES-256-GCM(key, plaintext)` for the envelope `id`, `sentAt`. */
export function sealBody(
  key: KeyObject,
  tag: Uint8Array,
  ephemeral: Uint8Array,
  id: Uint8Array,
  sentAt: number,
  plaintext: Uint8Array,
): Uint8Array {
  const sealed = encryptAesGcm(key, 0n, associatedData(id, sentAt, tag), plaintext);
  const body = new Uint8Array(DIRECT_SEALED_OFFSET + sealed.length);
  body.set(tag);
  body.set(ephemeral, DIRECT_EPHEMERAL_OFFSET);
  body.set(sealed, DIRECT_SEALED_OFFSET);
  return body;
}

/**
 * A DIRECT FLOOD frame around `body`, signed by an origin used for it alone (by default
 * a random one): nothing outside the seal links two messages of one author.
 */
export function directFrame(
  id: Uint8Array,
  sentAt: number,
  body: Uint8Array,
  origin: Identity = generateIdentity(),
): SealedDirect {
  const frame = encodeFlood({
    id,
    origin: origin.publicKey,
    seq: 0,
    sentAt,
    hops: 0,
    kind: FloodKind.Direct,
    signature: new Uint8Array(SIGNATURE_BYTES),
    body,
  });
  return { frame: signFloodFrame(frame, (m) => origin.sign(m)), id };
}

/**
 * Opens the DIRECT body `body` of the FLOOD `id`, written at `sentAt`, if it is sealed to
 * `self`. The relay has checked the outer signature and the body's length already.
 */
export function openDirect(
  self: Identity,
  selfTag: Uint8Array,
  id: Uint8Array,
  sentAt: number,
  body: Uint8Array,
): OpenOutcome {
  const tag = body.subarray(0, DIRECT_TAG_BYTES);
  if (!equalBytes(tag, selfTag)) return NOT_FOR_US;
  const ephemeral = body.subarray(DIRECT_EPHEMERAL_OFFSET, DIRECT_SEALED_OFFSET);
  const keys = self.sealingKeys();
  const shared = dh(keys.privateKey, ephemeral);
  if (shared === undefined) return refused("its ephemeral key is a low-order point");
  const key = sealKey(shared, ephemeral, keys.publicKey);
  const sealed = body.subarray(DIRECT_SEALED_OFFSET);
  const plaintext = decryptAesGcm(key, 0n, associatedData(id, sentAt, tag), sealed);
  if (plaintext === undefined) return refused("it does not decrypt: altered, or not sealed to us");
  let opened: ReturnType<typeof decodeInner>;
  try {
    opened = decodeInner(plaintext);
  } catch (error) {
    return refused(`what is sealed inside does not parse (${(error as Error).message})`);
  }
  const { inner, unsigned } = opened;
  const signed = directSigningBytes(id, sentAt, self.publicKey, ephemeral, unsigned);
  if (!verifySignature(inner.author, signed, inner.signature))
    return refused("the author's signature does not hold for this envelope and recipient");
  return { status: "opened", inner };
}

function refused(reason: string): OpenOutcome {
  return { status: "refused", reason };
}

/**
 * What the author signs: `"peerchat-dm-v1:" | id | sentAt:u64 | recipient | ephemeral |
 * inner without its signature`. Binding the envelope's id and time, the recipient and
 * the ephemeral key means a signed message cannot be re-sealed to someone else, nor
 * replayed under a new envelope.
 */
export function directSigningBytes(
  id: Uint8Array,
  sentAt: number,
  recipient: Uint8Array,
  ephemeral: Uint8Array,
  unsigned: Uint8Array,
): Uint8Array {
  return new ByteWriter(
    SIGNATURE_PREFIX.length + MESSAGE_ID_BYTES + 8 + 2 * NODE_ID_BYTES + unsigned.length,
  )
    .bytes(SIGNATURE_PREFIX)
    .bytes(id)
    .u64(sentAt)
    .bytes(recipient)
    .bytes(ephemeral)
    .bytes(unsigned)
    .done();
}

/** The AEAD's associated data: the envelope's id and time, and the recipient tag. */
function associatedData(id: Uint8Array, sentAt: number, tag: Uint8Array): Uint8Array {
  return new ByteWriter(MESSAGE_ID_BYTES + 8 + DIRECT_TAG_BYTES)
    .bytes(id)
    .u64(sentAt)
    .bytes(tag)
    .done();
}

/** The one-use AES-256-GCM key: HKDF(chaining key = SHA-256(prefix | e | r), DH(e, r)). */
export function sealKey(
  shared: Uint8Array,
  ephemeral: Uint8Array,
  recipientKey: Uint8Array,
): KeyObject {
  const [key] = hkdf2(hash(KEY_PREFIX, ephemeral, recipientKey), shared);
  return cipherKey(key);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}
