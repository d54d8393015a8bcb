/**
 * The process's standard streams, through Bun's own file sinks. Node's `process.stdout`,
 * `process.stderr` and `process.stdin` (even just `.isTTY`) load node:stream and its
 * friends: about 7 MB that a headless relay, which prints a line now and then, does not
 * need. The interactive terminal still uses node's readline, and pays for it.
 */

const stdoutSink = Bun.stdout.writer();
const stderrSink = Bun.stderr.writer();
let stdoutOpen = true;
/** Why stdout stopped: undefined if its reader went away (EPIPE), else the write error. */
let stdoutFailure: Error | undefined;
const stdoutGoneListeners: Array<(failure: Error | undefined) => void> = [];

/** Writes one line to stdout. Once stdout has failed, or its reader has gone, lines are dropped. */
export function writeStdout(line: string): void {
  if (!stdoutOpen) return;
  try {
    stdoutSink.write(`${line}\n`);
    // A chat line is shown at once, not when some buffer fills.
    const flushed = stdoutSink.flush();
    if (flushed instanceof Promise) flushed.catch(stdoutFailed);
  } catch (error) {
    stdoutFailed(error);
  }
}

/** Writes one line to stderr, for logs and errors; a closed stderr is ignored. */
export function writeStderr(line: string): void {
  try {
    stderrSink.write(`${line}\n`);
    const flushed = stderrSink.flush();
    if (flushed instanceof Promise) flushed.catch(() => {});
  } catch {
    // Nowhere left to say it.
  }
}

/**
 * Calls `listener` once stdout stops taking lines: with `undefined` if its reader went
 * away (`peerchat | head -3`: leaving quietly is right), or with the error if a write
 * failed otherwise (a full disk: an error the user must hear of).
 */
export function onStdoutGone(listener: (failure: Error | undefined) => void): void {
  if (stdoutOpen) stdoutGoneListeners.push(listener);
  else listener(stdoutFailure);
}

/** Resolves once everything written to stdout and stderr has been handed to the OS. */
export async function flushStdio(): Promise<void> {
  await Promise.all([
    Promise.resolve(stdoutOpen ? stdoutSink.flush() : 0).catch(stdoutFailed),
    Promise.resolve(stderrSink.flush()).catch(() => {}),
  ]);
}

/** Whether standard stream `fd` (0, 1 or 2) is a terminal. */
export function isTerminal(fd: 0 | 1 | 2): boolean {
  return ttyCheck()(fd);
}

function stdoutFailed(error: unknown): void {
  if (!stdoutOpen) return;
  stdoutOpen = false;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "EPIPE" && error !== undefined)
    stdoutFailure = error instanceof Error ? error : new Error(String(error));
  for (const listener of stdoutGoneListeners.splice(0)) listener(stdoutFailure);
}

let isatty: ((fd: number) => boolean) | undefined;
function ttyCheck(): (fd: number) => boolean {
  if (isatty) return isatty;
  // Bun answers isatty(3) natively behind the old binding name; node:tty's isatty would
  // pull in the node streams this module exists to avoid. Fall back to it if the binding
  // ever goes away.
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding(
      "tty_wrap",
    ) as { isTTY?: (fd: number) => boolean };
    if (typeof binding.isTTY === "function") {
      const check = binding.isTTY;
      isatty = (fd) => check(fd);
      return isatty;
    }
  } catch {
    // Fall through.
  }
  isatty = (fd) => (require("node:tty") as typeof import("node:tty")).isatty(fd);
  return isatty;
}
