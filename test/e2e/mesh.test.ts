import { afterEach, expect, test } from "bun:test";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: CliProcess[] = [];
afterEach(async () => {
  for (const p of running) p.signal("SIGCONT");
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

function start(args: string[]): CliProcess {
  const p = new CliProcess(fromSource, args);
  running.push(p);
  return p;
}

const chat = (nick: string, text: string) =>
  new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] <${nick}> ${text}$`);

/** The README chain as three processes: A ← B ← C (extra options for all three). */
async function readmeChain(extra: string[] = []) {
  const a = start(["localhost", "0", "--nick", "A", ...extra]);
  const portA = await listenPortOf(a);
  const b = start(["localhost", "0", "localhost", String(portA), "--nick", "B", ...extra]);
  const portB = await listenPortOf(b);
  const c = start(["localhost", "0", "localhost", String(portB), "--nick", "C", ...extra]);
  await a.waitForLine("B connected from");
  await c.waitForLine("connected to B");
  return { a, b, c };
}

test("README chain as processes: kill -9 the middle; A and C link within 10 s and C's line reaches A", async () => {
  const { a, b, c } = await readmeChain();
  b.signal("SIGKILL");
  const killedAt = performance.now();
  // The mesh links A and C: whichever dialled, one says "connected to", the other "from".
  await a.waitForLine(/connected to C|C connected from/, 10_000);
  await c.waitForLine(/connected to A|A connected from/, 10_000);
  console.log(
    `A–C link shown ${((performance.now() - killedAt) / 1000).toFixed(2)} s after the kill (it may predate it: D=4)`,
  );
  c.send("straight to A now");
  await a.waitForLine(chat("C", "straight to A now"), 10_000);
  expect(performance.now() - killedAt).toBeLessThan(10_000);
}, 30_000);

test("a neighbour frozen with SIGSTOP is dropped within 40 s, and the network routes around it", async () => {
  // Degree 1: A and C have no link of their own; only B joins them, until B freezes.
  const { a, b, c } = await readmeChain(["--degree", "1"]);
  c.send("before the freeze");
  await a.waitForLine(chat("C", "before the freeze"));
  expect(a.stdout.some((l) => /connected to C|C connected from/.test(l))).toBe(false);

  b.signal("SIGSTOP"); // no FIN, no RST: B simply stops answering
  const frozenAt = performance.now();
  await a.waitForLine("lost link to B (timed out: no frame for 30 s)", 40_000);
  await c.waitForLine("lost link to B (timed out: no frame for 30 s)", 40_000);
  const dropped = (performance.now() - frozenAt) / 1000;
  await a.waitForLine(/connected to C|C connected from/, 40_000 - (performance.now() - frozenAt));
  c.send("around the frozen peer");
  await a.waitForLine(chat("C", "around the frozen peer"), 40_000 - (performance.now() - frozenAt));
  const healed = (performance.now() - frozenAt) / 1000;
  console.log(
    `frozen B dropped after ${dropped.toFixed(1)} s; C reached A around it after ${healed.toFixed(1)} s`,
  );
  expect(healed).toBeLessThan(40);
}, 60_000);

test("presence: joins, /who, nick changes and leaves are shown once, as lines and as JSON events", async () => {
  const a = start(["127.0.0.1", "0", "--nick", "alice"]);
  const port = await listenPortOf(a);
  const watcher = start(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "json", "--json"]);
  await watcher.waitForLine('"type":"ready"');
  const b = start(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "bob"]);
  await a.waitForLine("bob joined (a neighbour)");

  a.send("/who");
  await a.waitForLine(/^\s+bob\s+1\s+\d+s ago$/);
  await a.waitForLine(/^\s+alice \(you\)\s+-\s+now$/);

  b.send("/nick robert");
  await a.waitForLine("bob is now robert");
  await watcher.waitForLine('"event":"nick"');

  b.send("/quit");
  await a.waitForLine("robert left: quit");
  const leave = JSON.parse(await watcher.waitForLine('"event":"leave"'));
  expect(leave).toMatchObject({ type: "presence", event: "leave", nick: "robert", reason: "quit" });
  const join = watcher
    .events()
    .find((e) => e.type === "presence" && e.event === "join" && e.nick === "bob");
  expect(join).toMatchObject({ nodeId: expect.stringMatching(/^[0-9a-f]{64}$/) });
  // Its link closing after the LEAVE is not announced a second time: once /peers shows
  // the link gone, its peer-down has been handled, and still one "left" line.
  await waitFor(
    async () => {
      a.send("/peers");
      await Bun.sleep(50);
      return a.stdout.some((l) => l.includes("1 neighbour:"));
    },
    5000,
    "robert's link gone from /peers",
  );
  expect(a.stdout.filter((l) => l.includes("left:"))).toHaveLength(1);
  await a.waitForLine(/NICK\s+ADDRESS\s+DIRECTION\s+LINK\s+SINCE \(AGE\)\s+RTT/);
}, 30_000);
