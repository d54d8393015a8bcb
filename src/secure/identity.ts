import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

import type { KeyPair } from "../noise/primitives.ts";
import { NODE_ID_BYTES, SIGNATURE_BYTES } from "../protocol/constants.ts";
import { fromHex, latin1 } from "../protocol/hex.ts";
import { sealingKeyPair } from "./sealing-key.ts";

/**
 * A user's long-term Ed25519 identity. Its 32-byte public key is the node id on the wire;
 * the private key signs the link's Noise static key (binding the identity to the link)
 * and every FLOOD the user originates.
 */
export interface Identity {
  /** Raw Ed25519 public key: the node id. */
  readonly publicKey: Uint8Array;
  /** Signs `message` (already domain-separated by the caller); 64 bytes. */
  sign(message: Uint8Array): Uint8Array;
  /** PKCS#8 PEM text, for the identity file. */
  toPem(): string;
  /** The X25519 key pair direct messages to this identity are sealed to (sealing-key.ts). */
  sealingKeys(): KeyPair;
}

/** Bytes of an Ed25519 public key (a node id). */
export const ED25519_PUBLIC_KEY_BYTES = NODE_ID_BYTES;

// DER header of an X.509 SubjectPublicKeyInfo for Ed25519; the raw key follows.
const SPKI_ED25519_PREFIX = fromHex("302a300506032b6570032100");

// DER header of a PKCS#8 PrivateKeyInfo for Ed25519; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

/** The identity whose private key is the 32-byte Ed25519 seed `seed` (test vectors). */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const der = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  der.set(PKCS8_ED25519_PREFIX);
  der.set(seed, PKCS8_ED25519_PREFIX.length);
  return fromPrivateKey(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }));
}

/** A fresh random identity (tests, and a second peer run while the user's own is in use). */
export function generateIdentity(): Identity {
  return fromPrivateKey(generateKeyPairSync("ed25519").privateKey);
}

/** The identity stored as PKCS#8 PEM. Throws if the text is not an Ed25519 private key. */
export function identityFromPem(pem: string): Identity {
  const key = createPrivateKey({ key: pem, format: "pem" });
  if (key.asymmetricKeyType !== "ed25519") {
    throw new Error(`not an Ed25519 key (${key.asymmetricKeyType ?? "unknown type"})`);
  }
  return fromPrivateKey(key);
}

function fromPrivateKey(privateKey: KeyObject): Identity {
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  const publicKey = new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length));
  let sealing: KeyPair | undefined;
  return {
    publicKey,
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
    toPem: () => privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    sealingKeys() {
      if (sealing === undefined) {
        const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
        sealing = sealingKeyPair(new Uint8Array(pkcs8.subarray(PKCS8_ED25519_PREFIX.length)));
      }
      return sealing;
    },
  };
}

/**
 * Verifies an Ed25519 signature by the raw public key `publicKey`. Returns false (never
 * throws) for a malformed key or signature: everything here came from the network.
 */
export function verifySignature(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

// Parsing a key costs about as much as a verification; a relay sees the same few origins
// again and again. Bounded: hostile origins are cheap to invent.
const KEY_CACHE_LIMIT = 1024;
const keyCache = new Map<string, KeyObject>();

function publicKeyObject(raw: Uint8Array): KeyObject {
  const id = latin1(raw, 0, raw.length);
  let key = keyCache.get(id);
  if (!key) {
    const der = new Uint8Array(SPKI_ED25519_PREFIX.length + raw.length);
    der.set(SPKI_ED25519_PREFIX);
    der.set(raw, SPKI_ED25519_PREFIX.length);
    key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
    keyCache.set(id, key);
  }
  return key;
}
