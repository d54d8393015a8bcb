/**
 * Issue #14, as a user meets it: lost links that went unannounced, a peer cut off that
 * did not know it, and join lines that disagreed. Peers are processes, driven through
 * stdin and read from stdout; each test here failed on the code before its fix.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: CliProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of running) p.signal("SIGCONT");
  await Promise.all(running.splice(0).map((p) => p.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function start(args: string[]): CliProcess {
  const p = new CliProcess(fromSource, [...args, "--ephemeral"]);
  running.push(p);
  return p;
}

const count = (p: CliProcess, re: RegExp) => p.stdout.filter((l) => re.test(l)).length;

/** Waits until `p` has shown `n` lines matching `re`. */
async function waitForCount(p: CliProcess, re: RegExp, n: number, timeoutMs: number) {
  await waitFor(
    () => count(p, re) >= n,
    timeoutMs,
    () => `${n} × ${re} in\n${p.stdout.join("\n")}\nstderr:\n${p.stderr.join("\n")}`,
  );
}

/** Either end's line for a link to `nick`: "connected to nick (…)" or "nick connected from …". */
const linkLine = (nick: string) =>
  new RegExp(`\\* (connected to ${nick} \\(|${nick} connected from )`);

test("kill -9 of a peer that left and came back, twice: every lost link is a line at once, and /who stops listing it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "peerchat-lost-"));
  dirs.push(dir);
  const a = start(["127.0.0.1", "0", "--nick", "alice"]);
  const portA = await listenPortOf(a);
  const bobArgs = (port: number) => [
    "127.0.0.1",
    String(port),
    "--peer",
    `127.0.0.1:${portA}`,
    "--nick",
    "bob",
    "--identity",
    join(dir, "bob.key"),
  ];
  let b = start(bobArgs(0));
  const portB = await listenPortOf(b);
  const c = start(["127.0.0.1", "0", "--peer", `127.0.0.1:${portB}`, "--nick", "carol"]);
  await c.waitForLine(linkLine("bob"));
  await a.waitForLine(linkLine("carol"), 10_000);

  // Bob leaves properly, and comes back: the same identity, the same port.
  b.send("/quit");
  expect(await b.exited).toBe(0);
  await a.waitForLine("bob left: quit");
  const lost = /\* lost link to bob \(/;
  for (const round of [1, 2]) {
    b = start(bobArgs(portB));
    // Linked to both again (alice redials it, carol's pin does, and bob's own pin and mesh).
    await b.waitForLine(linkLine("alice"), 15_000);
    await b.waitForLine(linkLine("carol"), 15_000);
    await waitFor(() => a.stdout.filter((l) => l.includes("bob joined")).length >= round + 1);
    b.signal("SIGKILL");
    const killedAt = performance.now();
    await Promise.all([waitForCount(a, lost, round, 3000), waitForCount(c, lost, round, 3000)]);
    const shownAfter = performance.now() - killedAt;
    console.log(`round ${round}: lost link shown ${Math.round(shownAfter)} ms after kill -9`);
    // Nobody else can reach bob: within seconds, not here any more.
    await Promise.all([
      waitForCount(a, /\* bob is unreachable/, round, 10_000),
      waitForCount(c, /\* bob is unreachable/, round, 10_000),
    ]);
    for (const p of [a, c]) {
      const from = p.stdout.length;
      p.send("/who");
      await waitFor(() => p.stdout.slice(from).some((l) => /\* 2 here/.test(l)));
      await waitFor(() => p.stdout.slice(from).filter((l) => /^\s{4}\S/.test(l)).length >= 3);
      expect(p.stdout.slice(from).some((l) => /^\s+bob\s/.test(l))).toBe(false);
    }
    await b.exited;
  }
}, 90_000);

test("a peer whose only neighbour freezes is told within seconds, and links to another peer before the 30 s time-out", async () => {
  // Degree 1: a chain A – B – C, and C knows A only from B's PEERS.
  const a = start(["127.0.0.1", "0", "--nick", "A", "--degree", "1"]);
  const portA = await listenPortOf(a);
  const b = start(["127.0.0.1", "0", "127.0.0.1", String(portA), "--nick", "B", "--degree", "1"]);
  const portB = await listenPortOf(b);
  const c = start(["127.0.0.1", "0", "127.0.0.1", String(portB), "--nick", "C", "--degree", "1"]);
  await c.waitForLine("connected to B");
  await a.waitForLine("B connected from");
  c.send("before the freeze");
  await a.waitForLine(/<C> before the freeze$/);
  expect(count(c, linkLine("A"))).toBe(0);

  b.signal("SIGSTOP"); // no FIN, no RST: B's links are still open, and silent
  const frozenAt = performance.now();
  c.send("is anyone there?");
  const cutOff = "* no neighbour has answered for 8 s: you may be cut off";
  await c.waitForLine(cutOff, 15_000);
  const toldAfter = (performance.now() - frozenAt) / 1000;
  await c.waitForLine(linkLine("A"), 20_000 - (performance.now() - frozenAt));
  const linkedAfter = (performance.now() - frozenAt) / 1000;
  c.send("around the frozen peer");
  await a.waitForLine(/<C> around the frozen peer$/, 5000);
  console.log(
    `cut off told after ${toldAfter.toFixed(1)} s; linked to A after ${linkedAfter.toFixed(1)} s`,
  );
  expect(toldAfter).toBeLessThan(12);
  expect(linkedAfter).toBeLessThan(20); // B is not given up before 30 s of silence
  expect(count(c, /no neighbour has answered/)).toBe(1);
}, 60_000);

test("join lines agree: 'connected to' only for our own dials, a newcomer told who is here, JSON joins for existing members", async () => {
  const a = start(["127.0.0.1", "0", "--nick", "alice"]);
  const portA = await listenPortOf(a);
  const b = start(["127.0.0.1", "0", "--peer", `127.0.0.1:${portA}`, "--nick", "bob"]);
  const portB = await listenPortOf(b);
  await b.waitForLine(`* connected to alice (127.0.0.1:${portA})`);
  await a.waitForLine(`* bob connected from 127.0.0.1:${portB}`);
  await a.waitForLine("* bob joined (a neighbour)");

  const c = start(["127.0.0.1", "0", "--peer", `127.0.0.1:${portB}`, "--nick", "carol"]);
  await c.waitForLine(`* connected to bob (127.0.0.1:${portB})`);
  // Alice and bob were here first: carol is told so, once, not as "joined".
  await c.waitForLine(/\* 3 here: carol \(you\), alice, bob$/, 10_000);
  await a.waitForLine("* carol joined");

  const d = start(["127.0.0.1", "0", "--peer", `127.0.0.1:${portB}`, "--nick", "dave", "--json"]);
  const existing = () =>
    d
      .events()
      .filter((e) => e.type === "presence" && e.event === "join" && e.already === true)
      .map((e) => e.nick)
      .sort();
  await waitFor(
    () => existing().length === 3,
    10_000,
    () => `dave's joins for the three already here:\n${d.stdout.join("\n")}`,
  );
  expect(existing()).toEqual(["alice", "bob", "carol"]);
  await a.waitForLine("* dave joined");

  for (const [p, self] of [
    [a, "alice"],
    [b, "bob"],
    [c, "carol"],
  ] as const) {
    const lines = p.stdout;
    for (const other of ["alice", "bob", "carol", "dave"]) {
      if (other === self) continue;
      // One line per link at most (a duplicate pair is one link), nobody left here.
      expect(count(p, linkLine(other))).toBeLessThanOrEqual(1);
      // A neighbour that just linked is not then announced as joining from afar.
      const linked = lines.findIndex((l) => linkLine(other).test(l));
      const far = lines.findIndex((l) =>
        new RegExp(`\\* ${other} joined \\(\\d+ hops away\\)`).test(l),
      );
      if (linked >= 0 && far >= 0) expect(far).toBeLessThan(linked);
    }
    // "connected to" is said only by the dialler: alice dialled nobody.
    if (p === a) expect(lines.some((l) => l.includes("* connected to"))).toBe(false);
  }
}, 60_000);
