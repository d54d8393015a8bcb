import { ProtocolError } from "../errors.ts";
import { ByteWriter, writeU32 } from "../protocol/byte-writer.ts";
import { copyBytes } from "../protocol/bytes.ts";
import { chatBodyBytes, checkChatBody, writeChatBody } from "../protocol/chat.ts";
import {
  FloodKind,
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_HOPS,
  MESSAGE_ID_BYTES,
} from "../protocol/constants.ts";
import { checkDirectBody } from "../protocol/direct.ts";
import {
  FLOOD_HEADER_BYTES,
  FLOOD_PAYLOAD_OFFSET,
  floodBodyAt,
  floodHops,
  floodKind,
  floodOrigin,
  floodSentAt,
  floodSignature,
  floodSigningBytes,
  keptInHistory,
  signFloodFrame,
  writeFloodEnvelope,
} from "../protocol/flood.ts";
import { decodePresenceBody, isPresenceKind, type Presence } from "../protocol/presence.ts";
import { verifySignature } from "../secure/identity.ts";
import {
  DEFAULT_FLOOD_LIMITS,
  type FloodLimits,
  floodLimitKey,
  OriginLimiter,
} from "./flood-limits.ts";
import type { SeenCache } from "./seen-cache.ts";

/** What happened to one received FLOOD. */
export type RelayOutcome =
  /** Already delivered once (it came round a cycle or by a second path): dropped. */
  | { readonly status: "duplicate" }
  /** Broke the protocol: not delivered, not relayed, not remembered (so an honest copy still passes). */
  | { readonly status: "invalid"; readonly error: ProtocolError }
  /**
   * The signature does not verify against its origin: forged or altered on the way.
   * Dropped and not remembered, so the genuine message with the same id still passes.
   */
  | { readonly status: "forged" }
  /**
   * `sentAt` lies outside the seen-cache's window: its id may already be forgotten, so
   * it could be a replay. Dropped.
   */
  | { readonly status: "stale" }
  /**
   * The neighbour that sent it is over its rate: dropped unread, before anything costs
   * us (what that means for the neighbour is the abuse guard's call).
   */
  | { readonly status: "throttled" }
  /**
   * Genuine, but its author is over the per-author rate: remembered as seen (a copy by
   * another path is a duplicate), not delivered, not relayed.
   */
  | { readonly status: "origin-limited" }
  /** New: deliver it, and (if `forward`) relay it with `hops + 1` to every neighbour but the sender. */
  | {
      readonly status: "accepted";
      /** The decoded presence body, for presence kinds; CHAT is validated but not decoded. */
      readonly presence: Presence | undefined;
      /** False when `hops + 1` reached {@link MAX_HOPS}. */
      readonly forward: boolean;
    };

/** Counters, for benchmarks and tests. */
export interface RelayStats {
  originated: number;
  accepted: number;
  duplicates: number;
  invalid: number;
  /** Signatures that did not verify. */
  forged: number;
  /** Outside the time window. */
  stale: number;
  /** Signatures checked (each new id once). */
  verified: number;
  /** FLOOD frames dropped unread: their neighbour was over its rate. */
  throttled: number;
  /** Verified messages dropped: their author was over its rate. */
  originLimited: number;
  /** Accepted but not forwarded because hops + 1 reached {@link MAX_HOPS}. */
  hopLimited: number;
}

const DUPLICATE: RelayOutcome = Object.freeze({ status: "duplicate" });
const FORGED: RelayOutcome = Object.freeze({ status: "forged" });
const STALE: RelayOutcome = Object.freeze({ status: "stale" });
const THROTTLED: RelayOutcome = Object.freeze({ status: "throttled" });
const ORIGIN_LIMITED: RelayOutcome = Object.freeze({ status: "origin-limited" });

/** What a neighbour may still send us: one token per FLOOD frame (the guard's bucket). */
export interface RateBudget {
  take(now: number): boolean;
}

/** Who originates messages: a public key (the node id) and the matching signer. */
export interface FloodSigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** Options for {@link Relay}. */
export interface RelayOptions {
  /** Checks an Ed25519 signature; default node:crypto. */
  readonly verify?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;
  /** Fills message ids; default crypto.getRandomValues. */
  readonly fillRandom?: (bytes: Uint8Array) => void;
  /** The per-author rate; {@link DEFAULT_FLOOD_LIMITS} by default. */
  readonly limits?: FloodLimits;
  /** The `seq` of the last message this node wrote before (it continues across restarts). */
  readonly lastSeq?: number;
}

/** What a stored message received by sync may be, besides the checks of a live one. */
export interface HistoryWindow {
  /** The oldest `sentAt` kept: anything older is refused. */
  readonly horizon: number;
  /** Whether the id (16 bytes at `bytes[at…]`) is held already. */
  held(bytes: Uint8Array, at: number): boolean;
}
const ACCEPTED_FORWARD: RelayOutcome = Object.freeze({
  status: "accepted",
  presence: undefined,
  forward: true,
});
const ACCEPTED_LAST_HOP: RelayOutcome = Object.freeze({
  status: "accepted",
  presence: undefined,
  forward: false,
});

/** Message ids are drawn from a pool of random bytes refilled this many ids at a time. */
const ID_POOL_IDS = 256;

/**
 * The flood relay's decisions, free of sockets: which messages are new, which are
 * duplicates, what to forward. The node does the sending.
 *
 * Receiving: a neighbour over its rate has the frame dropped unread. An id already
 * seen is dropped. Otherwise a message whose `sentAt` is
 * outside the seen-cache's window is dropped (it could be a replay of one forgotten),
 * the body is validated for the kinds we know, and the origin's signature is verified:
 * only then is the id remembered (a forged copy must not block the genuine one), its
 * author held to the per-author rate, the message delivered, and unless `hops + 1 >= MAX_HOPS` forwarded with `hops + 1`. In
 * any topology, cycles included, every node therefore delivers a message once and sends
 * it over each of its links at most once. Each id is verified once, on first sight.
 *
 * This is the hot path of the whole program: it reads the payload in place, keys the
 * seen-cache on the raw id bytes and allocates nothing for an ordinary message.
 */
export class Relay {
  readonly stats: RelayStats = {
    originated: 0,
    accepted: 0,
    duplicates: 0,
    invalid: 0,
    forged: 0,
    stale: 0,
    verified: 0,
    throttled: 0,
    originLimited: 0,
    hopLimited: 0,
  };
  private seq = 0;
  private readonly idPool = new Uint8Array(ID_POOL_IDS * MESSAGE_ID_BYTES);
  private idPoolNext = ID_POOL_IDS;

  private readonly nodeId: Uint8Array;
  private readonly verify: NonNullable<RelayOptions["verify"]>;
  private readonly fillRandom: NonNullable<RelayOptions["fillRandom"]>;
  private readonly origins: OriginLimiter | undefined;
  /** The presence body {@link check} decoded: kept off the heap for the common CHAT. */
  private checkedPresence: Presence | undefined;

  constructor(
    private readonly signer: FloodSigner,
    private readonly seen: SeenCache,
    options: RelayOptions = {},
  ) {
    this.nodeId = signer.publicKey;
    this.verify = options.verify ?? verifySignature;
    this.fillRandom = options.fillRandom ?? ((bytes) => crypto.getRandomValues(bytes));
    this.seq = options.lastSeq ?? 0;
    const limits = options.limits ?? DEFAULT_FLOOD_LIMITS;
    this.origins =
      limits.perOriginPerSecond === Number.POSITIVE_INFINITY
        ? undefined
        : new OriginLimiter(limits);
  }

  /**
   * Builds a FLOOD frame from this node (fresh random id, next seq, `sentAt` = `now`,
   * hops 0) whose body is written by `writeBody` into exactly `bodyBytes`, and marks its
   * id seen. Returns the whole frame.
   */
  originate(
    kind: number,
    bodyBytes: number,
    writeBody: (w: ByteWriter) => void,
    now: number,
  ): Uint8Array {
    const w = ByteWriter.frame(FrameType.Flood, FLOOD_HEADER_BYTES + bodyBytes).skip(
      FLOOD_HEADER_BYTES,
    );
    writeBody(w);
    const frame = w.done();
    this.nextId(frame, FLOOD_PAYLOAD_OFFSET);
    return this.seal(frame, kind, now);
  }

  /**
   * The common case of {@link originate}, without intermediate allocations: a CHAT
   * frame from already-encoded nick bytes and the first `textBytes` bytes of `text`.
   */
  originateChat(nick: Uint8Array, text: Uint8Array, textBytes: number, now: number): Uint8Array {
    const body = chatBodyBytes(nick.length, textBytes);
    const frame = new Uint8Array(FLOOD_PAYLOAD_OFFSET + FLOOD_HEADER_BYTES + body);
    writeU32(frame, 0, frame.length - FRAME_HEADER_BYTES);
    frame[FRAME_HEADER_BYTES] = FrameType.Flood;
    this.nextId(frame, FLOOD_PAYLOAD_OFFSET);
    writeChatBody(frame, floodBodyAt(FLOOD_PAYLOAD_OFFSET), nick, text, textBytes);
    return this.seal(frame, FloodKind.Chat, now);
  }

  /** Fills in the envelope of a frame whose id and body are written, signs it, marks it seen. */
  private seal(frame: Uint8Array, kind: number, now: number): Uint8Array {
    if (keptInHistory(kind)) this.seq++;
    const envelope = { origin: this.nodeId, seq: this.seq, sentAt: now, hops: 0, kind };
    writeFloodEnvelope(frame, FLOOD_PAYLOAD_OFFSET, envelope);
    signFloodFrame(frame, (m) => this.signer.sign(m));
    this.seen.add(frame, FLOOD_PAYLOAD_OFFSET, now);
    this.stats.originated++;
    return frame;
  }

  /**
   * A FLOOD frame another signer wrote for this node to send (a direct message, sealed
   * and signed by a one-time key above the node): marked seen, counted as ours.
   */
  published(frame: Uint8Array, now: number): void {
    this.seen.add(frame, FLOOD_PAYLOAD_OFFSET, now);
    this.stats.originated++;
  }

  /** Copies the next random message id to `f[at]`; returns the offset after it. */
  private nextId(f: Uint8Array, at: number): number {
    if (this.idPoolNext === ID_POOL_IDS) {
      this.fillRandom(this.idPool);
      this.idPoolNext = 0;
    }
    return copyBytes(this.idPool, this.idPoolNext++ * MESSAGE_ID_BYTES, f, at, MESSAGE_ID_BYTES);
  }

  /**
   * Decides what to do with a FLOOD received at `now` from a neighbour with `budget`
   * (none: unlimited); its payload is `bytes[start, end)`, read in place.
   */
  receive(
    bytes: Uint8Array,
    start: number,
    end: number,
    now: number,
    budget?: RateBudget,
  ): RelayOutcome {
    // Before anything costs us: a neighbour past its rate is dropped unread.
    if (budget !== undefined && !budget.take(now)) {
      this.stats.throttled++;
      return THROTTLED;
    }
    const whole = end - start >= FLOOD_HEADER_BYTES;
    if (whole && this.seen.has(bytes, start)) {
      this.stats.duplicates++;
      return DUPLICATE;
    }
    // An author already past its rate is refused before its signature costs us anything
    // (it spends no budget, so a forger cannot drain an honest author's), and the id is
    // not remembered (it was not verified). Flooding authors thus cost a lookup a frame.
    // The key is made once, for this check and the one after verification.
    const limitKey =
      whole && this.origins !== undefined ? floodLimitKey(bytes, start, end) : undefined;
    if (limitKey !== undefined && this.origins?.exhausted(limitKey, now) === true) {
      this.stats.originLimited++;
      return ORIGIN_LIMITED;
    }
    // Outside the window the seen-cache covers, the id may have been forgotten: a replay.
    const stale = whole && Math.abs(now - floodSentAt(bytes, start)) > this.seen.ttlMs;
    const refused = this.check(bytes, start, end, stale);
    if (refused !== undefined) return refused;
    // The id `has` just looked up (verification does not touch the cache): no second lookup.
    this.seen.addLookedUp(now);
    // Per author, once the signature proves who the author is (else a forger could spend
    // an honest author's budget).
    if (limitKey !== undefined && this.origins?.allow(limitKey, now) === false) {
      this.stats.originLimited++;
      return ORIGIN_LIMITED;
    }
    return this.accepted(bytes, start);
  }

  /**
   * Decides about a stored message a neighbour sent by sync (docs/PROTOCOL.md §5c):
   * checked exactly like a live FLOOD (body, signature), but the store is its seen set,
   * and its age may go back to the retention `window` (not further, not into the
   * future beyond the live window). Accepted, it is never forwarded as a FLOOD; within
   * the live window it is remembered as seen too, so a live copy is a duplicate.
   */
  receiveStored(
    bytes: Uint8Array,
    start: number,
    end: number,
    now: number,
    window: HistoryWindow,
  ): RelayOutcome {
    const whole = end - start >= FLOOD_HEADER_BYTES;
    if (whole && (window.held(bytes, start) || this.seen.has(bytes, start))) {
      this.stats.duplicates++;
      return DUPLICATE;
    }
    const sentAt = whole ? floodSentAt(bytes, start) : now;
    const stale = sentAt < window.horizon || sentAt - now > this.seen.ttlMs;
    if (whole && !keptInHistory(floodKind(bytes, start)))
      return this.invalid(notKept(bytes, start));
    const refused = this.check(bytes, start, end, stale);
    if (refused !== undefined) return refused;
    if (now - sentAt <= this.seen.ttlMs) this.seen.add(bytes, start, now);
    return this.accepted(bytes, start);
  }

  /**
   * The checks every FLOOD gets, cheapest first: its length, its body for the kinds we
   * know, its age (`stale`, decided by the caller), and last its origin's signature.
   * Returns why it is refused, or undefined with a presence body in {@link checkedPresence}.
   */
  private check(
    bytes: Uint8Array,
    start: number,
    end: number,
    stale: boolean,
  ): RelayOutcome | undefined {
    if (end - start < FLOOD_HEADER_BYTES) {
      const message = `FLOOD of ${end - start} bytes, shorter than its ${FLOOD_HEADER_BYTES}-byte header`;
      return this.invalid(new ProtocolError("TRUNCATED", message));
    }
    const kind = floodKind(bytes, start);
    const body = floodBodyAt(start);
    let presence: Presence | undefined;
    this.checkedPresence = undefined;
    try {
      if (kind === FloodKind.Chat) checkChatBody(bytes, body, end);
      else if (isPresenceKind(kind)) presence = decodePresenceBody(kind, bytes.subarray(body, end));
      else if (kind === FloodKind.Direct) checkDirectBody(body, end);
    } catch (error) {
      if (error instanceof ProtocolError) return this.invalid(error);
      throw error;
    }
    if (stale) {
      this.stats.stale++;
      return STALE;
    }
    // Last, as the dearest check: about 60 µs, against well under one for the rest.
    this.stats.verified++;
    const signature = floodSignature(bytes, start);
    if (!this.verify(floodOrigin(bytes, start), floodSigningBytes(bytes, start, end), signature)) {
      this.stats.forged++;
      return FORGED;
    }
    this.checkedPresence = presence;
    return undefined;
  }

  private accepted(bytes: Uint8Array, start: number): RelayOutcome {
    const presence = this.checkedPresence;
    this.stats.accepted++;
    const forward = floodHops(bytes, start) + 1 < MAX_HOPS;
    if (!forward) this.stats.hopLimited++;
    if (presence) return { status: "accepted", presence, forward };
    return forward ? ACCEPTED_FORWARD : ACCEPTED_LAST_HOP;
  }

  private invalid(error: ProtocolError): RelayOutcome {
    this.stats.invalid++;
    return { status: "invalid", error };
  }
}

function notKept(bytes: Uint8Array, start: number): ProtocolError {
  return new ProtocolError(
    "BAD_FIELD",
    `HISTORY of FLOOD kind ${floodKind(bytes, start)}, which is not kept`,
  );
}
