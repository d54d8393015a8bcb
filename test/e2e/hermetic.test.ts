import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { defaultIdentityPath } from "../../src/cli/identity-file.ts";
import { hex } from "../../src/protocol/hex.ts";
import { identityFromPem } from "../../src/secure/identity.ts";
import { CliProcess, fromSource, ROOT } from "../helpers/cli.ts";
import { hermeticDirs } from "../helpers/hermetic-env.ts";

// A user may be chatting on this machine with their own identity while the suite runs:
// nothing a test does, or starts, may look in their home (bunfig.toml's preload).

const running: CliProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

const VARIABLES = ["HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"] as const;

/** True if `path` is inside `dir`. */
const inside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

test("the test process and what it starts see the run's own home and XDG directories", async () => {
  const { root } = hermeticDirs();
  const realHome = userInfo().homedir; // from the password database, not from HOME
  for (const name of VARIABLES) {
    const value = process.env[name] ?? "";
    expect({ name, inside: inside(value, root) }).toEqual({ name, inside: true });
  }
  expect(inside(homedir(), root)).toBe(true);
  expect(inside((require("node:os") as { homedir(): string }).homedir(), root)).toBe(true);
  expect(inside(defaultIdentityPath(), root)).toBe(true);
  expect(inside(defaultIdentityPath(), realHome)).toBe(false);

  // A child started without an `env` of its own inherits them.
  const child = Bun.spawn(
    [
      process.execPath,
      "-e",
      `console.log(JSON.stringify({ env: ${JSON.stringify(VARIABLES)}.map((n) => process.env[n]), home: require("node:os").homedir() }))`,
    ],
    { stdout: "pipe" },
  );
  const seen = JSON.parse(await new Response(child.stdout).text()) as {
    env: string[];
    home: string;
  };
  expect(await child.exited).toBe(0);
  expect(seen.env).toEqual(VARIABLES.map((n) => process.env[n] as string));
  expect(inside(seen.home, root)).toBe(true);
});

test("the run's directories are removed when its process exits", async () => {
  const script = `
    import { existsSync } from "node:fs";
    import { hermeticDirs } from ${JSON.stringify(join(ROOT, "test", "helpers", "hermetic-env.ts"))};
    const { root, configHome } = hermeticDirs();
    console.log(JSON.stringify({ root, existed: existsSync(configHome) }));`;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe" });
  const out = JSON.parse(await new Response(child.stdout).text()) as {
    root: string;
    existed: boolean;
  };
  expect(await child.exited).toBe(0);
  expect(out.existed).toBe(true);
  expect(existsSync(out.root)).toBe(false);
});

/** Starts a --json peer with the default identity; resolves with it and its node id. */
async function defaultIdentityPeer(env: Record<string, string> = {}) {
  const peer = new CliProcess(fromSource, ["127.0.0.1", "0", "--json", "--nick", "own"], { env });
  running.push(peer);
  const ready = JSON.parse(await peer.waitForLine('"type":"ready"')) as { nodeId: string };
  return { peer, nodeId: ready.nodeId };
}

const nodeIdIn = (path: string) => hex(identityFromPem(readFileSync(path, "utf8")).publicKey);

test("a peer on the default identity keeps its key in the run's directories, never the user's", async () => {
  const { home, configHome } = hermeticDirs();

  // Without XDG_CONFIG_HOME the key goes under HOME/.config: the run's home, fresh.
  const viaHome = join(home, ".config", "peerchat", "identity");
  const first = await defaultIdentityPeer({ XDG_CONFIG_HOME: "" });
  await first.peer.waitForLog(`created your identity key at ${viaHome}`);
  expect(nodeIdIn(viaHome)).toBe(first.nodeId);

  // With it, in the run's config directory (other tests' peers may have made the key,
  // or a straggler may hold it; either way it is that file).
  const viaXdg = join(configHome, "peerchat", "identity");
  const second = await defaultIdentityPeer();
  expect(existsSync(viaXdg)).toBe(true);
  const inUse = second.peer.stderr.find((l) => l.includes("is in use by another peerchat"));
  if (inUse) expect(inUse).toContain(`your identity (${viaXdg})`);
  else expect(nodeIdIn(viaXdg)).toBe(second.nodeId);
});
