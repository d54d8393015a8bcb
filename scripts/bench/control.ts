/**
 * The line protocol between the benchmark driver and its worker processes: one JSON
 * object per line, a command on stdin and its reply on stdout.
 */

/** A command from the driver. `id` is echoed in the reply. */
export interface Command {
  readonly id: number;
  readonly op: string;
  readonly [key: string]: unknown;
}

/** Serves commands from stdin until `exit`; `handle` returns the reply's fields. */
export async function serve(
  handle: (command: Command) => Promise<Record<string, unknown>> | Record<string, unknown>,
): Promise<never> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of process.stdin) {
    partial += decoder.decode(chunk as Uint8Array, { stream: true });
    let nl = partial.indexOf("\n");
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      nl = partial.indexOf("\n");
      const command = JSON.parse(line) as Command;
      if (command.op === "exit") process.exit(0);
      // Commands run concurrently (a receiver waits while the sender sends).
      void Promise.resolve()
        .then(() => handle(command))
        .then(
          (reply) =>
            process.stdout.write(`${JSON.stringify({ id: command.id, ok: true, ...reply })}\n`),
          (error) =>
            process.stdout.write(
              `${JSON.stringify({ id: command.id, ok: false, error: String(error?.stack ?? error) })}\n`,
            ),
        );
    }
  }
  process.exit(0);
}

/** Wall-clock time in milliseconds with sub-millisecond precision, comparable across processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resident set size of this process, in bytes. */
export function rssBytes(): number {
  return process.memoryUsage.rss();
}

/** Yields to the event loop (lets sockets drain). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
