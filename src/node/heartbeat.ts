import type { Clock, TimerHandle } from "./clock.ts";

/**
 * A repeating timer on an injected clock: the node's one tick for liveness and flow
 * control (Bun's socket timeout is not reset by incoming data, so it cannot serve).
 * `start` always cancels the previous timer first, so two can never run at once.
 */
export class Heartbeat {
  private timer: TimerHandle | undefined;
  private active = false;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly tick: () => void,
  ) {}

  start(): void {
    this.stop();
    this.active = true;
    this.schedule();
  }

  stop(): void {
    this.active = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.active;
  }

  private schedule(): void {
    const timer = this.clock.setTimeout(() => {
      if (this.timer !== timer) return; // cancelled after it fired
      this.timer = undefined;
      this.tick();
      // The tick may have stopped it (the node closing), or restarted it: then the
      // timer `start` armed is the only one.
      if (this.active && this.timer === undefined) this.schedule();
    }, this.intervalMs);
    this.timer = timer;
  }
}
