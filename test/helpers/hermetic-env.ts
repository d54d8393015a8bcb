import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The directories that stand in for the user's own while tests run. */
export interface HermeticDirs {
  /** Holds the others; removed when the process exits. */
  readonly root: string;
  /** `HOME`: so `~/.config`, `~/.local/share` and the rest resolve in here too. */
  readonly home: string;
  /** `XDG_CONFIG_HOME`: identity keys. */
  readonly configHome: string;
  /** `XDG_DATA_HOME`. */
  readonly dataHome: string;
  /** `XDG_STATE_HOME`. */
  readonly stateHome: string;
}

let dirs: HermeticDirs | undefined;

/**
 * This process's stand-ins for the user's home, config, data and state directories,
 * created on first use and removed at exit. A user's running peer holds its identity in
 * ~/.config/peerchat; no test may read, lock or create anything there.
 */
export function hermeticDirs(): HermeticDirs {
  if (dirs) return dirs;
  const root = mkdtempSync(join(tmpdir(), "peerchat-test-home-"));
  const made: HermeticDirs = {
    root,
    home: join(root, "home"),
    configHome: join(root, "config"),
    dataHome: join(root, "data"),
    stateHome: join(root, "state"),
  };
  for (const dir of [made.home, made.configHome, made.dataHome, made.stateHome])
    mkdirSync(dir, { mode: 0o700 });
  // `bun test` does not emit "exit": its preload removes them after the last test.
  process.once("exit", removeHermeticDirs);
  dirs = made;
  return made;
}

/** Removes {@link hermeticDirs} and all that was put in them. */
export function removeHermeticDirs(): void {
  if (dirs) rmSync(dirs.root, { recursive: true, force: true });
}

/**
 * The variables that point a peerchat, and anything else, at {@link hermeticDirs}; and
 * that keep its peers off the LAN: a test's peer must neither find a user's own peers
 * of the same room by multicast nor be found by them (tests of discovery turn it back on,
 * inside network namespaces of their own).
 */
export function hermeticEnv(): Record<string, string> {
  const d = hermeticDirs();
  return {
    PEERCHAT_NO_DISCOVER: "1",
    HOME: d.home,
    XDG_CONFIG_HOME: d.configHome,
    XDG_DATA_HOME: d.dataHome,
    XDG_STATE_HOME: d.stateHome,
  };
}

/**
 * The environment for every process a test starts: this one's, with the user's
 * directories replaced by {@link hermeticEnv} and a fresh data directory (whatever the
 * caller adds cannot undo that, short of naming the same variables).
 */
export function testEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  // A data directory of its own for every process: the run's peers share an identity
  // (whoever takes it first), and would otherwise share its history too, so one test's
  // messages (the fuzzer's, say) would turn up in another's backlog.
  const data = mkdtempSync(join(hermeticDirs().root, "data-"));
  // And what the chat remembers (nick, ignore list, typed lines): one test's /nick must
  // not rename the next test's peers.
  const state = mkdtempSync(join(hermeticDirs().root, "state-"));
  return { ...process.env, ...hermeticEnv(), XDG_DATA_HOME: data, XDG_STATE_HOME: state, ...extra };
}
