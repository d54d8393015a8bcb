/**
 * Issue #14, end to end: retries that stop (a peer's own address, a peer of another
 * room), `/disconnect`, and an identity lock naming a reused pid. CLI peers from source,
 * hermetic (testEnv). Each test failed on the code before its fix.
 */

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { processStartTime } from "../../src/cli/file-lock.ts";
import { openIdentity } from "../../src/cli/identity-file.ts";
import { hex } from "../../src/protocol/hex.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: CliProcess[] = [];
const sleepers: Subprocess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
  for (const p of sleepers.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function start(args: string[], env: Record<string, string> = {}): CliProcess {
  const p = new CliProcess(fromSource, args, { env });
  running.push(p);
  return p;
}

/** A port nothing listens on now (the kernel's pick, released). */
function freePort(): number {
  const probe = Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

test("a peer given its own address (bootstrap, /connect by another name, on 0.0.0.0) stops dialling it", async () => {
  const port = freePort();
  const booted = start(["0.0.0.0", String(port), "127.0.0.1", String(port), "--ephemeral"]);
  await booted.waitForLog(`127.0.0.1:${port} is this peer itself; not dialling it again`);

  // Without bootstrap peers, piped commands are read at once.
  const me = start(["0.0.0.0", "0", "--ephemeral"]);
  const own = await listenPortOf(me);
  me.send(`/connect localhost:${own}`);
  await me.waitForLine(`localhost:${own} is this peer itself`);
  me.send(`/connect 127.0.0.1:${own}`);
  await me.waitForLine(`127.0.0.1:${own} is this peer itself`);
  // Asked again: answered at once.
  me.send(`/connect 127.0.0.1:${own}`);
  await waitFor(
    () => me.stdout.filter((l) => l.includes(`127.0.0.1:${own} is this peer itself`)).length >= 2,
    5000,
    () => me.stdout.join("\n"),
  );
  for (const p of [booted, me]) {
    const log = p.stderr.join("\n");
    expect(log).not.toContain("could not join");
    expect(log).not.toContain("retrying");
  }
}, 30_000);

test("a pinned peer of another room is given up after three refusals, said once; its owner says so once", async () => {
  const owner = start(["127.0.0.1", "0", "--room", "alpha", "--ephemeral", "--verbose"]);
  const port = await listenPortOf(owner);
  const where = `127.0.0.1:${port}`;
  const outsider = start([
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(port),
    "--room",
    "beta",
    "--ephemeral",
  ]);
  await outsider.waitForLog(
    `warn: gave up on ${where}: it is a peer of another room (or not a peerchat peer): 3 handshakes refused in a row`,
    20_000,
  );
  const warnings = outsider.stderr.filter((l) => l.includes("warn:") && l.includes(where));
  expect(warnings.map((l) => l.replace(/^\[[\d:.]+\] /, "").replace(/[\d.]+ s$/, "N s"))).toEqual([
    `warn: could not join ${where}: different room or not a peerchat peer; retrying in N s`,
    `warn: gave up on ${where}: it is a peer of another room (or not a peerchat peer): 3 handshakes refused in a row`,
  ]);
  // The owner heard three knocks: one line at the normal level, the others verbose only.
  const knocks = () => owner.stderr.filter((l) => l.includes("closed before the handshake"));
  await waitFor(
    () => knocks().length >= 3,
    5000,
    () => owner.stderr.join("\n"),
  );
  expect(knocks().map((l) => /\] (\w+):/.exec(l)?.[1])).toEqual(["info", "debug", "debug"]);
}, 30_000);

test("/disconnect HOST:PORT and /disconnect NAME drop the link with a BYE and stop the redials", async () => {
  const alice = start(["127.0.0.1", "0", "--nick", "alice", "--degree", "0", "--ephemeral"]);
  const port = await listenPortOf(alice);
  const where = `127.0.0.1:${port}`;
  const bob = start(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "bob", "--ephemeral"]);
  await bob.waitForLine("connected to alice");

  bob.send(`/disconnect ${where}`);
  await bob.waitForLine(`disconnected from alice (${where}); it will not be redialled`);
  await alice.waitForLine("bob left: dropped the link");
  bob.send(`/disconnect ${where}`);
  await bob.waitForLine(`not connected to ${where}`);
  bob.send("/disconnect 127.0.0.1:9");
  await bob.waitForLine("not connected to 127.0.0.1:9");

  // Asked for again, then dropped by name.
  bob.send(`/connect ${where}`);
  await waitFor(() => bob.stdout.filter((l) => l.includes("connected to alice (")).length >= 2);
  bob.send("/disconnect alice");
  await waitFor(
    () =>
      bob.stdout.filter((l) =>
        l.includes(`disconnected from alice (${where}); it will not be redialled`),
      ).length >= 2,
    5000,
    () => bob.stdout.join("\n"),
  );
  bob.send("/disconnect carol");
  await bob.waitForLine("not connected to carol: no neighbour goes by that name");
  bob.send("/help");
  await bob.waitForLine(/\/disconnect HOST:PORT\|NAME +drop the link to a neighbour/);
}, 30_000);

test("a stale identity lock naming a live, unrelated process (a reused pid) does not switch to a temporary identity", async () => {
  const config = mkdtempSync(join(tmpdir(), "peerchat-retries-config-"));
  dirs.push(config);
  const path = join(config, "peerchat", "identity");
  const opened = openIdentity(path);
  const nodeId = hex(opened.identity.publicKey);
  opened.release();
  const sleeper = Bun.spawn(["sleep", "60"], { stdout: "ignore", stderr: "ignore" });
  sleepers.push(sleeper);
  const start0 = processStartTime(sleeper.pid) as string;

  // The peerchat that left this lock had the pid `sleep` has now, and started earlier.
  writeFileSync(`${path}.lock`, `${sleeper.pid} ${BigInt(start0) - 1n}\n`);
  const peer = start(["127.0.0.1", "0", "--json", "--ephemeral"], { XDG_CONFIG_HOME: config });
  await listenPortOf(peer);
  expect(peer.events().find((e) => e.type === "ready")?.nodeId).toBe(nodeId);
  expect(peer.stderr.join("\n")).not.toContain("in use");
  await peer.stop();

  // The same pid with its own start time does hold it: the peer says so, and by whom.
  writeFileSync(`${path}.lock`, `${sleeper.pid} ${start0}\n`);
  const second = start(["127.0.0.1", "0", "--json", "--ephemeral", "--quiet"], {
    XDG_CONFIG_HOME: config,
  });
  await listenPortOf(second);
  expect(second.events().find((e) => e.type === "ready")?.nodeId).not.toBe(nodeId);
  await second.waitForLog(
    `warn: your identity (${path}) is in use by another peerchat (pid ${sleeper.pid}); this one runs with a temporary identity`,
  );
}, 30_000);
