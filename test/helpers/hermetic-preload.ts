/**
 * Preloaded before every test file (bunfig.toml `[test] preload`): the whole test process,
 * and every process it starts, sees a home, config and data directory of this run's own,
 * never the user's ~/.config/peerchat, where a running peer holds its identity.
 */
import { afterAll, mock } from "bun:test";
import * as os from "node:os";
import { hermeticEnv, removeHermeticDirs } from "./hermetic-env.ts";

Object.assign(process.env, hermeticEnv());
afterAll(removeHermeticDirs);

// Bun's os.homedir() reads HOME once, at startup: code in this process that falls back
// to it must get the stand-in too, through `import` and `require` alike.
const homedir = () => process.env.HOME as string;
const osObject = require("node:os") as typeof os;
osObject.homedir = homedir;
mock.module("node:os", () => ({ ...os, homedir, default: osObject }));

// Bun.spawn and Bun.spawnSync without an `env` give the child the environment this
// process started with, not process.env as changed above (oven-sh/bun#34972; node's
// child_process and Bun.$ do use process.env). Default it, so no spawn can miss it.
const withLiveEnv = (args: unknown[]): unknown[] => {
  const [first, ...rest] = args;
  if (Array.isArray(first)) {
    const options = (rest[0] ?? {}) as { env?: unknown };
    return [first, { ...options, env: options.env ?? { ...process.env } }, ...rest.slice(1)];
  }
  const options = (first ?? {}) as { env?: unknown };
  return [{ ...options, env: options.env ?? { ...process.env } }, ...rest];
};
const { spawn, spawnSync } = Bun as unknown as Record<string, (...args: unknown[]) => unknown>;
Object.assign(Bun, {
  spawn: (...args: unknown[]) => spawn?.(...withLiveEnv(args)),
  spawnSync: (...args: unknown[]) => spawnSync?.(...withLiveEnv(args)),
});
