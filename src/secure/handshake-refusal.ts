/**
 * Refusals inside the handshake (docs/PROTOCOL.md §2a, "Refusals"): an ERROR frame in
 * place of the responder's HELLO in message 2, or at the head of its confirmation.
 */

import { DHLEN_BYTES, TAG_BYTES } from "../noise/constants.ts";
import { FRAME_HEADER_BYTES, FrameType } from "../protocol/constants.ts";
import { decodeError } from "../protocol/control.ts";
import type { SecureChannelOptions } from "./channel-options.ts";
import {
  HANDSHAKE_REFUSED_REASON,
  HANDSHAKE_TURNED_AWAY_REASON,
  MAX_HANDSHAKE_MESSAGE_BYTES,
  MAX_TURNING_AWAY,
  MAX_WAITING_REFUSALS,
  REFUSAL_WAIT_MS,
} from "./constants.ts";

/** Message 2 around its payload: `e`, the encrypted `s` and the payload's tag. */
const MESSAGE_2_OVERHEAD_BYTES = DHLEN_BYTES + (DHLEN_BYTES + TAG_BYTES) + TAG_BYTES;

/** What a message 2 payload is: the responder's HELLO, its refusal, or a broken refusal. */
export type SecondPayload =
  | { readonly kind: "hello" }
  | { readonly kind: "refusal"; readonly frame: Uint8Array; readonly reason: string }
  | { readonly kind: "malformed" };

/** The frame's u32 length says exactly `bytes.length` and its type is ERROR. */
export function wholeErrorFrame(bytes: Uint8Array): boolean {
  if (bytes.length <= FRAME_HEADER_BYTES) return false;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  return (
    length === bytes.length - FRAME_HEADER_BYTES && bytes[FRAME_HEADER_BYTES] === FrameType.Error
  );
}

/**
 * Reads a message 2 payload. A refusal is exactly one ERROR frame, decoding cleanly; a
 * payload that is one ERROR frame but does not decode is `malformed`. Anything else is
 * taken for a HELLO and checked as one (a HELLO payload starts with its magic, never
 * with a frame length).
 */
export function secondPayload(payload: Uint8Array): SecondPayload {
  if (!wholeErrorFrame(payload)) return { kind: "hello" };
  try {
    decodeError(payload.subarray(FRAME_HEADER_BYTES + 1));
  } catch {
    return { kind: "malformed" };
  }
  const frame = payload.slice();
  return { kind: "refusal", frame, reason: refusalReason(frame) };
}

/** What the refused side reports, from the ERROR frame it got: `refused: <message>`. */
export function refusalReason(error: Uint8Array): string {
  try {
    const { code, message } = decodeError(error.subarray(FRAME_HEADER_BYTES + 1));
    return `refused: ${message || `error ${code}`}`;
  } catch {
    return "refused: malformed ERROR";
  }
}

/**
 * Whether `final`, the node's last frame on a stream still waiting to write message 2,
 * can travel as its payload: an ERROR, small enough for a handshake message.
 */
export function fitsMessage2(final: Uint8Array): boolean {
  return (
    wholeErrorFrame(final) && final.length <= MAX_HANDSHAKE_MESSAGE_BYTES - MESSAGE_2_OVERHEAD_BYTES
  );
}

/**
 * The ERROR frame that opens the responder's confirmation, if the confirmation starts
 * with a whole one: its refusal of our HELLO. Not decoded (the node tolerates a garbled
 * ERROR as a refusal too).
 */
export function leadingError(plain: Uint8Array): Uint8Array | undefined {
  if (plain.length <= FRAME_HEADER_BYTES || plain[FRAME_HEADER_BYTES] !== FrameType.Error) {
    return undefined;
  }
  const length = new DataView(plain.buffer, plain.byteOffset, plain.byteLength).getUint32(0);
  const end = FRAME_HEADER_BYTES + length;
  return length > 0 && end <= plain.length ? plain.slice(0, end) : undefined;
}

/**
 * What the dialler reports when the listener closed the connection during the
 * handshake (docs/PROTOCOL.md §2a): with not a byte in answer, a reset is what another
 * room gets, and a FIN what a busy listener turning it away sends; once the listener
 * has answered, neither is about the room.
 */
export function unansweredReason(answered: boolean, reset: boolean): string {
  if (answered) return "closed during the handshake";
  return reset ? HANDSHAKE_REFUSED_REASON : HANDSHAKE_TURNED_AWAY_REASON;
}

/** How a responder whose node ends the stream before the link is up says no. */
export interface SayingNo {
  /** The node's ERROR can be message 2's payload (if a place to wait for message 1 is free). */
  readonly inMessage2: boolean;
  /** Else the connection can be turned away with a FIN and no byte (if a place is free). */
  readonly turnAway: boolean;
}

/**
 * Decides how to refuse (docs/PROTOCOL.md §2a): only a responder before message 2 can
 * do either. The node's ERROR rides in message 2 if the node has written nothing yet
 * (no HELLO) and it fits. A close without an ERROR (busy, shutting down), or with one
 * that could not ride (no place left to wait in), is a turn-away. An ERROR after the
 * node's HELLO is the handshake deadline: a reset, as for every failed handshake.
 */
export function sayingNo(s: {
  readonly inbound: boolean;
  readonly beforeSecond: boolean;
  /** The node has written nothing on the stream (no HELLO). */
  readonly nodeSilent: boolean;
  readonly final: Uint8Array | undefined;
}): SayingNo {
  const open = s.inbound && s.beforeSecond;
  return {
    inMessage2: open && s.nodeSilent && s.final !== undefined && fitsMessage2(s.final),
    turnAway: open && !(s.final && wholeErrorFrame(s.final) && !s.nodeSilent),
  };
}

/**
 * A listener's reason for a connection closed before it sent a byte: a port check (a
 * neighbour's dial-back, docs/PROTOCOL.md §5d, or a scanner), not a peer that failed to
 * get in. Logged quietly.
 */
export const SILENT_HANG_UP_REASON = "closed before sending a byte";

/**
 * Why the connection ended, as this side tells it, when the remote closed it during the
 * handshake: the dialler tells a turn-away from another room ({@link unansweredReason});
 * the listener, a connection that never said a word from one that stopped short.
 */
export function hangUpReason(outbound: boolean, answered: boolean, reset: boolean): string {
  if (outbound) return unansweredReason(answered, reset);
  return answered ? "closed during the handshake" : SILENT_HANG_UP_REASON;
}

/** A bounded number of places for each peer (keyed by its channel options). */
class Places {
  private readonly taken = new WeakMap<SecureChannelOptions, number>();

  constructor(readonly max: number) {}

  /** Takes a place; false when all are taken. */
  take(options: SecureChannelOptions): boolean {
    const n = this.taken.get(options) ?? 0;
    if (n >= this.max) return false;
    this.taken.set(options, n + 1);
    return true;
  }

  /** Gives a place back. */
  give(options: SecureChannelOptions): void {
    const n = this.taken.get(options) ?? 0;
    if (n <= 1) this.taken.delete(options);
    else this.taken.set(options, n - 1);
  }
}

// Refused connections held open until message 1 arrives, per peer.
const waiting = new Places(MAX_WAITING_REFUSALS);

// Connections turned away without a byte, held half-closed until the dialler closes, per peer.
const turningAway = new Places(MAX_TURNING_AWAY);

/**
 * A connection turned away with a FIN: one of the peer's {@link MAX_TURNING_AWAY}
 * places, since the FIN keeps a descriptor until the dialler closes its end.
 */
export class TurnAway {
  private held = true;

  private constructor(private readonly options: SecureChannelOptions) {}

  /** Takes a place; undefined when every place is taken (the connection is reset instead). */
  static hold(options: SecureChannelOptions): TurnAway | undefined {
    return turningAway.take(options) ? new TurnAway(options) : undefined;
  }

  /** The connection is closed: its place is free again. Idempotent. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    turningAway.give(this.options);
  }
}

/**
 * A responder's wait for message 1, to answer it with a refusal: one of the peer's
 * {@link MAX_WAITING_REFUSALS} places, and the handshake deadline.
 */
export class RefusalWait {
  private readonly timer: ReturnType<typeof setTimeout>;
  private held = true;

  private constructor(
    private readonly options: SecureChannelOptions,
    onDeadline: (reason: string) => void,
  ) {
    const reason = `no handshake within ${REFUSAL_WAIT_MS / 1000} s`;
    this.timer = setTimeout(() => onDeadline(reason), REFUSAL_WAIT_MS);
    // The timer alone never keeps a process up; the socket does, for as long as it is open.
    this.timer.unref?.();
  }

  /**
   * Takes a place and arms the deadline; undefined when every place is taken (the
   * connection is then turned away at once, without a byte: a storm against a full peer
   * holds no more connections open than that).
   */
  static hold(
    options: SecureChannelOptions,
    onDeadline: (reason: string) => void,
  ): RefusalWait | undefined {
    return waiting.take(options) ? new RefusalWait(options, onDeadline) : undefined;
  }

  /** Message 1 came (or the connection went): the deadline no longer applies. */
  disarm(): void {
    clearTimeout(this.timer);
  }

  /** The connection is closed: its place is free again. Idempotent. */
  release(): void {
    clearTimeout(this.timer);
    if (!this.held) return;
    this.held = false;
    waiting.give(this.options);
  }
}
