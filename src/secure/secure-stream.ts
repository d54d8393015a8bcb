import type { CipherState } from "../noise/cipher-state.ts";
import { HandshakeState } from "../noise/handshake-state.ts";
import type { KeyPair } from "../noise/primitives.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { FRAME_HEADER_BYTES } from "../protocol/constants.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  StreamClosed,
  WriteStatus,
} from "../transport/byte-stream.ts";
import { FINAL_FRAME_RESERVE_BYTES, MAX_PENDING_BYTES } from "../transport/limits.ts";
import type { FixedEphemeral, SecureChannelOptions } from "./channel-options.ts";
import { HANDSHAKE_REFUSED_REASON, NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from "./constants.ts";
import {
  checkHandshakePayload,
  signedHandshakePayload,
  takeHelloFrame,
} from "./handshake-payload.ts";
import {
  NoiseMessageReader,
  type NoiseMessageSink,
  overheadFor,
  plausibleHandshakeLength,
  sealTransport,
  withLength,
} from "./noise-framing.ts";
import { looksLikeV1Hello, VERSION_ONE_REASON, versionOneRefusal } from "./v1-refusal.ts";

export { channelOptions, type SecureChannelOptions } from "./channel-options.ts";

const EMPTY = new Uint8Array(0);

/**
 * Wraps `inner` in a Noise_XXpsk0 channel: the stream the node sees carries the same
 * v1-style frames, while the wire carries `u16 length | ciphertext` messages. The node
 * and the relay do not change.
 *
 * HELLO moves into the handshake. The first frame the node writes (its HELLO) becomes
 * this side's handshake payload, with a signature by the identity key over the Noise
 * static key appended; the remote's HELLO, once its signature checks out against the
 * node id it names, is handed up as the first frame read. Frames the node writes before
 * the handshake ends wait, encrypted once it has.
 *
 * Failures (wrong room, tampering, a bad signature) close the link; the reason reaches
 * the node as {@link StreamClosed.reason}. Nothing the remote sends is thrown.
 *
 * @param fixed test vectors only (docs/PROTOCOL.md §9): this stream's ephemeral key
 */
export function secureStream(
  inner: ByteStream,
  options: SecureChannelOptions,
  fixed?: FixedEphemeral,
): ByteStream {
  return new SecureStream(inner, options, fixed?.ephemeralKey);
}

class SecureStream implements ByteStream {
  private handler: ByteStreamHandler | undefined;
  private phase: "handshake" | "open" | "closed" = "handshake";
  private readonly handshake: HandshakeState;
  private send: CipherState | undefined;
  private receive: CipherState | undefined;
  /** Handshake messages exchanged so far, both directions. */
  private messages = 0;
  /** The remote said something this side could parse as a handshake message. */
  private heardBack = false;
  /** Plaintext written by the node, not yet encrypted. */
  private plain: Uint8Array[] = [];
  private plainBytes = 0;
  private flushScheduled = false;
  /** This side's HELLO payload, once the node has written it. */
  private ownHello: Uint8Array | undefined;
  /** Waiting for the node's HELLO to write the next handshake message. */
  private helloWanted = false;
  /** Received bytes, cut into Noise messages. */
  private readonly reader = new NoiseMessageReader();
  private ending: Uint8Array | undefined;
  /** The remote's HELLO frame, verified, until the link is up on both ends. */
  private remoteHello: Uint8Array | undefined;
  private closeReason: string | undefined;

  constructor(
    private readonly inner: ByteStream,
    private readonly options: SecureChannelOptions,
    ephemeralKey: KeyPair | undefined,
  ) {
    this.handshake = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: inner.direction === "outbound",
      prologue: NOISE_PROLOGUE,
      s: options.staticKey,
      ...(ephemeralKey ? { e: ephemeralKey } : {}),
      psks: [options.roomKey],
    });
  }

  get direction() {
    return this.inner.direction;
  }
  get remote() {
    return this.inner.remote;
  }
  get local() {
    return this.inner.local;
  }
  get pendingBytes(): number {
    return this.inner.pendingBytes + this.plainBytes;
  }
  get bytesSent(): number {
    return this.inner.bytesSent;
  }
  get closed(): boolean {
    return this.phase === "closed" || this.inner.closed;
  }

  start(handler: ByteStreamHandler): void {
    this.handler = handler;
    this.inner.start({
      data: (chunk) => this.onData(chunk),
      close: (info) => this.onInnerClosed(info),
      clear: () => this.handler?.clear?.(),
    });
    // Message 1 (psk, e) carries no payload: nothing about us before the room is proven.
    if (this.handshake.isMyTurn && this.phase === "handshake") this.writeHandshake(EMPTY);
  }

  write(bytes: Uint8Array, start = 0, end = bytes.length): WriteStatus {
    if (this.closed || this.ending) return "closed";
    const n = end - start;
    if (n <= 0) return "queued";
    // The cap holds for what the kernel will be handed: ciphertext, tags and lengths.
    const wireBytes = this.plainBytes + n + overheadFor(this.plainBytes + n);
    if (this.inner.pendingBytes + wireBytes > MAX_PENDING_BYTES - FINAL_FRAME_RESERVE_BYTES) {
      return "overflow";
    }
    this.plain.push(bytes.slice(start, end));
    this.plainBytes += n;
    if (this.phase === "open") this.scheduleFlush();
    else if (this.helloWanted) this.continueHandshake();
    return "queued";
  }

  end(final?: Uint8Array): void {
    if (this.closed || this.ending) return;
    if (this.phase !== "open") {
      // No keys yet to say goodbye with: just go.
      this.fail("closed during the handshake", { by: "local" });
      return;
    }
    this.ending = final ?? EMPTY;
    if (final) {
      this.plain.push(final.slice());
      this.plainBytes += final.length;
    }
    this.flush();
    this.inner.end();
  }

  destroy(): void {
    if (this.phase === "closed") return;
    this.closeReason ??= "closed";
    this.inner.destroy();
  }

  pause(): void {
    this.inner.pause();
  }

  resume(): void {
    this.inner.resume();
  }

  // Incoming bytes: `u16 length | message`, reassembled across chunks.

  private onData(chunk: Uint8Array): void {
    const buf = this.reader.join(chunk);
    if (!this.heardBack && this.messages === 0 && looksLikeV1Hello(buf)) {
      this.refuseV1();
      return;
    }
    this.reader.read(buf, this.sink);
  }

  private readonly sink: NoiseMessageSink = {
    length: (length) => {
      if (length === 0) {
        this.fail(
          this.phase === "open" ? "empty secure-channel message" : HANDSHAKE_REFUSED_REASON,
        );
      } else if (
        this.phase === "handshake" &&
        !plausibleHandshakeLength(length, this.messages === 0 && this.direction === "inbound")
      ) {
        this.fail(
          this.heardBack ? "handshake failed (bad message length)" : HANDSHAKE_REFUSED_REASON,
        );
      }
      return this.phase !== "closed";
    },
    message: (message) => {
      if (this.phase === "open") this.onTransportMessage(message);
      else this.onHandshakeMessage(message);
      return this.phase !== "closed";
    },
  };

  private onTransportMessage(message: Uint8Array): void {
    const result = (this.receive as CipherState).decrypt(message);
    if (!result.ok) {
      this.fail(
        `secure channel: message failed to decrypt (${result.reason}): tampered or corrupt`,
      );
      return;
    }
    // The responder's first transport message confirms it has the link too: only now is
    // the link up for the initiator, so that "connected" means so on both ends.
    const hello = this.remoteHello;
    if (hello) {
      this.remoteHello = undefined;
      this.handler?.data(hello);
      if (this.phase === "closed") return;
    }
    if (result.plaintext.length > 0) this.handler?.data(result.plaintext);
  }

  private onHandshakeMessage(message: Uint8Array): void {
    if (this.handshake.isMyTurn) {
      // The remote spoke out of turn (we are still waiting for our node's HELLO to answer).
      this.fail("handshake failed (message out of turn)");
      return;
    }
    const result = this.handshake.readMessage(message);
    this.messages++;
    if (!result.ok) {
      // A wrong room key looks exactly like garbage: the first message we read fails.
      const refused = !this.heardBack && result.reason === "decrypt";
      this.fail(refused ? HANDSHAKE_REFUSED_REASON : `handshake failed (${result.reason})`);
      return;
    }
    this.heardBack = true;
    // Messages 2 and 3 carry the remote's HELLO; message 1 carries nothing.
    if (this.messages > 1 && !this.acceptRemoteHello(result.payload)) return;
    if (this.handshake.isDone) {
      // Responder, message 3 read: confirm at once (even with nothing to say), then up.
      this.open();
      this.flush(true);
      const hello = this.remoteHello;
      this.remoteHello = undefined;
      if (hello && this.phase === "open") this.handler?.data(hello);
      return;
    }
    if (this.handshake.isMyTurn) this.continueHandshake();
  }

  /** Writes our next handshake message once the node's HELLO is known. */
  private continueHandshake(): void {
    const hello = this.takeOwnHello();
    if (!hello) {
      this.helloWanted = true;
      return;
    }
    this.helloWanted = false;
    const { identity, staticKey } = this.options;
    if (!this.writeHandshake(signedHandshakePayload(hello, identity, staticKey.publicKey))) return;
    if (this.handshake.isDone) this.open();
  }

  private writeHandshake(payload: Uint8Array): boolean {
    const result = this.handshake.writeMessage(payload);
    this.messages++;
    if (!result.ok) {
      this.fail(`handshake failed (${result.reason})`);
      return false;
    }
    this.inner.write(withLength(result.message));
    return true;
  }

  /** Extracts the node's first frame (its HELLO) from the queued plaintext, if complete. */
  private takeOwnHello(): Uint8Array | undefined {
    if (this.ownHello) return this.ownHello;
    if (this.plainBytes < FRAME_HEADER_BYTES) return undefined;
    const queued = concatBytes(this.plain);
    this.plain = [queued];
    const split = takeHelloFrame(queued);
    if (!split) return undefined;
    this.ownHello = split.hello;
    this.plain = split.rest.length > 0 ? [split.rest] : [];
    this.plainBytes = split.rest.length;
    return this.ownHello;
  }

  /** Keeps the remote's HELLO, its signature checked, for the node once the link is up. */
  private acceptRemoteHello(payload: Uint8Array): boolean {
    const checked = checkHandshakePayload(payload, this.handshake.remoteStaticKey);
    if (!checked.ok) {
      this.fail(checked.reason);
      return false;
    }
    this.remoteHello = checked.frame;
    return true;
  }

  private open(): void {
    const ciphers = this.handshake.split();
    this.send = ciphers.send;
    this.receive = ciphers.receive;
    this.phase = "open";
    if (this.plainBytes > 0) this.scheduleFlush();
  }

  // Outgoing: the node's frames of one tick, encrypted together.

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Encrypts and writes what the node queued; with `confirm`, an empty message if nothing. */
  private flush(confirm = false): void {
    if (this.phase !== "open" || (this.plainBytes === 0 && !confirm)) return;
    const plain = concatBytes(this.plain);
    this.plain = [];
    this.plainBytes = 0;
    // At least one message: an empty one is the responder's confirmation.
    const out = sealTransport(this.send as CipherState, plain);
    if (this.ending) this.inner.end(out);
    else if (this.inner.write(out) === "overflow") this.fail("slow consumer", { by: "local" });
  }

  // Closing.

  private refuseV1(): void {
    // A v1 peer reads frames in the clear: tell it why, in words it understands.
    this.closeReason = VERSION_ONE_REASON;
    this.phase = "closed";
    this.inner.end(versionOneRefusal());
  }

  private fail(reason: string, options: { by?: "local" | "remote" } = {}): void {
    if (this.phase === "closed") return;
    this.closeReason = reason;
    this.closeBy = options.by ?? "remote";
    this.phase = "closed";
    this.inner.destroy();
  }

  private closeBy: "local" | "remote" | undefined;

  private onInnerClosed(info: StreamClosed): void {
    const wasHandshaking = this.phase === "handshake";
    this.phase = "closed";
    let reason = this.closeReason;
    if (reason === undefined && wasHandshaking && info.by === "remote") {
      // The dialled side hung up on message 1: another room, or not peerchat at all.
      reason =
        this.inner.direction === "outbound"
          ? HANDSHAKE_REFUSED_REASON
          : "closed during the handshake";
    }
    this.handler?.close({
      by: this.closeBy ?? info.by,
      ...(info.error ? { error: info.error } : {}),
      ...(reason !== undefined ? { reason } : {}),
    });
  }
}

/** Wraps a dialler so that every stream it opens runs the secure channel. */
export function secureDialer<R extends { ok: true; stream: ByteStream } | { ok: false }>(
  dial: (endpoint: Endpoint) => Promise<R>,
  options: SecureChannelOptions,
): (endpoint: Endpoint) => Promise<R> {
  return async (endpoint) => {
    const result = await dial(endpoint);
    return result.ok ? { ...result, stream: secureStream(result.stream, options) } : result;
  };
}
