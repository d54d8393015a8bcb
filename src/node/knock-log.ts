/** A connection from one address that fails its handshake gets a log line at most this often. */
export const KNOCK_LOG_INTERVAL_MS = 10 * 60_000;

/** Addresses {@link KnockLog} remembers at most; past it the oldest is forgotten. */
export const KNOCK_LOG_MAX_HOSTS = 1024;

/**
 * Which connections that closed before their handshake are worth a line in the log: the
 * first from each address (IP) in {@link KNOCK_LOG_INTERVAL_MS}; the others are for the
 * verbose log. A peer of another room retrying its pin every 30 s, or a scanner, then
 * costs a line every ten minutes, not one per attempt. Bounded by age and by count.
 */
export class KnockLog {
  /** Address → when its last line was logged; insertion order is time order. */
  private readonly logged = new Map<string, number>();

  constructor(
    readonly intervalMs = KNOCK_LOG_INTERVAL_MS,
    readonly maxHosts = KNOCK_LOG_MAX_HOSTS,
  ) {}

  /**
   * The level to log a closed connection's line at: a stranger that keeps failing the
   * handshake (another room's pin, a scanner) gets one `info` line per address a while,
   * the rest go to the verbose log. `stranger`: inbound, and never said HELLO.
   */
  level<L extends string>(level: L, stranger: boolean, host: string, now: number): L | "debug" {
    return stranger && level === "info" && !this.first(host, now) ? "debug" : level;
  }

  /** True if a knock from `host` at `now` gets its line (and is remembered as having had it). */
  first(host: string, now: number): boolean {
    for (const [known, at] of this.logged) {
      if (now - at < this.intervalMs) break;
      this.logged.delete(known);
    }
    if (this.logged.has(host)) return false;
    this.logged.set(host, now);
    if (this.logged.size > this.maxHosts) {
      this.logged.delete(this.logged.keys().next().value as string);
    }
    return true;
  }
}
