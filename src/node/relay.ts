import { ProtocolError } from "../errors.ts";
import { ByteWriter, writeU32 } from "../protocol/byte-writer.ts";
import { checkChatBody } from "../protocol/chat.ts";
import { FloodKind, FrameType, MAX_HOPS, MESSAGE_ID_BYTES } from "../protocol/constants.ts";
import { FLOOD_HEADER_BYTES, FLOOD_HOPS_OFFSET } from "../protocol/flood.ts";
import { decodePresenceBody, isPresenceKind, type Presence } from "../protocol/presence.ts";
import type { SeenCache } from "./seen-cache.ts";

/** What happened to one received FLOOD. */
export type RelayOutcome =
  /** Already delivered once (it came round a cycle or by a second path): dropped. */
  | { readonly status: "duplicate" }
  /** Broke the protocol: not delivered, not relayed, not remembered (so an honest copy still passes). */
  | { readonly status: "invalid"; readonly error: ProtocolError }
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
  /** Accepted but not forwarded because hops + 1 reached {@link MAX_HOPS}. */
  hopLimited: number;
}

const DUPLICATE: RelayOutcome = Object.freeze({ status: "duplicate" });
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
 * Receiving: an id already seen is dropped. Otherwise the body is validated for the
 * kinds we know, the id is remembered, the message is delivered, and unless
 * `hops + 1 >= MAX_HOPS` it is forwarded with `hops + 1`. In any topology, cycles
 * included, every node therefore delivers a message once and sends it over each of
 * its links at most once.
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
    hopLimited: 0,
  };
  private seq = 0;
  private readonly idPool = new Uint8Array(ID_POOL_IDS * MESSAGE_ID_BYTES);
  private idPoolNext = ID_POOL_IDS;

  constructor(
    private readonly nodeId: Uint8Array,
    private readonly seen: SeenCache,
    private readonly fillRandom: (bytes: Uint8Array) => void = (bytes) =>
      crypto.getRandomValues(bytes),
  ) {}

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
    const id = new Uint8Array(MESSAGE_ID_BYTES);
    this.nextId(id, 0);
    const w = ByteWriter.frame(FrameType.Flood, FLOOD_HEADER_BYTES + bodyBytes)
      .bytes(id)
      .bytes(this.nodeId)
      .u32(++this.seq)
      .u64(now)
      .u8(0)
      .u8(kind);
    writeBody(w);
    const frame = w.done();
    this.seen.add(frame, FRAME_PAYLOAD_OFFSET, now);
    this.stats.originated++;
    return frame;
  }

  /**
   * The common case of {@link originate}, without intermediate allocations: a CHAT
   * frame from already-encoded nick bytes and the first `textBytes` bytes of `text`.
   */
  originateChat(nick: Uint8Array, text: Uint8Array, textBytes: number, now: number): Uint8Array {
    const size = FRAME_PAYLOAD_OFFSET + FLOOD_HEADER_BYTES + 2 + nick.length + 2 + textBytes;
    const f = new Uint8Array(size);
    writeU32(f, 0, size - 4);
    f[4] = FrameType.Flood;
    let o = this.nextId(f, FRAME_PAYLOAD_OFFSET);
    o = copy(this.nodeId, 0, f, o, this.nodeId.length);
    writeU32(f, o, ++this.seq);
    writeU32(f, o + 4, Math.floor(now / 0x1_0000_0000));
    writeU32(f, o + 8, now >>> 0);
    f[o + 12] = 0; // hops
    f[o + 13] = FloodKind.Chat;
    o += 14;
    f[o] = nick.length >>> 8;
    f[o + 1] = nick.length;
    o = copy(nick, 0, f, o + 2, nick.length);
    f[o] = textBytes >>> 8;
    f[o + 1] = textBytes;
    copy(text, 0, f, o + 2, textBytes);
    this.seen.add(f, FRAME_PAYLOAD_OFFSET, now);
    this.stats.originated++;
    return f;
  }

  /** Copies the next random message id to `f[at]`; returns the offset after it. */
  private nextId(f: Uint8Array, at: number): number {
    if (this.idPoolNext === ID_POOL_IDS) {
      this.fillRandom(this.idPool);
      this.idPoolNext = 0;
    }
    return copy(this.idPool, this.idPoolNext++ * MESSAGE_ID_BYTES, f, at, MESSAGE_ID_BYTES);
  }

  /**
   * Decides what to do with a FLOOD received from a neighbour at `now`; its payload is
   * `bytes[start, end)`, read in place.
   */
  receive(bytes: Uint8Array, start: number, end: number, now: number): RelayOutcome {
    if (end - start < FLOOD_HEADER_BYTES) {
      const message = `FLOOD of ${end - start} bytes, shorter than its ${FLOOD_HEADER_BYTES}-byte header`;
      return this.invalid(new ProtocolError("TRUNCATED", message));
    }
    if (this.seen.has(bytes, start)) {
      this.stats.duplicates++;
      return DUPLICATE;
    }
    const kind = bytes[start + FLOOD_HOPS_OFFSET + 1] as number;
    let presence: Presence | undefined;
    try {
      if (kind === FloodKind.Chat) checkChatBody(bytes, start + FLOOD_HEADER_BYTES, end);
      else if (isPresenceKind(kind))
        presence = decodePresenceBody(kind, bytes.subarray(start + FLOOD_HEADER_BYTES, end));
    } catch (error) {
      if (error instanceof ProtocolError) return this.invalid(error);
      throw error;
    }
    // The id `has` just looked up: no second lookup.
    this.seen.addLookedUp(now);
    this.stats.accepted++;
    const forward = (bytes[start + FLOOD_HOPS_OFFSET] as number) + 1 < MAX_HOPS;
    if (!forward) this.stats.hopLimited++;
    if (presence) return { status: "accepted", presence, forward };
    return forward ? ACCEPTED_FORWARD : ACCEPTED_LAST_HOP;
  }

  private invalid(error: ProtocolError): RelayOutcome {
    this.stats.invalid++;
    return { status: "invalid", error };
  }
}

/** Where a frame's payload starts: after the u32 length and the type byte. */
const FRAME_PAYLOAD_OFFSET = 5;

/**
 * Copies `n` bytes; returns the end offset in `to`. Small copies (ids, nicks, short
 * texts) are cheaper as a loop than as a `subarray` plus a native `set`.
 */
function copy(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, n: number): number {
  if (n > 256) {
    to.set(from.subarray(fromAt, fromAt + n), toAt);
  } else {
    for (let i = 0; i < n; i++) to[toAt + i] = from[fromAt + i] as number;
  }
  return toAt + n;
}
