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

/** The real clock. Timers are unref'd: a pending retry never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
