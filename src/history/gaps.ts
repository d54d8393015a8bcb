/** How long sync gets to fill a gap before it is reported. */
export const GAP_GRACE_MS = 60_000;

/** Missing messages tracked at once; past it, the largest gaps are reported at once. */
export const MAX_TRACKED_MISSING = 10_000;

/** Messages of one origin that could not be recovered. */
export interface Gap {
  readonly origin: string;
  readonly count: number;
}

interface Missing {
  /** seq → when it went missing. */
  readonly seqs: Map<number, number>;
}

/**
 * Gaps in what each origin wrote (docs/PROTOCOL.md §5c). An origin numbers the messages
 * kept in history 1, 2, 3…; a message with seq `s` when the last held is below `s − 1`
 * shows messages this peer never got. Sync usually brings them within seconds; those
 * still missing after {@link GAP_GRACE_MS} are reported once, then forgotten. Nothing
 * before an origin's first message seen counts (we joined, or it expired, since).
 */
export class GapTracker {
  /** Highest seq seen per origin (hex). */
  private readonly highest = new Map<string, number>();
  private readonly missing = new Map<string, Missing>();
  private tracked = 0;

  constructor(private readonly graceMs = GAP_GRACE_MS) {}

  /** What the store already holds: `origin` has written up to `seq`. */
  seed(origin: string, seq: number): void {
    if (seq > (this.highest.get(origin) ?? 0)) this.highest.set(origin, seq);
  }

  /** A message kept in history arrived (live, late or own). */
  saw(origin: string, seq: number, now: number): void {
    const missing = this.missing.get(origin);
    if (missing?.seqs.delete(seq)) {
      this.tracked--;
      if (missing.seqs.size === 0) this.missing.delete(origin);
    }
    const highest = this.highest.get(origin);
    if (highest === undefined || seq <= highest) {
      if (highest === undefined) this.highest.set(origin, seq);
      return;
    }
    this.highest.set(origin, seq);
    const from = highest + 1;
    if (seq - from <= 0) return;
    let entry = this.missing.get(origin);
    if (!entry) {
      entry = { seqs: new Map() };
      this.missing.set(origin, entry);
    }
    // A hostile origin may jump its seq by billions: track at most what fits, and let
    // the rest be reported as it is, once the grace has passed.
    const room = Math.max(0, MAX_TRACKED_MISSING - this.tracked);
    for (let s = from; s < seq && s - from < room; s++) entry.seqs.set(s, now);
    this.tracked += Math.min(seq - from, room);
    if (entry.seqs.size === 0) this.missing.delete(origin);
  }

  /** Gaps whose grace has passed at `now`, grouped by origin; reported once. */
  due(now: number): Gap[] {
    const gaps: Gap[] = [];
    for (const [origin, entry] of this.missing) {
      let count = 0;
      for (const [seq, since] of entry.seqs) {
        if (now - since < this.graceMs) continue;
        entry.seqs.delete(seq);
        count++;
      }
      this.tracked -= count;
      if (count > 0) gaps.push({ origin, count });
      if (entry.seqs.size === 0) this.missing.delete(origin);
    }
    return gaps;
  }

  /** Messages missing now, all origins together. */
  get missingCount(): number {
    return this.tracked;
  }
}
