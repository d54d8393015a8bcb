import { createHash } from "node:crypto";
import { DHLEN_BYTES } from "../noise/constants.ts";
import { type KeyPair, keyPairFromPrivate } from "../noise/primitives.ts";

/**
 * The X25519 key that direct messages are sealed to, derived from the Ed25519 identity
 * (docs/PROTOCOL.md §6a). Both halves of an Ed25519 key are points and scalars on the
 * same curve as X25519, in another coordinate system, so anyone who knows a node id
 * knows its sealing key, and only the identity's holder has the private half: there is
 * nothing to announce, look up or get wrong. This is the conversion libsodium offers as
 * `crypto_sign_ed25519_pk_to_curve25519` (and Cabal, age and others use); sharing one
 * key between Ed25519 signatures and X25519 agreement is analysed as safe by Thormarker
 * (2021), given domain-separated uses, which ours are.
 */

/** The field prime of Curve25519, 2^255 − 19. */
const P = (1n << 255n) - 19n;

function modPow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = base % P;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/**
 * The X25519 public key (Montgomery u) of the Ed25519 public key `nodeId` (Edwards y,
 * with x's sign in the top bit): u = (1 + y) / (1 − y) mod p. Undefined for a key that
 * is not 32 bytes, not canonical (y ≥ p), or whose u is undefined (y = 1, the identity
 * point): such a node id cannot be written to.
 */
export function sealingPublicKey(nodeId: Uint8Array): Uint8Array | undefined {
  if (nodeId.length !== DHLEN_BYTES) return undefined;
  let y = 0n;
  for (let i = DHLEN_BYTES - 1; i >= 0; i--) y = (y << 8n) | BigInt(nodeId[i] as number);
  y &= (1n << 255n) - 1n;
  if (y >= P) return undefined;
  const denominator = (1n - y + P) % P;
  if (denominator === 0n) return undefined;
  let u = ((1n + y) * modPow(denominator, P - 2n)) % P;
  const out = new Uint8Array(DHLEN_BYTES);
  for (let i = 0; i < DHLEN_BYTES; i++) {
    out[i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return out;
}

/**
 * The X25519 key pair of the Ed25519 seed `seed`: its scalar is the first half of
 * SHA-512(seed), the same scalar Ed25519 derives (X25519 clamps it the same way), so
 * its public key is {@link sealingPublicKey} of the identity's.
 */
export function sealingKeyPair(seed: Uint8Array): KeyPair {
  const digest = createHash("sha512").update(seed).digest();
  return keyPairFromPrivate(new Uint8Array(digest.subarray(0, DHLEN_BYTES)));
}
