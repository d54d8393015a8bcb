import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** A file marked as ours, or held by another live process. */
export type Lock = { status: "held"; pid: number } | { status: "taken"; release(): void };

/**
 * Marks `path` as used by this process with `path.lock` (created exclusively, holding
 * our pid), unless a live process already holds it. A lock left by a crash is taken over.
 */
export function takeLock(path: string, attempt = 0): Lock {
  const lock = `${path}.lock`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(lock, "wx", 0o600);
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 2) {
      // A read-only config directory: run without the lock rather than not at all.
      return { status: "taken", release: () => {} };
    }
    const pid = Number.parseInt(readText(lock) ?? "", 10);
    if (pid > 0 && pid !== process.pid && isAlive(pid)) return { status: "held", pid };
    try {
      unlinkSync(lock);
    } catch {
      // Someone else cleared it first; try again either way.
    }
    return takeLock(path, attempt + 1);
  }
  let released = false;
  return {
    status: "taken",
    release: () => {
      if (released) return;
      released = true;
      try {
        if (Number.parseInt(readText(lock) ?? "", 10) === process.pid) unlinkSync(lock);
      } catch {
        // Already gone.
      }
    },
  };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's. ESRCH: gone.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A process killed but not yet reaped by its parent still answers signal 0: on Linux,
  // its state in /proc says it is a zombie, and a zombie holds nothing.
  const stat = readText(`/proc/${pid}/stat`);
  return stat === undefined || !/^\d+ \(.*\) Z/s.test(stat);
}
