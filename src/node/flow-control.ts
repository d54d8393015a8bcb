/**
 * A congested link whose queue has not moved for this long is stuck, not slow: it stops
 * holding the other links back, and its queue is left to grow to the cap, where it is
 * dropped as a slow consumer (or to go silent, where liveness drops it).
 */
export const STALL_MS = 1000;

/** One link's flow-control state. */
export interface FlowState {
  /** Its queue passed the congestion mark and has not drained yet. */
  congested: boolean;
  /** The kernel's progress on its queue (bytes taken), and when it last moved. */
  progressBytes: number;
  progressAt: number;
  /** We stopped reading from it because another link is congested. */
  paused: boolean;
}

/** What flow control sees of a link. */
export interface FlowLink {
  readonly flow: FlowState;
}

/** Start or stop reading from a link. */
export interface ReadingChange<L> {
  readonly link: L;
  readonly pause: boolean;
}

/** A new link's state. */
export function newFlow(now: number): FlowState {
  return { congested: false, progressBytes: 0, progressAt: now, paused: false };
}

/**
 * Flow control, free of sockets (docs/PROTOCOL.md §7). While a link is congested but
 * moving (a slower reader), the node reads only from that link, never sent its own data
 * back, so the slowdown travels back to whoever is sending, through TCP, instead of
 * piling up here: a chain at full speed loses nothing. A congested link that stops
 * moving for {@link STALL_MS} (a stuck reader) no longer holds the others back; its
 * queue grows to the cap and it is dropped as a slow consumer. Nothing is dropped for
 * merely being held back, so the backpressure one stuck reader causes never cascades
 * into drops upstream.
 *
 * Every method returns the reading changes for the node to make, and records them as
 * made.
 */
export class FlowControl<L extends FlowLink> {
  /** Links whose queue is congested and moving: the others wait for them. */
  private readonly holding = new Set<L>();

  /** Links holding the others back now. */
  get holdingCount(): number {
    return this.holding.size;
  }

  /** `link`'s queue passed the congestion mark (`bytesSent`: the kernel's progress so far). */
  congested(link: L, bytesSent: number, now: number, all: Iterable<L>): ReadingChange<L>[] {
    if (link.flow.congested) return [];
    link.flow.congested = true;
    link.flow.progressBytes = bytesSent;
    link.flow.progressAt = now;
    this.holding.add(link);
    return this.reading(all);
  }

  /** `link`'s queue drained below the clear mark, or the link is gone. */
  cleared(link: L, all: Iterable<L>): ReadingChange<L>[] {
    link.flow.congested = false;
    return this.holding.delete(link) ? this.reading(all) : [];
  }

  /** A new link: it waits like the others if some link holds them back. */
  added(all: Iterable<L>): ReadingChange<L>[] {
    return this.holding.size > 0 ? this.reading(all) : [];
  }

  /**
   * The heartbeat: a congested link whose queue moved ({@link sentOf} changed) in the last
   * {@link STALL_MS} holds the others back; one that did not, no longer does.
   */
  tick(all: Iterable<L>, sentOf: (link: L) => number, now: number): ReadingChange<L>[] {
    let changed = false;
    for (const link of all) {
      const flow = link.flow;
      if (!flow.congested) continue;
      const sent = sentOf(link);
      if (sent !== flow.progressBytes) {
        flow.progressBytes = sent;
        flow.progressAt = now;
      }
      const moving = now - flow.progressAt < STALL_MS;
      if (moving === this.holding.has(link)) continue;
      if (moving) this.holding.add(link);
      else this.holding.delete(link);
      changed = true;
    }
    return changed ? this.reading(all) : [];
  }

  /** Every link reads unless some other link holds it back. */
  private reading(all: Iterable<L>): ReadingChange<L>[] {
    const changes: ReadingChange<L>[] = [];
    for (const link of all) {
      const pause = this.holding.size > (this.holding.has(link) ? 1 : 0);
      if (pause === link.flow.paused) continue;
      link.flow.paused = pause;
      changes.push({ link, pause });
    }
    return changes;
  }
}
