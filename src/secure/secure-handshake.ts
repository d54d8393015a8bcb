/**
 * One link's Noise handshake (docs/PROTOCOL.md §2a), message by message: what this side
 * writes (nothing, then its signed HELLO, or, refusing, an ERROR in message 2) and what a
 * message read means. No I/O: the secure stream sends what this returns.
 */

import { HandshakeState, type TransportCiphers } from "../noise/handshake-state.ts";
import type { KeyPair } from "../noise/primitives.ts";
import type { SecureChannelOptions } from "./channel-options.ts";
import { HANDSHAKE_REFUSED_REASON, NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from "./constants.ts";
import { checkHandshakePayload, signedHandshakePayload } from "./handshake-payload.ts";
import { secondPayload } from "./handshake-refusal.ts";
import { plausibleHandshakeLength, withLength } from "./noise-framing.ts";

const EMPTY = new Uint8Array(0);

/** What a handshake message just read means. */
export type HandshakeRead =
  /** The handshake failed: reset the connection. */
  | { readonly kind: "failed"; readonly reason: string }
  /** Message 1 (the responder's first read): the room is proven; answer it. */
  | { readonly kind: "first" }
  /** Message 2 or 3: the remote's HELLO as a frame, its signature checked. */
  | { readonly kind: "hello"; readonly frame: Uint8Array }
  /** Message 2 carried the responder's refusal, an ERROR frame, instead of its HELLO. */
  | { readonly kind: "refused"; readonly frame: Uint8Array; readonly reason: string };

/** A handshake message to send, as it goes on the wire, or why it could not be written. */
export type HandshakeWrite =
  | { readonly ok: true; readonly wire: Uint8Array }
  | { readonly ok: false; readonly reason: string };

/** The Noise_XXpsk0 handshake of one link, with peerchat's payloads. */
export class SecureHandshake {
  /** Handshake messages exchanged so far, both directions. */
  private messages = 0;
  /** The remote said something this side could parse as a handshake message. */
  private heardBack = false;
  private readonly state: HandshakeState;

  constructor(
    private readonly initiator: boolean,
    private readonly options: SecureChannelOptions,
    ephemeralKey: KeyPair | undefined,
  ) {
    this.state = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator,
      prologue: NOISE_PROLOGUE,
      s: options.staticKey,
      ...(ephemeralKey ? { e: ephemeralKey } : {}),
      psks: [options.roomKey],
    });
  }

  get isMyTurn(): boolean {
    return this.state.isMyTurn;
  }

  get isDone(): boolean {
    return this.state.isDone;
  }

  /** Nothing exchanged yet: what arrives may still be a v1 peer's frames. */
  get untouched(): boolean {
    return this.messages === 0 && !this.heardBack;
  }

  /** Message 2 has not been written or read yet. */
  get beforeSecond(): boolean {
    return this.messages < 2;
  }

  /**
   * Why a handshake message announcing `length` bytes is refused before it is buffered,
   * or undefined if it may come.
   */
  lengthProblem(length: number): string | undefined {
    const firstInbound = this.messages === 0 && !this.initiator;
    if (length > 0 && plausibleHandshakeLength(length, firstInbound)) return undefined;
    return this.heardBack && length > 0
      ? "handshake failed (bad message length)"
      : HANDSHAKE_REFUSED_REASON;
  }

  /** Reads the remote's next handshake message. */
  read(message: Uint8Array): HandshakeRead {
    if (this.state.isMyTurn) {
      // The remote spoke out of turn (we are still waiting for our node's HELLO to answer).
      return failed("handshake failed (message out of turn)");
    }
    const result = this.state.readMessage(message);
    this.messages++;
    if (!result.ok) {
      // A wrong room key looks exactly like garbage: the first message we read fails.
      const refused = !this.heardBack && result.reason === "decrypt";
      return failed(refused ? HANDSHAKE_REFUSED_REASON : `handshake failed (${result.reason})`);
    }
    this.heardBack = true;
    if (this.messages === 1) return { kind: "first" };
    if (this.messages === 2) {
      const second = secondPayload(result.payload);
      if (second.kind === "refusal") {
        return { kind: "refused", frame: second.frame, reason: second.reason };
      }
      if (second.kind === "malformed") return failed("handshake failed (malformed refusal)");
    }
    const checked = checkHandshakePayload(result.payload, this.state.remoteStaticKey);
    return checked.ok ? { kind: "hello", frame: checked.frame } : failed(checked.reason);
  }

  /** Message 1 (psk, e): no payload, nothing about us before the room is proven. */
  writeFirst(): HandshakeWrite {
    return this.write(EMPTY);
  }

  /** Message 2 or 3: `hello` (a HELLO payload) and the identity's signature. */
  writeHello(hello: Uint8Array): HandshakeWrite {
    const { identity, staticKey } = this.options;
    return this.write(signedHandshakePayload(hello, identity, staticKey.publicKey));
  }

  /** Message 2 with an ERROR frame, the node's refusal, where the HELLO would be. */
  writeRefusal(error: Uint8Array): HandshakeWrite {
    return this.write(error);
  }

  /** The transport ciphers, once the handshake is done. */
  split(): TransportCiphers {
    return this.state.split();
  }

  private write(payload: Uint8Array): HandshakeWrite {
    const result = this.state.writeMessage(payload);
    this.messages++;
    if (!result.ok) return { ok: false, reason: `handshake failed (${result.reason})` };
    return { ok: true, wire: withLength(result.message) };
  }
}

function failed(reason: string): HandshakeRead {
  return { kind: "failed", reason };
}
