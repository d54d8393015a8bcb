/**
 * Sizes and limits of the Noise Protocol Framework (revision 34) for the one suite
 * peerchat speaks, `25519_AESGCM_SHA256`.
 */

/** Bytes in an X25519 public key and in a DH output (the spec's `DHLEN`). */
export const DHLEN_BYTES = 32;

/** Bytes in a SHA-256 digest, a chaining key and the handshake hash (the spec's `HASHLEN`). */
export const HASHLEN_BYTES = 32;

/** Bytes in an AES-256-GCM key. */
export const CIPHER_KEY_BYTES = 32;

/** Bytes in an AES-GCM authentication tag; every encrypted Noise payload grows by this. */
export const TAG_BYTES = 16;

/** Bytes in an AES-GCM nonce: 4 zero bytes, then the 64-bit counter big-endian (spec 12.4). */
export const NONCE_BYTES = 12;

/** Bytes in a pre-shared key (spec 9.1). */
export const PSK_BYTES = 32;

/** Largest Noise message, handshake or transport, in bytes (spec 3). */
export const MAX_NOISE_MESSAGE_BYTES = 65535;

/** Largest transport plaintext that fits in one Noise message. */
export const MAX_TRANSPORT_PLAINTEXT_BYTES = MAX_NOISE_MESSAGE_BYTES - TAG_BYTES;

/**
 * The nonce value 2^64-1 is reserved (for rekey, spec 5.1); a CipherState whose counter
 * reaches it refuses to encrypt or decrypt again.
 */
export const MAX_NONCE = 2n ** 64n - 1n;

/** The only DH, cipher and hash names this implementation accepts in a protocol name. */
export const SUITE = { dh: "25519", cipher: "AESGCM", hash: "SHA256" } as const;
