import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
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
  // An empty file holds no key (an older version, or another program, cut short while
  // writing one): nothing is lost by writing a key in its place.
  if (existsSync(path) && statSync(path).size === 0) rmSync(path, { force: true });
  if (existsSync(path)) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      // Not the key's fault: say so, rather than advise throwing a valid key away.
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === "EACCES" ? "permission denied: check its owner and mode" : code;
      throw new ConfigError("BAD_IDENTITY", `cannot read the identity file ${path} (${why})`, {
        cause: error,
      });
    }
    let identity: Identity;
    try {
      identity = identityFromPem(text);
    } catch (error) {
      throw new ConfigError(
        "BAD_IDENTITY",
        `${path} is not a peerchat identity (${keyProblem(error)}); move it away to create a new one`,
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
    writeKeyFile(path, identity.toPem());
  } catch (error) {
    throw new ConfigError(
      "BAD_IDENTITY",
      `cannot create the identity file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { status: "created", identity, warnings: [] };
}

/** Why a file is not a key, in words: OpenSSL's codes mean nothing to a user. */
function keyProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/^not an Ed25519 key/.test(message)) return message;
  return "its contents are not a PEM private key";
}

/**
 * Writes `pem` to `path` (mode 0600) all at once or not at all: into a temporary file
 * beside it, synced, then linked into place, which fails rather than overwrite a key
 * that appeared meanwhile. A full disk leaves no half-written key behind to block the
 * next start. `write` is the file system's (tests make it fail).
 */
export function writeKeyFile(
  path: string,
  pem: string,
  write: (fd: number, text: string) => void = (fd, text) => {
    writeSync(fd, text);
  },
): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(temporary, "wx", 0o600);
    try {
      write(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(temporary, 0o600);
    linkSync(temporary, path);
  } finally {
    rmSync(temporary, { force: true });
  }
}
