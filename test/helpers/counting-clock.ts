import { type Clock, systemClock, type TimerHandle } from "../../src/node/clock.ts";

/** The real clock, counting timers still pending: a leaked timer shows up as a non-zero count. */
export class CountingClock implements Clock {
  private readonly live = new Set<TimerHandle>();

  get pending(): number {
    return this.live.size;
  }

  now(): number {
    return systemClock.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle: TimerHandle = systemClock.setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, ms);
    this.live.add(handle);
    return handle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.live.delete(handle);
    systemClock.clearTimeout(handle);
  }
}
