import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** A file marked as ours, or held by another live process. */
export type Lock = { status: "held"; pid: number } | { status: "taken"; release(): void };

/**
 * Marks `path` as used by this process with `path.lock` (created exclusively), unless a
 * live process already holds it. A lock left by a crash is taken over.
 *
 * The lock holds our pid and, where /proc tells it, when this process started: `PID
 * START`. A pid is reused once its process is gone, so a lock naming a live process that
 * started at another time was left by a crash, and is taken over too. A lock of the
 * older form, a pid alone, is held by any live process of that pid.
 */
export function takeLock(path: string, attempt = 0): Lock {
  const lock = `${path}.lock`;
  const ours = lockText(process.pid);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(lock, "wx", 0o600);
    try {
      writeSync(fd, ours);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 2) {
      // A read-only config directory: run without the lock rather than not at all.
      return { status: "taken", release: () => {} };
    }
    const holder = parseLock(readText(lock) ?? "");
    if (holder && holder.pid !== process.pid && holds(holder)) {
      return { status: "held", pid: holder.pid };
    }
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
        if (readText(lock) === ours) unlinkSync(lock);
      } catch {
        // Already gone.
      }
    },
  };
}

/** Who a lock file names: a pid, and when that process started if the lock says. */
export interface LockHolder {
  readonly pid: number;
  /** `/proc/PID/stat` field 22 (clock ticks since boot); absent in the older form. */
  readonly startTime?: string;
}

/** A lock's contents for the process `pid`: `PID START\n`, or `PID\n` without /proc. */
export function lockText(pid: number): string {
  const start = processStartTime(pid);
  return start === undefined ? `${pid}\n` : `${pid} ${start}\n`;
}

/** Reads a lock's contents; undefined if they name no pid. */
export function parseLock(text: string): LockHolder | undefined {
  const match = /^\s*(\d{1,10})(?:[ \t]+(\d{1,20}))?\s*$/.exec(text);
  const pid = Number(match?.[1]);
  if (!match || !(pid > 0)) return undefined;
  return match[2] === undefined ? { pid } : { pid, startTime: match[2] };
}

/**
 * When process `pid` started, in clock ticks since boot (`/proc/PID/stat` field 22), or
 * undefined where /proc does not say (not Linux, or the process is hidden or gone).
 */
export function processStartTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2, the command name, is in parentheses and may hold spaces and parentheses:
  // fields are counted after the last ")". Field 3 is the first after it.
  const fields = stat
    .slice(stat.lastIndexOf(")") + 1)
    .trim()
    .split(/\s+/);
  const start = fields[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** The process the lock names is alive, and is the one that wrote it (as far as we can tell). */
function holds(holder: LockHolder): boolean {
  if (!isAlive(holder.pid)) return false;
  if (holder.startTime === undefined) return true;
  const start = processStartTime(holder.pid);
  // Without /proc there is no telling a reused pid: a live one holds the lock.
  return start === undefined || start === holder.startTime;
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
