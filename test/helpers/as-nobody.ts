import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether checks of file permissions must run as another user (root reads through modes). */
export const AS_ROOT = process.getuid?.() === 0;

/** User and group `nobody`. */
const NOBODY = "65534";

/**
 * The command that runs `command` as user nobody when the tests run as root (else as is).
 * setpriv comes with util-linux.
 */
export function asNobody(command: string[]): string[] {
  if (!AS_ROOT) return command;
  const setpriv = Bun.which("setpriv");
  if (!setpriv)
    throw new Error("setpriv (util-linux) is needed to run a check as user nobody: install it");
  return [setpriv, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...command];
}

const bundles = new Map<string, string>();

/**
 * `entry` (a file path, or a script's source) bundled into one file in a directory
 * anyone can read: user nobody may not be able to read the checkout itself (a clone in
 * a `mktemp -d` directory is root's alone), so what it runs must not be read from there.
 */
export async function readableBundle(entry: string, source?: string): Promise<string> {
  const key = source ?? entry;
  const built = bundles.get(key);
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), "peerchat-nobody-"));
  chmodSync(dir, 0o755);
  let input = entry;
  if (source !== undefined) {
    input = join(dir, "entry.ts");
    await Bun.write(input, source);
  }
  const result = await Bun.build({ entrypoints: [input], target: "bun", outdir: dir });
  if (!result.success) throw new Error(`bundling ${entry} failed: ${result.logs.join("\n")}`);
  const out = result.outputs[0]?.path as string;
  chmodSync(out, 0o644);
  bundles.set(key, out);
  return out;
}
