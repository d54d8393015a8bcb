/**
 * Issue #14: "a stale lock naming any live pid (a reused pid) silently switches to a
 * temporary identity". The lock records when its process started; a live process of
 * that pid that started at another time is not the holder.
 */

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parseLock, processStartTime, takeLock } from "../../src/cli/file-lock.ts";

const dirs: string[] = [];
const sleepers: Subprocess[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const p of sleepers.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "peerchat-lock-"));
  dirs.push(dir);
  return join(dir, "identity");
}

/** A live process that is not a peerchat: what a reused pid leads to. */
function unrelatedProcess(): { pid: number; start: string } {
  const p = Bun.spawn(["sleep", "60"], { stdout: "ignore", stderr: "ignore" });
  sleepers.push(p);
  const start = processStartTime(p.pid);
  if (start === undefined) throw new Error("no /proc start time for a live process");
  return { pid: p.pid, start };
}

test("the lock names this process and when it started; release removes it", () => {
  const path = tempPath();
  const lock = takeLock(path);
  expect(lock.status).toBe("taken");
  const written = readFileSync(`${path}.lock`, "utf8");
  expect(written).toBe(`${process.pid} ${processStartTime(process.pid)}\n`);
  expect(parseLock(written)).toEqual({
    pid: process.pid,
    startTime: processStartTime(process.pid) as string,
  });
  if (lock.status === "taken") lock.release();
  expect(() => readFileSync(`${path}.lock`)).toThrow();
});

test("a lock naming a live pid whose process started at another time (a reused pid) is taken over", () => {
  const path = tempPath();
  const other = unrelatedProcess();
  // The peerchat that wrote it had this pid once, and started a tick before this one.
  writeFileSync(`${path}.lock`, `${other.pid} ${BigInt(other.start) - 1n}\n`);
  const lock = takeLock(path);
  expect(lock.status).toBe("taken");
  expect(parseLock(readFileSync(`${path}.lock`, "utf8"))?.pid).toBe(process.pid);
});

test("a lock naming a live pid with its own start time is held, and says by which pid", () => {
  const path = tempPath();
  const other = unrelatedProcess();
  writeFileSync(`${path}.lock`, `${other.pid} ${other.start}\n`);
  expect(takeLock(path)).toEqual({ status: "held", pid: other.pid });
});

test("an older lock, a pid alone, is held by any live process of that pid; a dead one's is taken", () => {
  const path = tempPath();
  const other = unrelatedProcess();
  writeFileSync(`${path}.lock`, `${other.pid}\n`);
  expect(takeLock(path)).toEqual({ status: "held", pid: other.pid });
  // No process has pid 2^22 + 1 (above Linux's default pid_max).
  writeFileSync(`${path}.lock`, "4194305\n");
  expect(takeLock(path).status).toBe("taken");
});

test("a start time is read past a command name holding spaces and parentheses", () => {
  const dir = mkdtempSync(join(tmpdir(), "peerchat-lock-"));
  dirs.push(dir);
  const odd = join(dir, "a) b (c");
  symlinkSync(Bun.which("sleep") as string, odd);
  const p = Bun.spawn([odd, "60"], { stdout: "ignore", stderr: "ignore" });
  sleepers.push(p);
  expect(readFileSync(`/proc/${p.pid}/stat`, "utf8")).toContain("(a) b (c)");
  const start = Number(processStartTime(p.pid));
  const uptimeTicks = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  expect(start).toBeGreaterThanOrEqual(Number(processStartTime(process.pid)));
  expect(start).toBeLessThanOrEqual(uptimeTicks);
  expect(processStartTime(4_194_305)).toBeUndefined();
  expect(parseLock("12 34\n")).toEqual({ pid: 12, startTime: "34" });
  expect(parseLock("12\n")).toEqual({ pid: 12 });
  expect(parseLock("garbage")).toBeUndefined();
  expect(parseLock("0 1")).toBeUndefined();
});
