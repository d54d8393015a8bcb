/**
 * Direct messages end to end: CLI peers from source, as a user runs them: `/msg`, `/r`,
 * names that do not resolve, receipts, and `peerchat send --to` from a script.
 */

import { afterEach, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: CliProcess[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function start(args: string[]): CliProcess {
  const p = new CliProcess(fromSource, args);
  running.push(p);
  return p;
}

/** A peer on a free port with a data directory of its own (to look into), linked to `to`. */
async function peer(
  nick: string,
  options: { to?: number; json?: boolean; trace?: boolean; home?: string; port?: number } = {},
) {
  let home = options.home;
  if (home === undefined) {
    home = await mkdtemp(join(tmpdir(), `peerchat-direct-${nick}-`));
    tempDirs.push(home);
  }
  const dataDir = join(home, "data");
  const args = [
    "127.0.0.1",
    String(options.port ?? 0),
    ...["--nick", nick, "--degree", "0", "--data-dir", dataDir],
    ...["--identity", join(home, "identity")],
  ];
  if (options.to !== undefined) args.push("--peer", `127.0.0.1:${options.to}`);
  if (options.json) args.push("--json");
  if (options.trace) args.push("--trace");
  const p = start(args);
  return { p, port: await listenPortOf(p), dataDir, home };
}

const nodeIdOf = (p: CliProcess) => p.events().find((e) => e.type === "ready")?.nodeId as string;

/** Everything in a data directory's files, as latin1 text: what a look at the disk shows. */
function diskText(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f)).toString("latin1"))
    .join("\n");
}

const DIRECT_LINE = /^\[\d\d:\d\d:\d\d\] /.source;

test("/msg through a relay: shown at the recipient only, receipt to the sender, /r answers; an unknown or ambiguous name sends nothing", async () => {
  // alice ← bob ← carol, and a second "bob" beside the first: --degree 0, a chain.
  const alice = await peer("alice", { json: true });
  const bob = await peer("bob", { to: alice.port });
  const carol = await peer("carol", { to: bob.port, trace: true });
  const otherBob = await peer("bob", { to: bob.port });
  await carol.p.waitForLine(/bob#\w{4} joined/, 10_000);
  alice.p.send("hello, whoever is here");
  await carol.p.waitForLine(/<alice> hello, whoever is here$/, 10_000);
  const aliceId = nodeIdOf(alice.p);

  // Refused locally, the candidates listed, nothing sealed or sent.
  carol.p.send("/msg bob are you there?");
  const ambiguous = await carol.p.waitForLine(/not sent: "bob" could be any of/);
  expect(ambiguous.match(/bob#\w{4} \([0-9a-f]{8}\)/g)?.length).toBe(2);
  carol.p.send("/msg alise hello?");
  const unknown = await carol.p.waitForLine(/not sent: nobody known as "alise"/);
  expect(unknown).toContain(`alice#`);
  expect(unknown).toContain(`(${aliceId.slice(0, 8)})`);
  carol.p.send("/msg zed hello?");
  await carol.p.waitForLine(/not sent: nobody known as "zed"/);
  expect(carol.p.stderr.filter((l) => l.includes("DIRECT"))).toEqual([]);

  // To alice, by nick: through bob, who can neither read it nor tell who wrote it.
  const secret = "the key is under the third stone";
  carol.p.send(`/msg alice ${secret}`);
  await carol.p.waitForLine(new RegExp(`${DIRECT_LINE}you → \\*alice\\*: ${secret}$`));
  const received = (await waitFor(
    () => alice.p.events().find((e) => e.type === "message" && e.direct === true),
    10_000,
    "alice gets it",
  )) as Record<string, unknown>;
  expect(received).toMatchObject({
    text: secret,
    nick: "carol",
    to: aliceId,
    own: false,
    late: false,
  });
  await carol.p.waitForLine(/\* ✓ delivered to alice$/);
  expect(carol.p.stderr.some((l) => l.includes("DIRECT"))).toBe(true);

  // alice answers with /r; carol sees it as a direct line.
  alice.p.send("/r got it");
  await carol.p.waitForLine(new RegExp(`${DIRECT_LINE}\\*alice\\* → you: got it$`));
  await waitFor(
    () => alice.p.events().some((e) => e.type === "receipt"),
    10_000,
    "alice's receipt",
  );

  // Nobody else showed either, and bob's screen and disk never held the words.
  for (const p of [bob.p, otherBob.p]) {
    expect(p.stdout.filter((l) => l.includes(secret) || l.includes("got it"))).toEqual([]);
    expect(p.stderr.filter((l) => l.includes(secret))).toEqual([]);
  }
  await bob.p.stop();
  expect(diskText(bob.dataDir)).not.toContain(secret);
  expect(diskText(bob.dataDir)).not.toContain("got it");
}, 60_000);

test("peerchat send --to NODEID delivers from a script; a bad node id is a usage error, nobody listening exit 1", async () => {
  const alice = await peer("alice", { json: true });
  const aliceId = nodeIdOf(alice.p);
  const send = (args: string[]) => {
    const p = start(["send", ...args]);
    return p.exited.then((code) => ({ code, p }));
  };
  const sent = await send([`127.0.0.1:${alice.port}`, "--to", aliceId, "--json", "from a script"]);
  expect(sent.code).toBe(0);
  expect(sent.p.events()).toContainEqual(
    expect.objectContaining({ type: "message", direct: true, to: aliceId, own: true }),
  );
  await waitFor(
    () =>
      alice.p.events().some((e) => e.type === "message" && e.direct && e.text === "from a script"),
    10_000,
    "alice gets the scripted message",
  );

  const bad = await send([`127.0.0.1:${alice.port}`, "--to", aliceId.slice(0, 20), "x"]);
  expect(bad.code).toBe(2);
  expect(bad.p.stderr.join("\n")).toContain("--to needs a whole node id");
  await alice.p.stop();
  const gone = await send([`127.0.0.1:${alice.port}`, "--to", aliceId, "hello?"]);
  expect(gone.code).toBe(1);
}, 30_000);

test("/msg to someone away: kept by the network; restarted with its identity and data, alice shows it late, and carol then sees the receipt", async () => {
  const alice = await peer("alice", { json: true });
  const bob = await peer("bob", { to: alice.port });
  const carol = await peer("carol", { to: bob.port });
  alice.p.send("back in a minute");
  await carol.p.waitForLine(/<alice> back in a minute$/, 10_000);
  alice.p.signal("SIGKILL");
  await alice.p.exited;
  carol.p.send("/msg alice call me when you are back");
  await carol.p.waitForLine(/you → \*alice\*: call me when you are back$/);
  // Bob keeps it sealed; alice comes back on her port, with her identity and history.
  const again = await peer("alice", { json: true, home: alice.home, port: alice.port });
  expect(nodeIdOf(again.p)).toBe(nodeIdOf(alice.p));
  const late = (await waitFor(
    () => again.p.events().find((e) => e.type === "message" && e.direct === true),
    20_000,
    "alice shows it late",
  )) as Record<string, unknown>;
  expect(late).toMatchObject({ text: "call me when you are back", nick: "carol", late: true });
  await carol.p.waitForLine(/\* ✓ delivered to alice$/, 20_000);
}, 60_000);
