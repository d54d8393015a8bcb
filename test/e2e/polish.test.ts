/**
 * What a person meets at the command line, end to end (issue: "the terminal a weechat
 * or irssi user expects"): each test here failed on the code before its fix.
 */

import { afterEach, expect, test } from "bun:test";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";

const running: CliProcess[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

function start(args: string[], env: Record<string, string> = {}): CliProcess {
  const p = new CliProcess(fromSource, args, { env });
  running.push(p);
  return p;
}

test("/quit WORDS: the others see the parting words, and the peer exits 0", async () => {
  const alice = start(["127.0.0.1", "0", "--nick", "alice", "--ephemeral"]);
  const port = await listenPortOf(alice);
  const bob = start(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "bob", "--ephemeral"]);
  await alice.waitForLine(/bob joined/);
  alice.send("/quit see you all, back at six");
  expect(await alice.exited).toBe(0);
  await bob.waitForLine(/\* alice left: see you all, back at six$/);
});
