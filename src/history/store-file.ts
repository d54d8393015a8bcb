import { createHash } from "node:crypto";
import { accessSync, constants, existsSync } from "node:fs";
import { dirname } from "node:path";
import { StoreError } from "../errors.ts";
import { roomKey } from "../secure/room.ts";

/**
 * The file of one identity's history of one room: named by a hash of the room's key and
 * the node id, never by the room name (which is a secret), so that two identities, or
 * two rooms, never share one.
 */
export function historyFileName(room: string, nodeId: Uint8Array): string {
  const hash = createHash("sha256")
    .update("peerchat history v1\0")
    .update(roomKey(room))
    .update(nodeId)
    .digest("hex");
  return `${hash.slice(0, 32)}.db`;
}

/** Whether `path` (or, if it does not exist, its directory) can be written. */
function writable(path: string): boolean {
  try {
    accessSync(existsSync(path) ? path : dirname(path), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function isFull(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "SQLITE_FULL" || code === "SQLITE_IOERR_WRITE";
}

/** A {@link StoreError} that says what is wrong with `path` and what to do. */
export function storeError(path: string, error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: string }).code ?? "";
  const detail = (error as Error).message;
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT"))
    return new StoreError(
      "CORRUPT",
      `${path} is not a readable peerchat history (${detail}); move it away to start a new one`,
      { cause: error },
    );
  if (
    code.startsWith("SQLITE_READONLY") ||
    code === "SQLITE_PERM" ||
    code === "EACCES" ||
    (code.startsWith("SQLITE_CANTOPEN") && !writable(path))
  )
    return new StoreError(
      "READ_ONLY",
      `cannot write the history ${path} (${detail}); make its directory writable, choose another with --data-dir, or run with --ephemeral`,
      { cause: error },
    );
  return new StoreError(
    "UNREADABLE",
    `cannot open the history ${path} (${detail}); check the directory, choose another with --data-dir, or run with --ephemeral`,
    { cause: error },
  );
}
