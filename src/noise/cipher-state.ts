import type { KeyObject } from "node:crypto";
import { NoiseError } from "../errors.ts";
import { MAX_NOISE_MESSAGE_BYTES, MAX_NONCE, TAG_BYTES } from "./constants.ts";
import { cipherKey, decryptAesGcm, encryptAesGcm } from "./primitives.ts";

/**
 * Why a decrypt was refused: the tag did not verify (`decrypt`), the input is shorter than
 * a tag (`truncated`) or longer than a Noise message (`too-large`), or the nonce counter is
 * used up (`nonce-exhausted`).
 */
export type DecryptFailure = "decrypt" | "truncated" | "too-large" | "nonce-exhausted";

/** The outcome of {@link CipherState.decryptWithAd}: the plaintext, or why there is none. */
export type DecryptResult =
  | { readonly ok: true; readonly plaintext: Uint8Array }
  | { readonly ok: false; readonly reason: DecryptFailure };

const EMPTY = new Uint8Array(0);

/**
 * A Noise CipherState (spec 5.1): an AES-256-GCM key and a 64-bit nonce counter.
 *
 * Failures that the remote can cause (a bad tag, a short or oversize ciphertext) are
 * returned by {@link decryptWithAd} as `{ ok: false, reason }` and leave the nonce where it
 * was, so the next genuine message still decrypts. Encrypting more than a Noise message
 * holds or past the last nonce is a bug on this side and throws {@link NoiseError}.
 * Results never share memory with the input.
 */
export class CipherState {
  private key: KeyObject | undefined;
  private n = 0n;

  /** @param k a 32-byte key, or none for the empty state a handshake starts with */
  constructor(k?: Uint8Array) {
    if (k) this.key = cipherKey(k);
  }

  /** Sets a new key (or none) and restarts the nonce at zero (`InitializeKey`). */
  initializeKey(k: Uint8Array | undefined): void {
    this.key = k ? cipherKey(k) : undefined;
    this.n = 0n;
  }

  /** Whether a key is set; without one, encrypt and decrypt pass bytes through (`HasKey`). */
  hasKey(): boolean {
    return this.key !== undefined;
  }

  /** The nonce the next encrypt or decrypt will use. */
  get nonce(): bigint {
    return this.n;
  }

  /** Sets the nonce (`SetNonce`), for out-of-order transports and tests. */
  setNonce(n: bigint): void {
    if (n < 0n || n > MAX_NONCE) throw new RangeError("nonce must be in [0, 2^64-1]");
    this.n = n;
  }

  /**
   * Encrypts `plaintext` with associated data `ad` and advances the nonce
   * (`EncryptWithAd`). Throws {@link NoiseError} `MESSAGE_TOO_LARGE` if the ciphertext would
   * exceed {@link MAX_NOISE_MESSAGE_BYTES}, `NONCE_EXHAUSTED` once the nonce reaches 2^64-1.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const key = this.key;
    if (!key) {
      if (plaintext.length > MAX_NOISE_MESSAGE_BYTES) throw tooLarge(plaintext.length);
      return new Uint8Array(plaintext);
    }
    if (plaintext.length + TAG_BYTES > MAX_NOISE_MESSAGE_BYTES) {
      throw tooLarge(plaintext.length + TAG_BYTES);
    }
    if (this.n === MAX_NONCE) throw new NoiseError("NONCE_EXHAUSTED", "nonce counter used up");
    const ciphertext = encryptAesGcm(key, this.n, ad, plaintext);
    this.n++;
    return ciphertext;
  }

  /**
   * Decrypts `ciphertext` with associated data `ad` (`DecryptWithAd`). The nonce advances
   * only on success.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): DecryptResult {
    if (ciphertext.length > MAX_NOISE_MESSAGE_BYTES) return { ok: false, reason: "too-large" };
    const key = this.key;
    if (!key) return { ok: true, plaintext: new Uint8Array(ciphertext) };
    if (ciphertext.length < TAG_BYTES) return { ok: false, reason: "truncated" };
    if (this.n === MAX_NONCE) return { ok: false, reason: "nonce-exhausted" };
    const plaintext = decryptAesGcm(key, this.n, ad, ciphertext);
    if (!plaintext) return { ok: false, reason: "decrypt" };
    this.n++;
    return { ok: true, plaintext };
  }

  /** Transport encrypt: {@link encryptWithAd} with empty associated data. */
  encrypt(plaintext: Uint8Array): Uint8Array {
    return this.encryptWithAd(EMPTY, plaintext);
  }

  /** Transport decrypt: {@link decryptWithAd} with empty associated data. */
  decrypt(ciphertext: Uint8Array): DecryptResult {
    return this.decryptWithAd(EMPTY, ciphertext);
  }

  /**
   * Replaces the key with `REKEY(k)`, the first 32 bytes of encrypting 32 zeros at nonce
   * 2^64-1 (spec 4.2, 5.1). The nonce is left alone: both sides must rekey at the same
   * message for the stream to continue.
   */
  rekey(): void {
    const key = this.key;
    if (!key) throw new NoiseError("MISSING_KEY", "rekey without a key");
    const next = encryptAesGcm(key, MAX_NONCE, EMPTY, new Uint8Array(32));
    this.key = cipherKey(next.subarray(0, 32));
  }
}

function tooLarge(bytes: number): NoiseError {
  return new NoiseError(
    "MESSAGE_TOO_LARGE",
    `${bytes}-byte Noise message exceeds ${MAX_NOISE_MESSAGE_BYTES} bytes`,
  );
}
