import type { CipherState } from "../noise/cipher-state.ts";
import type { KeyPair } from "../noise/primitives.ts";
import type {
  ByteStream,
  ByteStreamHandler,
  EndOptions,
  StreamClosed,
  WriteStatus,
} from "../transport/byte-stream.ts";
import { FINAL_FRAME_RESERVE_BYTES, MAX_PENDING_BYTES } from "../transport/limits.ts";
import type { FixedEphemeral, SecureChannelOptions } from "./channel-options.ts";
import {
  hangUpReason,
  leadingError,
  RefusalWait,
  refusalReason,
  sayingNo,
  TurnAway,
} from "./handshake-refusal.ts";
import {
  NoiseMessageReader,
  type NoiseMessageSink,
  overheadFor,
  sealTransport,
} from "./noise-framing.ts";
import { PlainQueue } from "./plain-queue.ts";
import { type HandshakeWrite, SecureHandshake } from "./secure-handshake.ts";
import { looksLikeV1Hello, VERSION_ONE_REASON, versionOneRefusal } from "./v1-refusal.ts";

export { channelOptions, type SecureChannelOptions } from "./channel-options.ts";

const EMPTY = new Uint8Array(0);
/** Room for the node's writes below the pending-bytes cap: its final frame always fits. */
const WRITE_CAP_BYTES = MAX_PENDING_BYTES - FINAL_FRAME_RESERVE_BYTES;
/** What `plainBytes` of plaintext take on the wire: ciphertext, tags and lengths. */
const wireBytesFor = (plainBytes: number) => plainBytes + overheadFor(plainBytes);

/**
 * Wraps `inner` in a Noise_XXpsk0 channel: the stream the node sees carries the same
 * v1-style frames, while the wire carries `u16 length | ciphertext` messages. The node
 * and the relay do not change.
 *
 * HELLO moves into the handshake: the node's first frame becomes this side's handshake
 * payload, signed by the identity key over the Noise static key; the remote's HELLO,
 * once its signature checks out, is handed up as the first frame read. Frames written
 * before the handshake ends wait, encrypted once it has.
 *
 * Refusals travel in the handshake (docs/PROTOCOL.md §2a, "Refusals"): a responder's
 * ERROR before its HELLO (a full peer) is message 2's payload; an answer to the remote's
 * HELLO (a refusal included) travels in the confirmation. The refused side's node gets
 * the ERROR as its first frame, and the link never comes up. A responder that ends the
 * stream with no ERROR before sending a byte (busy, shutting down) turns the connection
 * away with a FIN ("Turned away"); failures of the handshake itself (wrong room,
 * tampering, a bad signature) are resets. The reason reaches the node as
 * {@link StreamClosed.reason}; nothing the remote sends is thrown.
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
  private readonly handshake: SecureHandshake;
  private ciphers: { readonly send: CipherState; readonly receive: CipherState } | undefined;
  /** Plaintext written by the node, not yet encrypted. */
  private readonly plain = new PlainQueue();
  private flushScheduled = false;
  /** This side's HELLO payload, once the node has written it. */
  private ownHello: Uint8Array | undefined;
  /** Waiting for the node's HELLO to write the next handshake message. */
  private helloWanted = false;
  /** Received bytes, cut into Noise messages. */
  private readonly reader = new NoiseMessageReader();
  /** The node's final frame, once it has ended the stream. */
  private ending: Uint8Array | undefined;
  /** How the node ended it: passed down with the last transport message. */
  private endOptions: EndOptions | undefined;
  /** Responder: its first transport message, the confirmation, is still to be sent. */
  private unconfirmed = false;
  /** Responder refusing in message 2, waiting for message 1. */
  private refusal: RefusalWait | undefined;
  /** Responder turning the connection away without a byte: the place it holds. */
  private turnedAway: TurnAway | undefined;
  /** The remote has sent at least one byte. */
  private answered = false;
  /** The remote's HELLO frame, verified, until the link is up on both ends. */
  private remoteHello: Uint8Array | undefined;
  private closeReason: string | undefined;
  private closeBy: "local" | "remote" | undefined;

  constructor(
    private readonly inner: ByteStream,
    private readonly options: SecureChannelOptions,
    ephemeralKey: KeyPair | undefined,
  ) {
    this.handshake = new SecureHandshake(inner.direction === "outbound", options, ephemeralKey);
  }

  get direction() {
    return this.inner.direction;
  }
  get remote() {
    return this.inner.remote;
  }
  get via() {
    return this.inner.via;
  }
  get local() {
    return this.inner.local;
  }
  get pendingBytes(): number {
    return this.inner.pendingBytes + this.plain.bytes;
  }
  get bytesSent(): number {
    return this.inner.bytesSent;
  }
  get closed(): boolean {
    return this.phase === "closed" || this.ending !== undefined || this.inner.closed;
  }

  start(handler: ByteStreamHandler): void {
    this.handler = handler;
    this.inner.start({
      data: (chunk) => this.onData(chunk),
      close: (info) => this.onInnerClosed(info),
      clear: () => this.handler?.clear?.(),
    });
    if (this.handshake.isMyTurn && this.phase === "handshake") {
      this.sendHandshake(this.handshake.writeFirst());
    }
  }

  write(bytes: Uint8Array, start = 0, end = bytes.length): WriteStatus {
    if (this.closed) return "closed";
    const n = end - start;
    if (n <= 0) return "queued";
    if (this.inner.pendingBytes + wireBytesFor(this.plain.bytes + n) > WRITE_CAP_BYTES)
      return "overflow";
    this.plain.push(bytes, start, end);
    if (this.phase === "open") this.scheduleFlush();
    else if (this.helloWanted) this.continueHandshake();
    return "queued";
  }

  end(final?: Uint8Array, options?: EndOptions): void {
    if (this.closed) return;
    if (this.phase !== "open") {
      // No keys yet to say goodbye with: refuse in message 2, turn away, or reset.
      const no = sayingNo({
        inbound: this.direction === "inbound",
        beforeSecond: this.handshake.beforeSecond,
        nodeSilent: this.ownHello === undefined && this.plain.bytes === 0,
        final,
      });
      if (no.inMessage2 && this.refuseInMessage2(final as Uint8Array)) return;
      if (!(no.turnAway && this.turnAway()))
        this.fail("closed during the handshake", { by: "local" });
      return;
    }
    this.ending = final ?? EMPTY;
    this.endOptions = options;
    if (final) this.plain.push(final);
    this.flush();
    this.inner.end(undefined, options);
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
    if (this.phase === "closed") return;
    this.answered = true;
    const buf = this.reader.join(chunk);
    if (this.handshake.untouched && looksLikeV1Hello(buf)) {
      this.refuseV1();
      return;
    }
    this.reader.read(buf, this.sink);
  }

  private readonly sink: NoiseMessageSink = {
    length: (length) => {
      if (this.phase === "open") {
        if (length === 0) this.fail("empty secure-channel message");
      } else {
        const problem = this.handshake.lengthProblem(length);
        if (problem !== undefined) this.fail(problem);
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
    const result = (this.ciphers as { receive: CipherState }).receive.decrypt(message);
    if (!result.ok) {
      this.fail(
        `secure channel: message failed to decrypt (${result.reason}): tampered or corrupt`,
      );
      return;
    }
    // The responder's first transport message confirms it has the link too: only now is
    // the link up for the initiator, so that "connected" means so on both ends. Unless it
    // opens with an ERROR: the responder's node refused our HELLO, and there is no link.
    const hello = this.remoteHello;
    if (hello) {
      this.remoteHello = undefined;
      const refusal = leadingError(result.plaintext);
      if (refusal) {
        this.takeRefusal(refusal, refusalReason(refusal));
        return;
      }
      this.handler?.data(hello);
      if (this.phase === "closed") return;
    }
    if (result.plaintext.length > 0) this.handler?.data(result.plaintext);
  }

  private onHandshakeMessage(message: Uint8Array): void {
    const read = this.handshake.read(message);
    switch (read.kind) {
      case "failed":
        this.fail(read.reason);
        return;
      case "refused":
        this.takeRefusal(read.frame, read.reason);
        return;
      case "first":
        // Message 1 proved the room: answer it, with the node's refusal if it ended so.
        if (this.ending) this.sendRefusal(this.ending);
        else this.continueHandshake();
        return;
      case "hello":
        if (!this.handshake.isDone) {
          // Initiator, message 2 read: message 3 next; the HELLO waits for the confirmation.
          this.remoteHello = read.frame;
          this.continueHandshake();
          return;
        }
        // Responder, message 3 read: the node reads the HELLO first, so that its answer
        // (its first PING, or a refusal) goes out in the confirmation, sent even if empty.
        this.open();
        this.handler?.data(read.frame);
        this.flush();
        return;
    }
  }

  /** Writes our next handshake message once the node's HELLO is known. */
  private continueHandshake(): void {
    const hello = this.takeOwnHello();
    if (!hello) {
      this.helloWanted = true;
      return;
    }
    this.helloWanted = false;
    if (this.sendHandshake(this.handshake.writeHello(hello)) && this.handshake.isDone) {
      this.open();
    }
  }

  private sendHandshake(write: HandshakeWrite): boolean {
    if (!write.ok) {
      this.fail(write.reason);
      return false;
    }
    this.inner.write(write.wire);
    return true;
  }

  /** The node's first frame (its HELLO) off the queued plaintext, once complete. */
  private takeOwnHello(): Uint8Array | undefined {
    this.ownHello ??= this.plain.takeHello();
    return this.ownHello;
  }

  private open(): void {
    this.ciphers = this.handshake.split();
    this.phase = "open";
    this.unconfirmed = this.direction === "inbound";
    if (this.plain.bytes > 0) this.scheduleFlush();
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

  /** Encrypts and writes what the node queued; the responder's confirmation even if empty. */
  private flush(): void {
    if (this.phase !== "open" || (this.plain.bytes === 0 && !this.unconfirmed)) return;
    this.unconfirmed = false;
    const out = sealTransport((this.ciphers as { send: CipherState }).send, this.plain.take());
    if (this.ending) this.inner.end(out, this.endOptions);
    else if (this.inner.write(out) === "overflow") this.fail("slow consumer", { by: "local" });
  }

  /** Sends the node's ERROR as message 2, now or once message 1 is in, if a place to wait is free. */
  private refuseInMessage2(final: Uint8Array): boolean {
    // The deadline of §3 still holds: a dialler that never speaks is reset.
    this.refusal = RefusalWait.hold(this.options, (why) => this.fail(why, { by: "local" }));
    if (!this.refusal) return false;
    this.ending = final.slice();
    if (this.handshake.isMyTurn) this.sendRefusal(this.ending);
    return true;
  }

  /** Turns the connection away with a FIN and not a byte, if a place is free. */
  private turnAway(): boolean {
    this.turnedAway = TurnAway.hold(this.options);
    if (this.turnedAway) this.finish("turned away before the handshake", "local");
    return this.turnedAway !== undefined;
  }

  /** Message 2 with the node's ERROR as its payload, then the end (FIN). */
  private sendRefusal(error: Uint8Array): void {
    this.refusal?.disarm();
    const write = this.handshake.writeRefusal(error);
    if (!write.ok) {
      this.fail(write.reason, { by: "local" });
      return;
    }
    this.finish("refused during the handshake", "local", write.wire);
  }

  /** The remote refused us: its ERROR is the node's first frame; nothing more is sent. */
  private takeRefusal(error: Uint8Array, reason: string): void {
    this.phase = "closed"; // whatever the node does in reaction, it is over
    this.handler?.data(error);
    this.finish(reason, "remote");
  }

  private refuseV1(): void {
    // A v1 peer reads frames in the clear: tell it why, in words it understands.
    this.finish(VERSION_ONE_REASON, "local", versionOneRefusal());
  }

  /** Closes in good order (FIN), after `last` if given: a refusal ends the exchange. */
  private finish(reason: string, by: "local" | "remote", last?: Uint8Array): void {
    this.closeReason = reason;
    this.closeBy = by;
    this.phase = "closed";
    this.inner.end(last);
  }

  private fail(reason: string, options: { by?: "local" | "remote" } = {}): void {
    if (this.phase === "closed") return;
    this.closeReason = reason;
    this.closeBy = options.by ?? "remote";
    this.phase = "closed";
    this.inner.destroy();
  }

  private onInnerClosed(info: StreamClosed): void {
    this.refusal?.release();
    this.turnedAway?.release();
    const hungUp = this.phase === "handshake" && info.by === "remote";
    this.phase = "closed";
    // A reason from below (a relay's circuit cut for a limit) says more than "closed".
    const reason =
      this.closeReason ??
      info.reason ??
      (hungUp
        ? hangUpReason(this.direction === "outbound", this.answered, !!info.error)
        : undefined);
    this.handler?.close({
      by: this.closeBy ?? info.by,
      ...(info.error ? { error: info.error } : {}),
      ...(reason !== undefined ? { reason } : {}),
    });
  }
}
