import type { ConsolaInstance } from "consola";
import type { History } from "../history/history.ts";
import type { HistoryStore } from "../history/store.ts";
import type { Clock } from "../node/clock.ts";
import { Delivery, type FloodDelivery } from "../node/delivery.ts";
import { Emitter } from "../node/emitter.ts";
import { DEFAULT_FLOOD_LIMITS, OriginLimiter, TokenBucket } from "../node/flood-limits.ts";
import type { PeerNode } from "../node/peer-node.ts";
import { FloodKind, NODE_ID_BYTES } from "../protocol/constants.ts";
import { DIRECT_TAG_BYTES, DirectType, directTag } from "../protocol/direct.ts";
import {
  FLOOD_PAYLOAD_OFFSET,
  floodBodyAt,
  floodId,
  floodKind,
  floodOrigin,
  floodSentAt,
} from "../protocol/flood.ts";
import { hex, latin1 } from "../protocol/hex.ts";
import { textProblem } from "../protocol/text.ts";
import type { Identity } from "../secure/identity.ts";
import { oneTimeOrigin, openDirect, sealDirect } from "./seal.ts";

/** Direct messages remembered as answered (a receipt sent) or acknowledged, at most. */
const MAX_REMEMBERED_IDS = 10_000;

/** A direct message, to us or from us. */
export interface DirectMessage {
  /** Hex of the FLOOD id that carried it. */
  readonly id: string;
  /** Hex node id of the author. */
  readonly from: string;
  /** Hex node id of the recipient. */
  readonly to: string;
  /** The author's nick, as the author wrote it inside the seal. */
  readonly nick: string;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  /** True for the messages this node wrote. */
  readonly own: boolean;
  /** Arrived by sync, after the fact (the recipient was away when it was sent). */
  readonly late: boolean;
}

/** The recipient's word that a direct message of ours arrived. */
export interface DirectReceipt {
  /** Hex id of our message. */
  readonly of: string;
  /** Hex node id of the recipient, who signed the receipt. */
  readonly by: string;
  /** The recipient's nick, from inside the receipt. */
  readonly nick: string;
  readonly receivedAt: number;
}

/** Events of {@link DirectMessages}. */
export interface DirectEvents {
  /** A direct message to us, opened (or one we sent). */
  direct: DirectMessage;
  /** A receipt for one of ours. */
  receipt: DirectReceipt;
  /** A DIRECT sealed to us that did not open or verify: never shown. */
  refused: { readonly id: string; readonly reason: string };
}

/** What {@link DirectMessages.send} did. */
export type DirectSendOutcome =
  | { readonly status: "sent"; readonly message: DirectMessage; readonly neighbours: number }
  | { readonly status: "invalid"; readonly reason: string }
  | { readonly status: "throttled"; readonly retryInMs: number };

/**
 * Direct messages (docs/PROTOCOL.md §6a), above the node and the history: seals what we
 * write to one recipient and floods it like any message (every peer relays and stores
 * it; only the recipient can open it), opens what arrives sealed to us, live or late,
 * answers each with a sealed receipt, and reports the receipts for ours.
 */
export class DirectMessages {
  readonly events: Emitter<DirectEvents>;
  private readonly tag: Uint8Array;
  private readonly tagKey: string;
  /** Authors held to the per-author rate, once their messages are opened. */
  private readonly authors = new OriginLimiter(DEFAULT_FLOOD_LIMITS);
  /** Our own sends, at the rate relays allow one recipient. */
  private readonly outgoing: TokenBucket;
  /** Ids of messages to us already answered, and of ours already acknowledged. */
  private readonly answered = new Set<string>();
  private readonly acknowledged = new Set<string>();

  constructor(
    private readonly node: PeerNode,
    private readonly identity: Identity,
    private readonly history: History,
    private readonly store: HistoryStore,
    private readonly clock: Clock,
    private readonly log: ConsolaInstance,
  ) {
    this.events = new Emitter((error) => log.error("direct message listener failed:", error));
    this.tag = directTag(identity.publicKey);
    this.tagKey = latin1(this.tag, 0, DIRECT_TAG_BYTES);
    const limits = DEFAULT_FLOOD_LIMITS;
    this.outgoing = new TokenBucket(limits.perOriginPerSecond, limits.perOriginBurst, clock.now());
    node.events.on("flood", (f) => this.onDirect(f, false));
    history.events.on("late", (m) => {
      if (m instanceof Delivery) this.onDirect(m, true);
    });
  }

  /** Seals `text` to the node id `to` and floods it; kept in our history like any message. */
  send(to: Uint8Array, text: string): DirectSendOutcome {
    const problem = textProblem(text);
    if (problem !== undefined) return { status: "invalid", reason: problem };
    if (to.length !== NODE_ID_BYTES) return { status: "invalid", reason: "not a node id" };
    if (hex(to) === this.node.nodeIdHex)
      return { status: "invalid", reason: "that is you: a direct message goes to someone else" };
    const now = this.clock.now();
    if (!this.outgoing.take(now))
      return { status: "throttled", retryInMs: this.outgoing.waitMs(now) };
    const sealed = sealText(this.identity, this.node.nick, to, text, now);
    if (sealed === undefined)
      return { status: "invalid", reason: "that node id has no key to seal to" };
    const neighbours = this.publish(sealed.frame, now);
    this.events.emit("direct", sealed.message);
    return { status: "sent", message: sealed.message, neighbours };
  }

  /** Floods one DIRECT frame of ours and keeps it; how many neighbours took it. */
  private publish(frame: Uint8Array, now: number): number {
    const neighbours = this.node.publish(frame);
    this.history.keep(new Delivery(frame, FLOOD_PAYLOAD_OFFSET, frame.length, now, 0));
    return neighbours;
  }

  /** A DIRECT that arrived (live, or late by sync): opened if it is sealed to us. */
  private onDirect(f: FloodDelivery, late: boolean): void {
    if (!(f instanceof Delivery) || f.kind !== FloodKind.Direct) return;
    const payload = f.payload;
    const body = payload.subarray(floodBodyAt(0));
    if (latin1(body, 0, DIRECT_TAG_BYTES) !== this.tagKey) return;
    const id = floodId(payload, 0);
    const sentAt = floodSentAt(payload, 0);
    const outcome = openDirect(this.identity, this.tag, id, sentAt, body);
    if (outcome.status === "not-for-us") return;
    if (outcome.status === "refused") {
      this.log.warn(`a direct message sealed to us was refused: ${outcome.reason}`);
      this.events.emit("refused", { id: hex(id), reason: outcome.reason });
      return;
    }
    const { inner } = outcome;
    const now = this.clock.now();
    if (!this.authors.allow(latin1(inner.author, 0, NODE_ID_BYTES), now)) return;
    if (inner.content.type === DirectType.Receipt) {
      this.onReceipt(inner.author, inner.nick, inner.content.of, now);
      return;
    }
    this.events.emit("direct", {
      id: hex(id),
      from: hex(inner.author),
      to: this.node.nodeIdHex,
      nick: inner.nick,
      text: inner.content.text,
      sentAt,
      receivedAt: f.receivedAt,
      own: false,
      late,
    });
    // The author learns it arrived: once per message, by a receipt that waits in the
    // network like any message if the author is away now.
    if (!remember(this.answered, hex(id))) return;
    const content = { type: DirectType.Receipt, of: id.slice() } as const;
    const receipt = sealDirect(
      { author: this.identity, nick: this.node.nick, to: inner.author, content },
      now,
    );
    if (receipt !== undefined) this.publish(receipt.frame, now);
  }

  /**
   * A receipt, signed by `by`: reported if it names a DIRECT of ours (its envelope is
   * signed by the one-time origin only we can derive for its id) sealed to `by`.
   */
  private onReceipt(by: Uint8Array, nick: string, of: Uint8Array, now: number): void {
    const [held] = this.store.get([latin1(of, 0, of.length)]);
    if (held === undefined || floodKind(held.payload, 0) !== FloodKind.Direct) return;
    const origin = oneTimeOrigin(this.identity, of).publicKey;
    if (hex(floodOrigin(held.payload, 0)) !== hex(origin)) return;
    const byTag = latin1(directTag(by), 0, DIRECT_TAG_BYTES);
    if (latin1(held.payload, floodBodyAt(0), DIRECT_TAG_BYTES) !== byTag) return;
    if (!remember(this.acknowledged, hex(of))) return;
    this.events.emit("receipt", { of: hex(of), by: hex(by), nick, receivedAt: now });
  }
}

/**
 * Seals `text` from `author` (writing as `nick`) to the node id `to`, at `now`: the
 * frame to flood and the message as its author sees it. Undefined if `to` has no key.
 */
export function sealText(
  author: Identity,
  nick: string,
  to: Uint8Array,
  text: string,
  now: number,
): { readonly frame: Uint8Array; readonly message: DirectMessage } | undefined {
  const sealed = sealDirect({ author, nick, to, content: { type: DirectType.Text, text } }, now);
  if (sealed === undefined) return undefined;
  const message: DirectMessage = {
    id: hex(sealed.id),
    from: hex(author.publicKey),
    to: hex(to),
    nick,
    text,
    sentAt: now,
    receivedAt: now,
    own: true,
    late: false,
  };
  return { frame: sealed.frame, message };
}

/** Adds `id` to a bounded set; false if it was there already. */
function remember(set: Set<string>, id: string): boolean {
  if (set.has(id)) return false;
  if (set.size >= MAX_REMEMBERED_IDS) {
    const oldest = set.values().next().value;
    if (oldest !== undefined) set.delete(oldest);
  }
  set.add(id);
  return true;
}
