import { CipherState, type DecryptResult } from "./cipher-state.ts";
import { HASHLEN_BYTES } from "./constants.ts";
import { hash, hkdf2, hkdf3 } from "./primitives.ts";

/**
 * A Noise SymmetricState (spec 5.2): the chaining key `ck`, the handshake hash `h` and the
 * CipherState that encrypts handshake payloads.
 */
export class SymmetricState {
  private ck: Uint8Array;
  private h: Uint8Array;
  private readonly cipher = new CipherState();

  /** `InitializeSymmetric(protocol_name)`. */
  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN_BYTES) {
      this.h = new Uint8Array(HASHLEN_BYTES);
      this.h.set(name);
    } else {
      this.h = hash(name);
    }
    this.ck = new Uint8Array(this.h);
  }

  /** `MixKey(input_key_material)`: feeds a DH output into the chaining key and cipher key. */
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.cipher.initializeKey(k);
  }

  /** `MixHash(data)`: `h = HASH(h || data)`. */
  mixHash(data: Uint8Array): void {
    this.h = hash(this.h, data);
  }

  /** `MixKeyAndHash(input_key_material)`: how a PSK enters the handshake (spec 9). */
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, k] = hkdf3(this.ck, ikm);
    this.ck = ck;
    this.mixHash(tempH);
    this.cipher.initializeKey(k);
  }

  /** Whether handshake payloads are encrypted yet. */
  hasKey(): boolean {
    return this.cipher.hasKey();
  }

  /** A copy of the handshake hash `h` (`GetHandshakeHash`). */
  get handshakeHash(): Uint8Array {
    return new Uint8Array(this.h);
  }

  /** `EncryptAndHash(plaintext)`: encrypts with `h` as associated data, then mixes the result. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** `DecryptAndHash(ciphertext)`; `h` changes only if the ciphertext authenticates. */
  decryptAndHash(ciphertext: Uint8Array): DecryptResult {
    const result = this.cipher.decryptWithAd(this.h, ciphertext);
    if (result.ok) this.mixHash(ciphertext);
    return result;
  }

  /** `Split()`: the initiator-to-responder and responder-to-initiator transport ciphers. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, new Uint8Array(0));
    return [new CipherState(k1), new CipherState(k2)];
  }
}
