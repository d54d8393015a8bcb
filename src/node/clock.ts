/**
 * Time as the node sees it. Injected so that the seen-cache, handshake deadlines and
 * back-off can be driven by tests without sleeping.
 */
export interface Clock {
  /** Milliseconds since the unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** An opaque timer handle. */
export type TimerHandle = { readonly __timer: unique symbol } | number | object;

let turnTime: number | undefined;
const endTurn = () => {
  turnTime = undefined;
};

/**
 * The real clock. `now()` is read once per turn of the event loop and reused until the
 * turn ends: every frame of one incoming chunk did arrive at the same moment, and the
 * relay, reading the time for each message, should not pay for a system call each time.
 * Timers are unref'd: a pending retry never keeps the process alive.
 */
export const systemClock: Clock = {
  now() {
    if (turnTime === undefined) {
      turnTime = Date.now();
      queueMicrotask(endTurn);
    }
    return turnTime;
  },
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
