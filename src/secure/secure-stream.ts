import type { CipherState } from "../noise/cipher-state.ts";
import {
  MAX_NOISE_MESSAGE_BYTES,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
  TAG_BYTES,
} from "../noise/constants.ts";
import { HandshakeState } from "../noise/handshake-state.ts";
import { generateKeyPair, type KeyPair } from "../noise/primitives.ts";
import { concatBytes } from "../protocol/bytes.ts";
import {
  FRAME_HEADER_BYTES,
  FrameType,
  HELLO_MAGIC,
  NODE_ID_BYTES,
  PROTOCOL_VERSION,
  SIGNATURE_BYTES,
  WireErrorCode,
} from "../protocol/constants.ts";
import { encodeError } from "../protocol/control.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  StreamClosed,
  WriteStatus,
} from "../transport/byte-stream.ts";
import { FINAL_FRAME_RESERVE_BYTES, MAX_PENDING_BYTES } from "../transport/limits.ts";
import {
  FIRST_MESSAGE_BYTES,
  HANDSHAKE_REFUSED_REASON,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  NOISE_LENGTH_BYTES,
  NOISE_PROLOGUE,
  NOISE_PROTOCOL_NAME,
  STATIC_KEY_SIGNATURE_PREFIX,
} from "./constants.ts";
import { type Identity, verifySignature } from "./identity.ts";
import { roomKey } from "./room.ts";

/** What a secure channel needs to know about this peer. */
export interface SecureChannelOptions {
  /** Signs the Noise static key, binding the identity (the node id) to the link. */
  readonly identity: Identity;
  /** This process's X25519 key pair for Noise. */
  readonly staticKey: KeyPair;
  /** The room's pre-shared key (room.ts): peers in other rooms fail at message 1. */
  readonly roomKey: Uint8Array;
}

const EMPTY = new Uint8Array(0);
// Offset of the node id inside a HELLO payload: magic, then the version byte.
const HELLO_NODE_ID_OFFSET = HELLO_MAGIC.length + 1;

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
 */
export function secureStream(inner: ByteStream, options: SecureChannelOptions): ByteStream {
  return new SecureStream(inner, options);
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
  /** Received bytes not yet making up a whole Noise message. */
  private partial: Uint8Array = EMPTY;
  private ending: Uint8Array | undefined;
  /** The remote's HELLO frame, verified, until the link is up on both ends. */
  private remoteHello: Uint8Array | undefined;
  private closeReason: string | undefined;

  constructor(
    private readonly inner: ByteStream,
    private readonly options: SecureChannelOptions,
  ) {
    this.handshake = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: inner.direction === "outbound",
      prologue: NOISE_PROLOGUE,
      s: options.staticKey,
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
    let buf = chunk;
    if (this.partial.length > 0) {
      buf = new Uint8Array(this.partial.length + chunk.length);
      buf.set(this.partial);
      buf.set(chunk, this.partial.length);
    }
    if (!this.heardBack && this.messages === 0 && looksLikeV1Hello(buf)) {
      this.refuseV1();
      return;
    }
    let offset = 0;
    while (this.phase !== "closed" && buf.length - offset >= NOISE_LENGTH_BYTES) {
      const length = ((buf[offset] as number) << 8) | (buf[offset + 1] as number);
      if (length === 0) {
        this.fail(
          this.phase === "open" ? "empty secure-channel message" : HANDSHAKE_REFUSED_REASON,
        );
        return;
      }
      if (this.phase === "handshake" && !this.plausibleHandshakeLength(length)) {
        this.fail(
          this.heardBack ? "handshake failed (bad message length)" : HANDSHAKE_REFUSED_REASON,
        );
        return;
      }
      if (buf.length - offset - NOISE_LENGTH_BYTES < length) break;
      const message = buf.subarray(
        offset + NOISE_LENGTH_BYTES,
        offset + NOISE_LENGTH_BYTES + length,
      );
      offset += NOISE_LENGTH_BYTES + length;
      if (this.phase === "open") this.onTransportMessage(message);
      else this.onHandshakeMessage(message);
    }
    // Keep the tail (under one message), copied: `chunk` may be reused by the socket.
    this.partial = offset === buf.length ? EMPTY : buf.slice(offset);
  }

  /** Message 1 has one size; later handshake messages are small. Checked before buffering. */
  private plausibleHandshakeLength(length: number): boolean {
    if (this.messages === 0 && this.inner.direction === "inbound")
      return length === FIRST_MESSAGE_BYTES;
    return length <= MAX_HANDSHAKE_MESSAGE_BYTES;
  }

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
    const signature = this.options.identity.sign(
      concatBytes([STATIC_KEY_SIGNATURE_PREFIX, this.options.staticKey.publicKey]),
    );
    if (!this.writeHandshake(concatBytes([hello, signature]))) return;
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
    const queued = this.plainBytes >= FRAME_HEADER_BYTES ? concatBytes(this.plain) : undefined;
    if (!queued) return undefined;
    this.plain = [queued];
    const view = new DataView(queued.buffer, queued.byteOffset, queued.byteLength);
    const length = view.getUint32(0);
    if (queued.length < FRAME_HEADER_BYTES + length) return undefined;
    if (queued[FRAME_HEADER_BYTES] !== FrameType.Hello) {
      throw new Error("the first frame written to a secure stream must be HELLO");
    }
    this.ownHello = queued.slice(FRAME_HEADER_BYTES + 1, FRAME_HEADER_BYTES + length);
    const rest = queued.subarray(FRAME_HEADER_BYTES + length);
    this.plain = rest.length > 0 ? [rest] : [];
    this.plainBytes = rest.length;
    return this.ownHello;
  }

  /**
   * Checks the remote's HELLO signature against the node id it claims and keeps the HELLO
   * for the node, as its first frame once the link is up. A HELLO of another version is
   * kept unchecked (its layout may differ): the node refuses it, naming both versions.
   */
  private acceptRemoteHello(payload: Uint8Array): boolean {
    const remoteStatic = this.handshake.remoteStaticKey;
    if (payload.length < SIGNATURE_BYTES + HELLO_NODE_ID_OFFSET || !remoteStatic) {
      this.fail("handshake carried no HELLO");
      return false;
    }
    const hello = payload.subarray(0, payload.length - SIGNATURE_BYTES);
    const signature = payload.subarray(payload.length - SIGNATURE_BYTES);
    const sameVersion =
      HELLO_MAGIC.every((b, i) => hello[i] === b) && hello[HELLO_MAGIC.length] === PROTOCOL_VERSION;
    if (sameVersion) {
      const nodeId = hello.subarray(HELLO_NODE_ID_OFFSET, HELLO_NODE_ID_OFFSET + NODE_ID_BYTES);
      const signed = concatBytes([STATIC_KEY_SIGNATURE_PREFIX, remoteStatic]);
      if (nodeId.length !== NODE_ID_BYTES || !verifySignature(nodeId, signed, signature)) {
        this.fail("handshake: the identity signature does not match the node id");
        return false;
      }
    }
    const frame = new Uint8Array(FRAME_HEADER_BYTES + 1 + hello.length);
    new DataView(frame.buffer).setUint32(0, 1 + hello.length);
    frame[FRAME_HEADER_BYTES] = FrameType.Hello;
    frame.set(hello, FRAME_HEADER_BYTES + 1);
    this.remoteHello = frame;
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
    const cipher = this.send as CipherState;
    const out = new Uint8Array(plain.length + overheadFor(plain.length));
    let at = 0;
    let from = 0;
    // At least one message: an empty one is the responder's confirmation.
    do {
      const sealed = cipher.encrypt(
        plain.subarray(from, Math.min(plain.length, from + MAX_TRANSPORT_PLAINTEXT_BYTES)),
      );
      at = putFramed(out, at, sealed);
      from += MAX_TRANSPORT_PLAINTEXT_BYTES;
    } while (from < plain.length);
    if (this.ending) this.inner.end(out);
    else if (this.inner.write(out) === "overflow") this.fail("slow consumer", { by: "local" });
  }

  // Closing.

  private refuseV1(): void {
    // A v1 peer reads frames in the clear: tell it why, in words it understands.
    const message = `this peer speaks protocol version ${PROTOCOL_VERSION}, not 1`;
    this.closeReason = "peer speaks protocol version 1";
    this.phase = "closed";
    this.inner.end(encodeError({ code: WireErrorCode.VersionMismatch, message }));
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

/** Bytes of lengths and tags added to `plainBytes` of plaintext, in full-size chunks. */
function overheadFor(plainBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plainBytes / MAX_TRANSPORT_PLAINTEXT_BYTES));
  return chunks * (NOISE_LENGTH_BYTES + TAG_BYTES);
}

function withLength(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(NOISE_LENGTH_BYTES + message.length);
  putFramed(out, 0, message);
  return out;
}

/** Writes `u16 length | message` into `out` at `at`; returns the offset after it. */
function putFramed(out: Uint8Array, at: number, message: Uint8Array): number {
  if (message.length > MAX_NOISE_MESSAGE_BYTES) throw new RangeError("Noise message too large");
  out[at] = message.length >> 8;
  out[at + 1] = message.length & 0xff;
  out.set(message, at + NOISE_LENGTH_BYTES);
  return at + NOISE_LENGTH_BYTES + message.length;
}

/** A v1 HELLO frame: `u32 length | 0x01 | "PCHT"`. A Noise message 1 never starts so. */
function looksLikeV1Hello(buf: Uint8Array): boolean {
  if (buf.length < FRAME_HEADER_BYTES + 1 + HELLO_MAGIC.length) return false;
  if (buf[0] !== 0 || buf[FRAME_HEADER_BYTES] !== FrameType.Hello) return false;
  return HELLO_MAGIC.every((b, i) => buf[FRAME_HEADER_BYTES + 1 + i] === b);
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

/** The options for a peer's secure channels: a fresh Noise static key, the room's PSK. */
export function channelOptions(identity: Identity, room: string): SecureChannelOptions {
  // The Noise static key lives as long as the process; the identity signs it per link.
  return { identity, staticKey: generateKeyPair(), roomKey: roomKey(room) };
}
