import { NoiseError } from "../errors.ts";
import type { CipherState } from "./cipher-state.ts";
import { DHLEN_BYTES, MAX_NOISE_MESSAGE_BYTES, PSK_BYTES, TAG_BYTES } from "./constants.ts";
import { type HandshakePattern, parseProtocolName, pskCount, type Token } from "./patterns.ts";
import { dh, generateKeyPair, type KeyPair } from "./primitives.ts";
import { SymmetricState } from "./symmetric-state.ts";

/** How to start one side of a handshake (spec 5.3 `Initialize`). */
export interface HandshakeOptions {
  /** E.g. `Noise_XXpsk0_25519_AESGCM_SHA256`; it is also hashed into `h`. */
  readonly protocolName: string;
  readonly initiator: boolean;
  /** Bytes both sides must agree on, mixed into `h` before the first message. */
  readonly prologue?: Uint8Array;
  /** This side's static key pair, if the pattern sends or uses one. */
  readonly s?: KeyPair;
  /**
   * A fixed ephemeral key pair, for test vectors only: reusing an ephemeral across
   * handshakes destroys forward secrecy. Normally left out and generated per handshake.
   */
  readonly e?: KeyPair;
  /** The remote static public key, when the pattern has the remote send it in a pre-message. */
  readonly rs?: Uint8Array;
  /** The remote ephemeral public key, for a pattern whose pre-message holds it. */
  readonly re?: Uint8Array;
  /** One 32-byte PSK per `psk` token, in the order the tokens occur. */
  readonly psks?: readonly Uint8Array[];
}

/**
 * Why a handshake message was refused: over {@link MAX_NOISE_MESSAGE_BYTES} (`too-large`),
 * too short for the keys and tags its pattern requires (`truncated`), a key or payload
 * that did not authenticate (`decrypt`, also what a wrong PSK looks like), or a remote
 * public key that is low-order or otherwise unusable for DH (`bad-dh`).
 */
export type HandshakeFailure = "too-large" | "truncated" | "decrypt" | "bad-dh";

/** The outcome of {@link HandshakeState.writeMessage}. */
export type WriteResult =
  | { readonly ok: true; readonly message: Uint8Array; readonly done: boolean }
  | { readonly ok: false; readonly reason: HandshakeFailure };

/** The outcome of {@link HandshakeState.readMessage}. */
export type ReadResult =
  | { readonly ok: true; readonly payload: Uint8Array; readonly done: boolean }
  | { readonly ok: false; readonly reason: HandshakeFailure };

/** This side's transport ciphers after the handshake: one to send with, one to receive. */
export interface TransportCiphers {
  readonly send: CipherState;
  readonly receive: CipherState;
}

const EMPTY = new Uint8Array(0);

/**
 * One side of a Noise handshake (spec 5.3) for any pattern in `patterns.ts`, with or without
 * PSK modifiers.
 *
 * Call {@link writeMessage} and {@link readMessage} in turn as the pattern dictates; each
 * returns a value. Once one reports `done`, {@link split} gives the transport ciphers.
 *
 * Failures come in two kinds. Bytes from the remote that break the handshake, or a DH with
 * a bad remote key, return `{ ok: false, reason }`; the handshake is then dead and every
 * later call throws `HANDSHAKE_FAILED`, since its state is part-way through an update. A write refused as
 * `too-large` changes nothing and may be retried with a smaller payload. Misuse on this
 * side (wrong turn, missing keys, bad protocol name) throws {@link NoiseError}.
 */
export class HandshakeState {
  readonly protocolName: string;
  readonly initiator: boolean;
  readonly pattern: HandshakePattern;
  private readonly symmetric: SymmetricState;
  /** PSK handshakes mix `e` into the key as well as the hash (spec 9.2). */
  private readonly pskMode: boolean;
  private readonly psks: readonly Uint8Array[];
  private pskIndex = 0;
  private s: KeyPair | undefined;
  private e: KeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private messageIndex = 0;
  private failed = false;
  private splitDone = false;

  /** Throws {@link NoiseError} if the protocol name or the supplied keys do not fit. */
  constructor(options: HandshakeOptions) {
    this.protocolName = options.protocolName;
    this.initiator = options.initiator;
    this.pattern = parseProtocolName(options.protocolName);
    this.s = options.s;
    this.e = options.e;
    this.rs = options.rs;
    this.re = options.re;
    this.psks = options.psks ?? [];
    this.pskMode = pskCount(this.pattern) > 0;
    this.validateKeys();

    this.symmetric = new SymmetricState(options.protocolName);
    this.symmetric.mixHash(options.prologue ?? EMPTY);
    const { initiatorPreMessage, responderPreMessage } = this.pattern;
    const preMessages = [
      [initiatorPreMessage, this.initiator],
      [responderPreMessage, !this.initiator],
    ] as const;
    for (const [tokens, local] of preMessages) {
      for (const token of tokens) {
        // validateKeys() has checked that each of these is present.
        const key = local
          ? (token === "s" ? this.s : this.e)!.publicKey
          : (token === "s" ? this.rs : this.re)!;
        if (token === "e") this.mixEphemeral(key);
        else this.symmetric.mixHash(key);
      }
    }
  }

  /** True once every message of the pattern has been written or read. */
  get isDone(): boolean {
    return this.messageIndex >= this.pattern.messages.length;
  }

  /** True when the next call should be {@link writeMessage}. */
  get isMyTurn(): boolean {
    return !this.isDone && this.messageIndex % 2 === (this.initiator ? 0 : 1);
  }

  /**
   * The handshake hash `h`. After the handshake it identifies the session (spec 11.2):
   * equal on both sides, and suitable for channel binding.
   */
  get handshakeHash(): Uint8Array {
    return this.symmetric.handshakeHash;
  }

  /** The remote's static public key: given up front, or learned during the handshake. */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.rs && new Uint8Array(this.rs);
  }

  /**
   * Writes the next handshake message carrying `payload`. Refuses with `too-large` before
   * touching any state if the message would exceed {@link MAX_NOISE_MESSAGE_BYTES}.
   */
  writeMessage(payload: Uint8Array = EMPTY): WriteResult {
    const tokens = this.nextTokens(true);
    const size = this.messageBytes(tokens, payload.length);
    if (size > MAX_NOISE_MESSAGE_BYTES) return { ok: false, reason: "too-large" };

    const out = new Uint8Array(size);
    let offset = 0;
    for (const token of tokens) {
      switch (token) {
        case "e": {
          this.e ??= generateKeyPair();
          out.set(this.e.publicKey, offset);
          offset += DHLEN_BYTES;
          this.mixEphemeral(this.e.publicKey);
          break;
        }
        case "s": {
          const ciphertext = this.symmetric.encryptAndHash(this.s!.publicKey);
          out.set(ciphertext, offset);
          offset += ciphertext.length;
          break;
        }
        case "psk":
          this.symmetric.mixKeyAndHash(this.psks[this.pskIndex++]!);
          break;
        default:
          if (!this.mixDh(token)) return this.fail("bad-dh");
      }
    }
    out.set(this.symmetric.encryptAndHash(payload), offset);
    this.messageIndex++;
    return { ok: true, message: out, done: this.isDone };
  }

  /** Reads the next handshake message from the remote and returns its payload. */
  readMessage(message: Uint8Array): ReadResult {
    const tokens = this.nextTokens(false);
    if (message.length > MAX_NOISE_MESSAGE_BYTES) return this.fail("too-large");

    let offset = 0;
    for (const token of tokens) {
      switch (token) {
        case "e": {
          if (message.length - offset < DHLEN_BYTES) return this.fail("truncated");
          this.re = new Uint8Array(message.subarray(offset, offset + DHLEN_BYTES));
          offset += DHLEN_BYTES;
          this.mixEphemeral(this.re);
          break;
        }
        case "s": {
          const bytes = DHLEN_BYTES + (this.symmetric.hasKey() ? TAG_BYTES : 0);
          if (message.length - offset < bytes) return this.fail("truncated");
          const result = this.symmetric.decryptAndHash(message.subarray(offset, offset + bytes));
          if (!result.ok) return this.fail(result.reason === "truncated" ? "truncated" : "decrypt");
          this.rs = result.plaintext;
          offset += bytes;
          break;
        }
        case "psk":
          this.symmetric.mixKeyAndHash(this.psks[this.pskIndex++]!);
          break;
        default:
          if (!this.mixDh(token)) return this.fail("bad-dh");
      }
    }
    const result = this.symmetric.decryptAndHash(message.subarray(offset));
    if (!result.ok) return this.fail(result.reason === "truncated" ? "truncated" : "decrypt");
    this.messageIndex++;
    return { ok: true, payload: result.plaintext, done: this.isDone };
  }

  /**
   * The transport ciphers (spec 5.2 `Split`), oriented for this side: the initiator sends
   * with the first and the responder with the second. One-way patterns use only the
   * initiator's `send` and the responder's `receive`. Callable once: a second pair would
   * reuse nonces with the same keys.
   */
  split(): TransportCiphers {
    if (this.failed) throw new NoiseError("HANDSHAKE_FAILED", "handshake failed");
    if (!this.isDone) throw new NoiseError("OUT_OF_ORDER", "split() before the handshake ended");
    if (this.splitDone) throw new NoiseError("OUT_OF_ORDER", "split() called twice");
    this.splitDone = true;
    this.e = undefined;
    const [c1, c2] = this.symmetric.split();
    return this.initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }

  private nextTokens(writing: boolean): readonly Token[] {
    if (this.failed) throw new NoiseError("HANDSHAKE_FAILED", "handshake already failed");
    const tokens = this.pattern.messages[this.messageIndex];
    if (!tokens) throw new NoiseError("OUT_OF_ORDER", "handshake is already complete");
    if (this.isMyTurn !== writing) {
      throw new NoiseError(
        "OUT_OF_ORDER",
        writing ? "not our turn to write" : "not our turn to read",
      );
    }
    return tokens;
  }

  /** The exact size of the message `tokens` would produce, tracking when keys appear. */
  private messageBytes(tokens: readonly Token[], payloadBytes: number): number {
    let keyed = this.symmetric.hasKey();
    let bytes = 0;
    for (const token of tokens) {
      if (token === "e") {
        bytes += DHLEN_BYTES;
        if (this.pskMode) keyed = true;
      } else if (token === "s") {
        bytes += DHLEN_BYTES + (keyed ? TAG_BYTES : 0);
      } else {
        keyed = true;
      }
    }
    return bytes + payloadBytes + (keyed ? TAG_BYTES : 0);
  }

  private mixEphemeral(publicKey: Uint8Array): void {
    this.symmetric.mixHash(publicKey);
    if (this.pskMode) this.symmetric.mixKey(publicKey);
  }

  /** Performs one DH token; false if the remote key is unusable. */
  private mixDh(token: "ee" | "es" | "se" | "ss"): boolean {
    // In `es` the initiator contributes its ephemeral and the responder its static; `se`
    // is the mirror image (spec 5.3).
    const [local, remote] =
      token === "ee"
        ? [this.e, this.re]
        : token === "ss"
          ? [this.s, this.rs]
          : (token === "es") === this.initiator
            ? [this.e, this.rs]
            : [this.s, this.re];
    if (!local || !remote) throw new NoiseError("MISSING_KEY", `no key for ${token}`);
    const shared = dh(local.privateKey, remote);
    if (!shared) return false;
    this.symmetric.mixKey(shared);
    return true;
  }

  private fail(reason: HandshakeFailure): { ok: false; reason: HandshakeFailure } {
    this.failed = true;
    return { ok: false, reason };
  }

  /** Checks up front that every key the pattern needs is here and none is out of place. */
  private validateKeys(): void {
    const { pattern, initiator } = this;
    const localPre = initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage;
    const remotePre = initiator ? pattern.responderPreMessage : pattern.initiatorPreMessage;
    const parity = initiator ? 0 : 1;
    let usesLocalStatic = localPre.includes("s");
    pattern.messages.forEach((tokens, i) => {
      const mine = i % 2 === parity;
      for (const t of tokens) {
        if (t === "ss" || (mine && t === "s")) usesLocalStatic = true;
        if ((t === "es" && !initiator) || (t === "se" && initiator)) usesLocalStatic = true;
      }
    });
    if (usesLocalStatic && !this.s) throw missing("s", pattern.name);
    if (localPre.includes("e") && !this.e) throw missing("e", pattern.name);
    if (remotePre.includes("s") !== (this.rs !== undefined)) {
      throw this.rs
        ? new NoiseError("BAD_KEY", `${pattern.name} does not take rs up front`)
        : missing("rs", pattern.name);
    }
    if (remotePre.includes("e") !== (this.re !== undefined)) {
      throw this.re
        ? new NoiseError("BAD_KEY", `${pattern.name} does not take re up front`)
        : missing("re", pattern.name);
    }
    for (const key of [this.s?.publicKey, this.e?.publicKey, this.rs, this.re]) {
      if (key && key.length !== DHLEN_BYTES) {
        throw new NoiseError("BAD_KEY", `public keys must be ${DHLEN_BYTES} bytes`);
      }
    }
    const needed = pskCount(pattern);
    if (this.psks.length !== needed) {
      throw new NoiseError(
        "BAD_PSK",
        `${pattern.name} needs ${needed} PSKs, got ${this.psks.length}`,
      );
    }
    if (this.psks.some((psk) => psk.length !== PSK_BYTES)) {
      throw new NoiseError("BAD_PSK", `each PSK must be ${PSK_BYTES} bytes`);
    }
  }
}

function missing(key: string, pattern: string): NoiseError {
  return new NoiseError("MISSING_KEY", `${pattern} needs ${key}`);
}
