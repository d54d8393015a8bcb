import { ConfigError } from "../errors.ts";
import { encodeUtf8 } from "../protocol/byte-writer.ts";
import { MAX_TEXT_BYTES } from "../protocol/constants.ts";
import { nickProblem, textProblem } from "../protocol/text.ts";
import { type FloodLimits, TokenBucket } from "./flood-limits.ts";
import type { Relay } from "./relay.ts";

/** Scratch for encoding outgoing texts: 4,096 UTF-16 units encode to at most 12,288 bytes. */
const textScratch = new Uint8Array(MAX_TEXT_BYTES * 3);
const textEncoder = new TextEncoder();

/** What {@link Outbox.chat} made of a text: a signed frame to flood, or why not. */
export type ChatDraft =
  | { readonly status: "frame"; readonly frame: Uint8Array }
  | { readonly status: "invalid"; readonly reason: string }
  /** Faster than the per-author limit every neighbour holds us to: try in `retryInMs`. */
  | { readonly status: "throttled"; readonly retryInMs: number };

/**
 * Our own messages (a nick that breaks the limits throws {@link ConfigError} `BAD_NICK`): the nick they carry, the checks a receiver will apply, and the
 * per-author rate every neighbour holds us to (sent faster, they would be dropped).
 */
export class Outbox {
  private currentNick: string;
  private nickBytes: Uint8Array;
  private readonly bucket: TokenBucket;

  constructor(
    private readonly relay: Relay,
    limits: FloodLimits,
    nick: string,
    now: number,
  ) {
    const problem = nickProblem(nick);
    if (problem) throw new ConfigError("BAD_NICK", problem);
    this.currentNick = nick;
    this.nickBytes = encodeUtf8(nick);
    this.bucket = new TokenBucket(limits.perOriginPerSecond, limits.perOriginBurst, now);
  }

  get nick(): string {
    return this.currentNick;
  }

  /** Changes the nick used from now on; returns why not, if it breaks the limits. */
  setNick(nick: string): string | undefined {
    const problem = nickProblem(nick);
    if (problem) return problem;
    this.currentNick = nick;
    this.nickBytes = encodeUtf8(nick);
    return undefined;
  }

  /** A CHAT frame of `text`, signed, if the text is valid and the rate allows it now. */
  chat(text: string, now: number): ChatDraft {
    // Encoded once, into scratch; checked as bytes by the same rules a receiver applies.
    if (text.length > MAX_TEXT_BYTES)
      return { status: "invalid", reason: `text is more than ${MAX_TEXT_BYTES} bytes` };
    const textBytes = textEncoder.encodeInto(text, textScratch).written;
    const problem = textProblem(text, textBytes);
    if (problem) return { status: "invalid", reason: problem };
    if (!this.bucket.take(now)) return { status: "throttled", retryInMs: this.bucket.waitMs(now) };
    return {
      status: "frame",
      frame: this.relay.originateChat(this.nickBytes, textScratch, textBytes, now),
    };
  }

  /** Milliseconds until {@link chat} may send again (0 = now): for paced input. */
  waitMs(now: number): number {
    return this.bucket.waitMs(now);
  }
}
