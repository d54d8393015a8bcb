/** Cap on bytes queued for one connection; past it the remote is a slow consumer. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Room kept below {@link MAX_PENDING_BYTES} for the final frame (ERROR or BYE) that
 * `end()` queues, so that even a closing connection never holds more than the cap.
 */
export const FINAL_FRAME_RESERVE_BYTES = 1024;

/** How long `end()` waits for pending bytes to drain before closing regardless. */
export const CLOSE_FLUSH_TIMEOUT_MS = 1000;

/** How long a dial may take before it is abandoned. */
export const DIAL_TIMEOUT_MS = 10_000;

/**
 * Flow control: a connection with more than this queued is congested. The node stops
 * reading from its other links until it drains, so that the slowdown travels back to
 * whoever is sending instead of piling up here.
 */
export const CONGESTED_ABOVE_BYTES = 1024 * 1024;

/** A congested connection is clear again once its queue is below this. */
export const CLEAR_BELOW_BYTES = 256 * 1024;
