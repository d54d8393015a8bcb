import { ProtocolError } from "../errors.ts";
import { type Chat, decodeChatBody, encodeChatBody } from "../protocol/chat.ts";
import { FloodKind, MAX_HOPS, MESSAGE_ID_BYTES } from "../protocol/constants.ts";
import { decodeFlood, encodeFlood, encodeFloodForward, type Flood } from "../protocol/flood.ts";
import { decodePresenceBody, isPresenceKind, type Presence } from "../protocol/presence.ts";
import { messageKey, type SeenCache } from "./seen-cache.ts";

/** What happened to one received FLOOD. */
export type RelayOutcome =
  /** Already delivered once (it came round a cycle or by a second path): dropped. */
  | { readonly status: "duplicate"; readonly flood: Flood }
  /** Broke the protocol: not delivered, not relayed, not remembered (so an honest copy still passes). */
  | { readonly status: "invalid"; readonly error: ProtocolError }
  /** New: deliver it, and send `forward` (if set) to every neighbour but the sender. */
  | {
      readonly status: "accepted";
      readonly flood: Flood;
      /** The decoded body for kinds this node understands; unknown kinds are relayed unread. */
      readonly chat: Chat | undefined;
      readonly presence: Presence | undefined;
      /** The frame to relay (hops + 1), or undefined when the hop limit is reached. */
      readonly forward: Uint8Array | undefined;
    };

/** A message this node originated, ready to send to every neighbour. */
export interface Originated {
  readonly flood: Flood;
  readonly frame: Uint8Array;
}

/** Counters, for /stats, benchmarks and tests. */
export interface RelayStats {
  originated: number;
  accepted: number;
  duplicates: number;
  invalid: number;
  /** Accepted but not forwarded because hops + 1 reached {@link MAX_HOPS}. */
  hopLimited: number;
}

/**
 * The flood relay's decisions, free of sockets: which messages are new, which are
 * duplicates, what to forward. The node does the sending.
 *
 * Receiving: an id already seen is dropped. Otherwise the body is validated for the
 * kinds we know, the id is remembered, the message is delivered, and unless
 * `hops + 1 >= MAX_HOPS` it is forwarded with `hops + 1`. In any topology, cycles
 * included, every node therefore delivers a message once and sends it over each of
 * its links at most once.
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

  constructor(
    private readonly nodeId: Uint8Array,
    private readonly seen: SeenCache,
    private readonly now: () => number,
    private readonly randomId: () => Uint8Array = defaultRandomId,
  ) {}

  /** Creates a CHAT message from this node and marks it seen. */
  originateChat(chat: Chat): Originated {
    return this.originate(FloodKind.Chat, encodeChatBody(chat));
  }

  /** Creates a message of any kind from this node and marks it seen. */
  originate(kind: number, body: Uint8Array): Originated {
    const flood: Flood = {
      id: this.randomId(),
      origin: this.nodeId,
      seq: ++this.seq,
      sentAt: this.now(),
      hops: 0,
      kind,
      body,
    };
    this.seen.add(messageKey(flood.id));
    this.stats.originated++;
    return { flood, frame: encodeFlood(flood) };
  }

  /** Decides what to do with a FLOOD payload received from a neighbour. */
  receive(payload: Uint8Array): RelayOutcome {
    let flood: Flood;
    let chat: Chat | undefined;
    let presence: Presence | undefined;
    try {
      flood = decodeFlood(payload);
    } catch (error) {
      return this.invalid(error);
    }
    const key = messageKey(flood.id);
    if (this.seen.has(key)) {
      this.stats.duplicates++;
      return { status: "duplicate", flood };
    }
    try {
      if (flood.kind === FloodKind.Chat) chat = decodeChatBody(flood.body);
      else if (isPresenceKind(flood.kind)) presence = decodePresenceBody(flood.kind, flood.body);
    } catch (error) {
      return this.invalid(error);
    }
    this.seen.add(key);
    this.stats.accepted++;
    const hops = flood.hops + 1;
    if (hops >= MAX_HOPS) {
      this.stats.hopLimited++;
      return { status: "accepted", flood, chat, presence, forward: undefined };
    }
    return {
      status: "accepted",
      flood,
      chat,
      presence,
      forward: encodeFloodForward(payload, hops),
    };
  }

  private invalid(error: unknown): RelayOutcome {
    this.stats.invalid++;
    if (error instanceof ProtocolError) return { status: "invalid", error };
    throw error;
  }
}

function defaultRandomId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(MESSAGE_ID_BYTES));
}
