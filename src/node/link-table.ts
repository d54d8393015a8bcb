import type { CloseRequest, Connection } from "../link/connection.ts";
import { sourceGroup } from "../protocol/ip.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { type Admission, type AdmissionVerdict, admit, type LinkEnd } from "./handshake.ts";
import type { Link } from "./link.ts";
import { linkAddress, linkEnd, neighbourInfo } from "./link.ts";
import type { NeighbourInfo } from "./node-events.ts";

/** Inbound handshakes pending, as admission counts them. */
export interface PendingHandshakes {
  readonly total: number;
  /** From the source asked about. */
  readonly fromSource: number;
  /** From the source holding the most. */
  readonly heaviest: number;
  /** That source's oldest pending handshake. */
  readonly oldestOfHeaviest: Link | undefined;
}

/** Every open connection, and the established ones by neighbour: at most one each. */
export class LinkTable {
  /** Every open connection, handshaking or established, oldest first. */
  readonly all = new Set<Link>();
  /** Established links by neighbour node id (hex). */
  private readonly byKey = new Map<string, Link>();

  get size(): number {
    return this.all.size;
  }

  get neighbourCount(): number {
    return this.byKey.size;
  }

  add(link: Link): void {
    this.all.add(link);
  }

  /** Forgets a closed link; its neighbour too, unless another link has taken over. */
  remove(link: Link): void {
    this.all.delete(link);
    if (link.key !== undefined && this.byKey.get(link.key) === link) this.byKey.delete(link.key);
  }

  /** The established link to a neighbour (hex node id). */
  neighbour(key: string): Link | undefined {
    return this.byKey.get(key);
  }

  /** The established link to a neighbour, as the duplicate-link rule sees it. */
  neighbourEnd(key: string): LinkEnd | undefined {
    const link = this.byKey.get(key);
    return link && linkEnd(link);
  }

  /** Handshakes under way (not a duplicate already dropped) from `host`. */
  handshakesFrom(host: string): number {
    let n = 0;
    for (const link of this.all)
      if (link.state === "handshaking" && !link.superseded && linkAddress(link).host === host) n++;
    return n;
  }

  /**
   * Two links to one node: `fresh` (just through its handshake) and the neighbour's
   * current one. Marks the one not kept as superseded; if the fresh one is kept, the
   * neighbour moves to it without a peer-down/peer-up flicker (it keeps its `since`).
   */
  supersede(
    fresh: Link,
    keep: "existing" | "fresh",
  ): { existing: Link; kept: Link; dropped: Link } {
    const existing = this.byKey.get(fresh.key as string) as Link;
    const [kept, dropped] = keep === "fresh" ? [fresh, existing] : [existing, fresh];
    dropped.superseded = true;
    if (kept === fresh) {
      fresh.state = "established";
      fresh.since = existing.since;
      this.setNeighbour(fresh);
      existing.state = "closed";
    }
    return { existing, kept, dropped };
  }

  /** Makes `link` the neighbour's link (a new neighbour, or a duplicate that won). */
  setNeighbour(link: Link): void {
    this.byKey.set(link.key as string, link);
  }

  /** Established links, oldest first. */
  neighbours(): IterableIterator<Link> {
    return this.byKey.values();
  }

  neighbourInfos(): NeighbourInfo[] {
    return [...this.byKey.values()].map(neighbourInfo);
  }

  /**
   * Inbound connections still in their handshake (closing ones no longer count): how
   * many in all, how many from `source` (an address group: `sourceGroup`), and the
   * source holding the most, with its oldest.
   */
  pendingInbound(source: string): PendingHandshakes {
    // Links are kept in the order they came: a source's first is its oldest.
    const bySource = new Map<string, { count: number; oldest: Link }>();
    let total = 0;
    let heaviest: { count: number; oldest: Link } | undefined;
    for (const link of this.all) {
      if (link.state !== "handshaking" || link.conn.direction !== "inbound" || link.conn.closed)
        continue;
      total++;
      let entry = bySource.get(link.source);
      if (entry === undefined) {
        entry = { count: 0, oldest: link };
        bySource.set(link.source, entry);
      }
      entry.count++;
      if (heaviest === undefined || entry.count > heaviest.count) heaviest = entry;
    }
    return {
      total,
      fromSource: bySource.get(source)?.count ?? 0,
      heaviest: heaviest?.count ?? 0,
      oldestOfHeaviest: heaviest?.oldest,
    };
  }

  /**
   * Whether `conn` may be taken ({@link admit} decides from the table's counts), and,
   * when it takes the place of another source's pending handshake, whose.
   */
  admit(
    conn: Pick<Connection, "direction" | "remote">,
    closing: boolean,
    limits: Pick<Admission, "maxPeers" | "maxPendingHandshakes">,
  ): { verdict: AdmissionVerdict; evicted: Link | undefined } {
    const pending = this.pendingInbound(sourceGroup(conn.remote.host));
    const verdict = admit({
      direction: conn.direction,
      closing,
      links: this.all.size,
      pendingInbound: pending.total,
      pendingFromSource: pending.fromSource,
      pendingFromHeaviest: pending.heaviest,
      maxPeers: limits.maxPeers,
      maxPendingHandshakes: limits.maxPendingHandshakes,
    });
    return { verdict, evicted: verdict.action === "evict" ? pending.oldestOfHeaviest : undefined };
  }

  /**
   * Closes every connection (BYE to neighbours, quiet to the rest). Resolves once all
   * have closed, or after `deadlineMs` on `clock`.
   */
  async closeAll(reason: string, clock: Clock, deadlineMs: number): Promise<void> {
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, deadlineMs);
    });
    await Promise.race([this.closeEach(reason), deadline]);
    clock.clearTimeout(timer);
  }

  private closeEach(reason: string): Promise<void> {
    const closed = [...this.all].map(
      (link) =>
        new Promise<void>((resolve) => {
          link.closeWaiters.push(resolve);
          const established = link.state === "established";
          const request = established
            ? { kind: "bye", reason }
            : { kind: "quiet", reason: "shutting down" };
          link.conn.close(request as CloseRequest);
        }),
    );
    return Promise.all(closed).then(() => {});
  }

  /** Bytes queued towards all of them, summed. */
  pendingBytes(): number {
    let n = 0;
    for (const link of this.all) n += link.conn.pendingBytes;
    return n;
  }
}
