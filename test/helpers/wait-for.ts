/**
 * Polls `predicate` until it returns true (or a truthy value, which is returned), or
 * fails after `timeoutMs` with `message`. The only way tests wait: never sleep-and-hope.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 5000,
  message = "condition",
  intervalMs = 5,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await Bun.sleep(intervalMs);
  }
}
