/**
 * The Noise crypto functions for `25519_AESGCM_SHA256` (spec 4 and 12), as thin wrappers
 * over `node:crypto`. Nothing here is hand-rolled.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { NoiseError } from "../errors.ts";
import { CIPHER_KEY_BYTES, DHLEN_BYTES, NONCE_BYTES, TAG_BYTES } from "./constants.ts";

/** DER header of a PKCS#8 X25519 private key; the raw 32-byte scalar follows. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
/** DER header of an SPKI X25519 public key; the raw 32-byte u-coordinate follows. */
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** An X25519 key pair: the raw public key and the private key as a reusable KeyObject. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const der = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(X25519_SPKI_PREFIX.length));
}

/** A fresh random X25519 key pair (the spec's `GENERATE_KEYPAIR`). */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync("x25519");
  return { publicKey: rawPublicKey(privateKey), privateKey };
}

/**
 * The key pair for a raw 32-byte X25519 private key (as stored on disk or given by a test
 * vector). Throws {@link NoiseError} `BAD_KEY` if it is not 32 bytes.
 */
export function keyPairFromPrivate(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== DHLEN_BYTES) {
    throw new NoiseError("BAD_KEY", `X25519 private key must be ${DHLEN_BYTES} bytes`);
  }
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, privateKey]),
    format: "der",
    type: "pkcs8",
  });
  return { publicKey: rawPublicKey(key), privateKey: key };
}

/** The raw 32 bytes of a key pair's private key, for storing it. */
export function privateKeyBytes(pair: KeyPair): Uint8Array {
  const der = pair.privateKey.export({ format: "der", type: "pkcs8" });
  return new Uint8Array(der.subarray(X25519_PKCS8_PREFIX.length));
}

/**
 * X25519 of our private key and a remote public key (the spec's `DH`), or `undefined` when
 * the public key is not 32 bytes or is a low-order point. A low-order point forces an
 * all-zero shared secret, which would let the remote pick our session key (spec 12.1);
 * OpenSSL under Bun throws for it, other builds return the zeros, so both are checked.
 */
export function dh(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array | undefined {
  if (publicKey.length !== DHLEN_BYTES) return undefined;
  let shared: Uint8Array;
  try {
    const remote = createPublicKey({
      key: Buffer.concat([X25519_SPKI_PREFIX, publicKey]),
      format: "der",
      type: "spki",
    });
    shared = diffieHellman({ privateKey, publicKey: remote });
  } catch {
    return undefined;
  }
  if (shared.length !== DHLEN_BYTES) return undefined;
  let bits = 0;
  for (let i = 0; i < shared.length; i++) bits |= shared[i]!;
  return bits === 0 ? undefined : shared;
}

/** An AES-256 key imported once, so per-message calls skip re-importing raw bytes. */
export function cipherKey(k: Uint8Array): KeyObject {
  if (k.length !== CIPHER_KEY_BYTES) {
    throw new NoiseError("BAD_KEY", `cipher key must be ${CIPHER_KEY_BYTES} bytes`);
  }
  return createSecretKey(k);
}

// One nonce buffer for all calls: node copies the IV, and every call is synchronous.
const nonceBuffer = new Uint8Array(NONCE_BYTES);
const nonceView = new DataView(nonceBuffer.buffer);

function setNonce(n: bigint): Uint8Array {
  // Bytes 0..3 stay zero; AESGCM puts the counter big-endian in the last 8 (spec 12.4).
  nonceView.setBigUint64(4, n, false);
  return nonceBuffer;
}

/** AES-256-GCM `ENCRYPT(k, n, ad, plaintext)`: ciphertext followed by the 16-byte tag. */
export function encryptAesGcm(
  key: KeyObject,
  n: bigint,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", key, setNonce(n), { authTagLength: TAG_BYTES });
  if (ad.length > 0) cipher.setAAD(ad);
  const body = cipher.update(plaintext);
  cipher.final();
  const out = new Uint8Array(body.length + TAG_BYTES);
  out.set(body, 0);
  out.set(cipher.getAuthTag(), body.length);
  return out;
}

/**
 * AES-256-GCM `DECRYPT(k, n, ad, ciphertext)`: the plaintext, or `undefined` if the tag does
 * not verify. `ciphertext` must hold at least {@link TAG_BYTES}.
 */
export function decryptAesGcm(
  key: KeyObject,
  n: bigint,
  ad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array | undefined {
  const bodyBytes = ciphertext.length - TAG_BYTES;
  // authTagLength pins the tag size: without it node would accept a truncated tag.
  const decipher = createDecipheriv("aes-256-gcm", key, setNonce(n), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAuthTag(ciphertext.subarray(bodyBytes));
  if (ad.length > 0) decipher.setAAD(ad);
  const plaintext = decipher.update(ciphertext.subarray(0, bodyBytes));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  // A plain view, not a Buffer: Buffer#slice does not copy, a trap for callers.
  return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
}

/** SHA-256 of the concatenation of `parts` (the spec's `HASH`), without concatenating. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const part of parts) h.update(part);
  return h.digest();
}

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const m = createHmac("sha256", key);
  for (const part of parts) m.update(part);
  return m.digest();
}

const BYTE_1 = Uint8Array.of(1);
const BYTE_2 = Uint8Array.of(2);
const BYTE_3 = Uint8Array.of(3);

/** Noise `HKDF(chaining_key, input_key_material, 2)` (spec 4.3). */
export function hkdf2(chainingKey: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmac(chainingKey, ikm);
  const out1 = hmac(tempKey, BYTE_1);
  const out2 = hmac(tempKey, out1, BYTE_2);
  return [out1, out2];
}

/** Noise `HKDF(chaining_key, input_key_material, 3)` (spec 4.3). */
export function hkdf3(
  chainingKey: Uint8Array,
  ikm: Uint8Array,
): [Uint8Array, Uint8Array, Uint8Array] {
  const tempKey = hmac(chainingKey, ikm);
  const out1 = hmac(tempKey, BYTE_1);
  const out2 = hmac(tempKey, out1, BYTE_2);
  const out3 = hmac(tempKey, out2, BYTE_3);
  return [out1, out2, out3];
}
