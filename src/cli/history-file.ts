import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { StoreError } from "../errors.ts";
import { historyFileName } from "../history/store-file.ts";
import { takeLock } from "./file-lock.ts";

/** Where histories live: `$XDG_DATA_HOME/peerchat`, else `~/.local/share/peerchat`. */
export function defaultDataDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_DATA_HOME || join(env.HOME || homedir(), ".local", "share");
  return join(base, "peerchat");
}

/** The history a peer runs with, and why, when it is not the usual file. */
export type OpenedHistory =
  | { readonly status: "file"; readonly path: string; release(): void }
  /** In memory only: asked for, or the file is another live peerchat's. */
  | { readonly status: "memory"; readonly why?: string; release(): void };

/**
 * Picks the history file of this identity and room in `dataDir` and marks it as ours.
 * A file another live peerchat holds (the same identity, started twice with copies of
 * its key) is left alone: this peer keeps its history in memory, and says why. Throws
 * {@link StoreError} if the directory cannot be created.
 */
export function claimHistory(dataDir: string, room: string, nodeId: Uint8Array): OpenedHistory {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StoreError(
      code === "EACCES" || code === "EROFS" ? "READ_ONLY" : "UNREADABLE",
      `cannot create the history directory ${dataDir} (${(error as Error).message}); choose another with --data-dir, or run with --ephemeral`,
      { cause: error },
    );
  }
  const path = join(dataDir, historyFileName(room, nodeId));
  const lock = takeLock(path);
  if (lock.status === "held")
    return {
      status: "memory",
      why: `the history ${path} is in use by another peerchat (pid ${lock.pid}); this one keeps its history in memory only`,
      release: () => {},
    };
  return { status: "file", path, release: lock.release };
}
