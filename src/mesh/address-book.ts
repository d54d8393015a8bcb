import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { backoffMs, jitter } from "./backoff.ts";

/** How many addresses the book keeps at most. */
export const ADDRESS_BOOK_MAX_ENTRIES = 1000;

/**
 * When a neighbour advertises an address we had backed off, it is evidence the
 * address works again (the neighbour is linked to it now): retry within this long.
 */
export const GOSSIP_RETRY_MS = 1000;

/** One dialable address. */
export interface BookEntry {
  /** `host:port`, the entry's identity. */
  readonly key: string;
  readonly endpoint: Endpoint;
  /** Hex node id last seen at this address, if known. */
  nodeId: string | undefined;
  /** Consecutive failed dials; drives the back-off. */
  failures: number;
  /** Clock time before which the address is not dialled. */
  retryAt: number;
  /** Clock time the address was last advertised or linked. */
  seenAt: number;
  /** The address turned out to be this very node. */
  self: boolean;
}

/**
 * Addresses this node has learned (from PEERS frames and its own links), each with a
 * failure count and a back-off (1 s doubling to 30 s, jittered). Bounded: when full, a
 * new address replaces the one with the most failures (oldest first among equals).
 */
export class AddressBook {
  private readonly entries = new Map<string, BookEntry>();

  constructor(
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
    readonly maxEntries = ADDRESS_BOOK_MAX_ENTRIES,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(endpoint: Endpoint): BookEntry | undefined {
    return this.entries.get(formatEndpoint(endpoint));
  }

  /**
   * Adds or refreshes an address. `advertised`: a neighbour just vouched for it, so a
   * backed-off address becomes eligible again soon.
   */
  learn(endpoint: Endpoint, nodeId: string | undefined, advertised: boolean): BookEntry {
    const key = formatEndpoint(endpoint);
    const now = this.now();
    const known = this.entries.get(key);
    if (known) {
      known.seenAt = now;
      if (nodeId !== undefined && nodeId !== known.nodeId) {
        // Another node now lives here (a restart): its history is not this node's.
        known.nodeId = nodeId;
        known.failures = 0;
        known.retryAt = now;
        known.self = false;
      } else if (advertised) {
        known.retryAt = Math.min(known.retryAt, now + GOSSIP_RETRY_MS);
      }
      return known;
    }
    if (this.entries.size >= this.maxEntries) this.evictOne();
    const entry: BookEntry = {
      key,
      endpoint,
      nodeId,
      failures: 0,
      retryAt: now,
      seenAt: now,
      self: false,
    };
    this.entries.set(key, entry);
    return entry;
  }

  /** A dial succeeded: forget past failures. */
  succeeded(entry: BookEntry, nodeId: string): void {
    entry.nodeId = nodeId;
    entry.failures = 0;
    entry.retryAt = this.now();
    entry.seenAt = this.now();
  }

  /** A dial failed, or a link was lost: back off. Returns the delay before the next try. */
  failed(entry: BookEntry): number {
    const delay = jitter(backoffMs(entry.failures), this.random);
    entry.failures++;
    entry.retryAt = this.now() + delay;
    return delay;
  }

  /** The address is our own: never dial it again. */
  markSelf(entry: BookEntry): void {
    entry.self = true;
  }

  /** Addresses that may be dialled now and pass `eligible`, in random order. */
  candidates(eligible: (entry: BookEntry) => boolean): BookEntry[] {
    const now = this.now();
    const out: BookEntry[] = [];
    for (const entry of this.entries.values()) {
      if (!entry.self && entry.retryAt <= now && eligible(entry)) out.push(entry);
    }
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j] as BookEntry, out[i] as BookEntry];
    }
    return out;
  }

  /** Every entry (for tests and diagnostics). */
  all(): BookEntry[] {
    return [...this.entries.values()];
  }

  private evictOne(): void {
    let worst: BookEntry | undefined;
    for (const entry of this.entries.values()) {
      if (
        !worst ||
        entry.self ||
        entry.failures > worst.failures ||
        (entry.failures === worst.failures && entry.seenAt < worst.seenAt)
      ) {
        worst = entry;
        if (entry.self) break;
      }
    }
    if (worst) this.entries.delete(worst.key);
  }
}
