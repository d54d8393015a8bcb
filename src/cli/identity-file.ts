import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError } from "../errors.ts";
import { generateIdentity, type Identity, identityFromPem } from "../secure/identity.ts";
import { takeLock } from "./file-lock.ts";

/** Where the user's identity lives: `$XDG_CONFIG_HOME/peerchat/identity`, else under ~/.config. */
export function defaultIdentityPath(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "peerchat", "identity");
}

/** The identity a peer runs with, and how it came to be. */
export type OpenedIdentity =
  | {
      /** `loaded` from the file, or `created` there on first run. */
      readonly status: "loaded" | "created";
      readonly identity: Identity;
      readonly path: string;
      /** Warnings for the user (a key file others can read). */
      readonly warnings: readonly string[];
      /** Gives the file back for the next peer; call on exit. */
      release(): void;
    }
  | {
      /**
       * Another running peer holds the file (two peers of one user on one machine, as
       * in the README's chain). Both cannot be the same node, so this one gets a
       * temporary identity.
       */
      readonly status: "in-use";
      readonly identity: Identity;
      readonly path: string;
      readonly pid: number;
      readonly warnings: readonly string[];
      release(): void;
    };

/**
 * Loads the Ed25519 identity at `path`, creating it (mode 0600, directory 0700) on first
 * run. Throws {@link ConfigError} `BAD_IDENTITY` if the file exists but is not a key.
 */
export function openIdentity(path: string): OpenedIdentity {
  const lock = takeLock(path);
  if (lock.status === "held") {
    return {
      status: "in-use",
      identity: generateIdentity(),
      path,
      pid: lock.pid,
      warnings: [],
      release: () => {},
    };
  }
  try {
    return { ...loadOrCreate(path), path, release: lock.release };
  } catch (error) {
    lock.release();
    throw error;
  }
}

function loadOrCreate(path: string): {
  status: "loaded" | "created";
  identity: Identity;
  warnings: string[];
} {
  if (existsSync(path)) {
    let identity: Identity;
    try {
      identity = identityFromPem(readFileSync(path, "utf8"));
    } catch (error) {
      throw new ConfigError(
        "BAD_IDENTITY",
        `${path} is not a peerchat identity (${(error as Error).message}); move it away to create a new one`,
        { cause: error },
      );
    }
    const warnings: string[] = [];
    if (process.platform !== "win32" && (statSync(path).mode & 0o077) !== 0) {
      warnings.push(`${path} can be read by other users; chmod 600 it`);
    }
    return { status: "loaded", identity, warnings };
  }
  const identity = generateIdentity();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // `wx`: never overwrite a key, even one that appeared a moment ago.
    const fd = openSync(path, "wx", 0o600);
    try {
      writeSync(fd, identity.toPem());
    } finally {
      closeSync(fd);
    }
    chmodSync(path, 0o600);
  } catch (error) {
    throw new ConfigError(
      "BAD_IDENTITY",
      `cannot create the identity file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { status: "created", identity, warnings: [] };
}
