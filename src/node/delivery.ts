import { decodeUtf8 } from "../protocol/byte-reader.ts";
import { chatNickRange, chatTextRange } from "../protocol/chat.ts";
import { FloodKind, NODE_ID_BYTES } from "../protocol/constants.ts";
import {
  floodBodyAt,
  floodId,
  floodKind,
  floodOrigin,
  floodSentAt,
  floodSeq,
} from "../protocol/flood.ts";
import { hex } from "../protocol/hex.ts";
import type { Presence } from "../protocol/presence.ts";

/** A chat message, delivered once per node. */
export interface ChatMessage {
  /** Hex of the 16-byte message id. */
  readonly id: string;
  /** Hex node id of the author. */
  readonly origin: string;
  readonly seq: number;
  readonly nick: string;
  readonly text: string;
  /** Author's clock at sending (unix ms). */
  readonly sentAt: number;
  /** Our clock at delivery (unix ms). */
  readonly receivedAt: number;
  /** Links crossed to reach us: 1 from a neighbour, 0 for our own messages. */
  readonly hops: number;
  /** True for messages this node sent. */
  readonly own: boolean;
  /** Arrived by sync, after the fact, rather than live (docs/PROTOCOL.md §5c). */
  readonly late?: boolean;
}

/** Any FLOOD from another node, once the relay accepted it (chat, presence, unknown kinds). */
export interface FloodDelivery {
  readonly kind: number;
  /** Hex node id of the author. */
  readonly origin: string;
  /** Links crossed to reach us (1 from a neighbour). */
  readonly hops: number;
  /** The author's nick, for kinds that carry one; "" otherwise. */
  readonly nick: string;
  readonly presence: Presence | undefined;
  /** Our clock at delivery (unix ms). */
  readonly receivedAt: number;
  /** The raw body. */
  readonly body: Uint8Array;
}

/** One-entry memo of origin → hex: consecutive messages mostly come from one author. */
const lastOrigin = new Uint8Array(NODE_ID_BYTES);
let lastOriginHex = "";

/**
 * A delivered FLOOD, read straight from its (already validated) bytes. Only what is
 * asked for is decoded: a relay that passes a message on, or a benchmark that counts
 * it, never pays for hex ids or strings, while the terminal reads `nick` and `text` as
 * usual. The bytes are those received; they are not copied.
 */
export class Delivery implements ChatMessage, FloodDelivery {
  private cachedId: string | undefined;
  private cachedNick: string | undefined;
  private cachedText: string | undefined;

  /**
   * @param bytes holds the FLOOD payload (id to end of body) at `[base, end)`
   * @param hops links crossed to reach us: 0 for a message this node originated
   */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly base: number,
    private readonly end: number,
    readonly receivedAt: number,
    readonly hops: number,
    readonly presence: Presence | undefined = undefined,
    readonly late = false,
  ) {}

  /** The FLOOD payload (id to end of body), a view of the bytes received. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.base, this.end);
  }

  /** True for a message this node originated. */
  get own(): boolean {
    return this.hops === 0;
  }

  get kind(): number {
    return floodKind(this.bytes, this.base);
  }

  get id(): string {
    this.cachedId ??= hex(floodId(this.bytes, this.base));
    return this.cachedId;
  }

  get origin(): string {
    const origin = floodOrigin(this.bytes, this.base);
    let same = lastOriginHex !== "";
    for (let i = 0; same && i < NODE_ID_BYTES; i++) same = origin[i] === lastOrigin[i];
    if (!same) {
      lastOrigin.set(origin);
      lastOriginHex = hex(lastOrigin);
    }
    return lastOriginHex;
  }

  get seq(): number {
    return floodSeq(this.bytes, this.base);
  }

  get sentAt(): number {
    return floodSentAt(this.bytes, this.base);
  }

  get body(): Uint8Array {
    return this.bytes.subarray(floodBodyAt(this.base), this.end);
  }

  get nick(): string {
    if (this.cachedNick === undefined) {
      if (this.kind === FloodKind.Chat) {
        const [start, end] = chatNickRange(this.bytes, floodBodyAt(this.base));
        this.cachedNick = decodeUtf8(this.bytes.subarray(start, end), "nick");
      } else {
        this.cachedNick = this.presence && "nick" in this.presence ? this.presence.nick : "";
      }
    }
    return this.cachedNick;
  }

  /** The chat text ("" for other kinds). */
  get text(): string {
    if (this.cachedText === undefined) {
      if (this.kind !== FloodKind.Chat) return "";
      const [start, end] = chatTextRange(this.bytes, floodBodyAt(this.base));
      this.cachedText = decodeUtf8(this.bytes.subarray(start, end), "text");
    }
    return this.cachedText;
  }

  /** A plain object of the chat fields (for logs, tests and JSON). */
  toJSON(): ChatMessage {
    const { id, origin, seq, nick, text, sentAt, receivedAt, hops, own, late } = this;
    return { id, origin, seq, nick, text, sentAt, receivedAt, hops, own, late };
  }
}
