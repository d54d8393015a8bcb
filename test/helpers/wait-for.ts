/**
 * Polls `predicate` until it returns true (or a truthy value, which is returned), or
 * fails after `timeoutMs`. The only way tests wait: never sleep-and-hope. `message` may
 * be a function, so that a failure describes the state at the time of failure.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 5000,
  message: string | (() => string) = "condition",
  intervalMs = 5,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) {
      const what = typeof message === "function" ? message() : message;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await Bun.sleep(intervalMs);
  }
}
