/**
 * History end to end: CLI peers from source, each with its own identity file and data
 * directory, killed, restarted and joined late, as a user would run them.
 */

import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { historyFileName } from "../../src/history/store-file.ts";
import { AS_ROOT, asNobody, readableBundle } from "../helpers/as-nobody.ts";
import { CliProcess, fromSource, type Launcher, listenPortOf } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: CliProcess[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `peerchat-history-${name}-`));
  tempDirs.push(dir);
  return dir;
}

/** One peer's files: kept across its restarts, removed after the test. */
interface PeerHome {
  readonly identity: string;
  readonly dataDir: string;
}

async function peerHome(name: string): Promise<PeerHome> {
  const dir = await tempDir(name);
  return { identity: join(dir, "identity"), dataDir: join(dir, "data") };
}

function start(
  args: string[],
  options: { launcher?: Launcher; env?: Record<string, string> } = {},
): CliProcess {
  const p = new CliProcess(options.launcher ?? fromSource, args, { env: options.env ?? {} });
  running.push(p);
  return p;
}

/** A chat peer on a free port of 127.0.0.1, with `home`'s identity and data directory. */
function startPeer(home: PeerHome, args: string[]): CliProcess {
  return start([
    "127.0.0.1",
    "0",
    "--identity",
    home.identity,
    "--data-dir",
    home.dataDir,
    ...args,
  ]);
}

/** A `message` event of `--json` output. */
interface MessageEvent {
  readonly type: "message";
  readonly id: string;
  readonly origin: string;
  readonly seq: number;
  readonly nick: string;
  readonly text: string;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly own: boolean;
  readonly late: boolean;
  readonly backlog?: boolean;
}

/** A message as `/history` lists it in JSON. */
type HistoryEntry = Omit<MessageEvent, "type" | "late" | "backlog">;

const messagesOf = (p: CliProcess) =>
  p.events().filter((e) => e.type === "message") as unknown as MessageEvent[];
const nodeIdOf = (p: CliProcess) => p.events().find((e) => e.type === "ready")?.nodeId as string;
const hasText = (p: CliProcess, text: string) => messagesOf(p).some((m) => m.text === text);
const peerUp = (nick: string) => new RegExp(`"type":"peer-up".*"nick":"${nick}"`);

/** Message ids that appear in more than one `message` event: none, if each came once. */
function repeatedIds(p: CliProcess): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  for (const m of messagesOf(p)) {
    if (seen.has(m.id)) repeated.push(`${m.id} (${m.text})`);
    seen.add(m.id);
  }
  return repeated;
}

/** `HH:MM:SS` local time, as a chat line is stamped. */
function hhmmss(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** `HH:MM–HH:MM`, or `HH:MM` when both ends fall in one minute: a block's time span. */
function span(from: number, to: number): string {
  const [a, b] = [hhmmss(from).slice(0, 5), hhmmss(to).slice(0, 5)];
  return a === b ? a : `${a}–${b}`;
}

/** The human line of a message shown from history: stamped with the time it was sent. */
const storedLine = (m: { nick: string; text: string; sentAt: number }) =>
  `[${hhmmss(m.sentAt)}] <${m.nick}> ${m.text}`;

const chatLine = (nick: string, text: string) =>
  new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] <${nick}> ${text}$`);

/**
 * `shown` are the `n` latest of `all` (sorted by sentAt), oldest first, each once. Which
 * of two sent in the same millisecond comes first is not checked here (see the test of
 * lines sent within one millisecond).
 */
function expectLatest(
  shown: readonly { id: string; sentAt: number }[],
  all: readonly MessageEvent[],
  n: number,
): void {
  const latest = all.slice(-n);
  expect(shown.map((m) => m.sentAt)).toEqual(latest.map((m) => m.sentAt));
  expect(new Set(shown.map((m) => m.id)).size).toBe(n);
  const ids = new Set(all.map((m) => m.id));
  expect(shown.filter((m) => !ids.has(m.id))).toEqual([]);
}

/** The message a human chat line shows, found by its (unique) text. */
const lineMessage = (byText: ReadonlyMap<string, MessageEvent>) => (line: string) => {
  const text = line.slice(line.indexOf("> ") + 2);
  const m = byText.get(text);
  if (!m) throw new Error(`not a message that was sent: ${line}`);
  return m;
};

/**
 * The `n` lines after the line `header` (a block is printed at once, but may reach us in
 * more than one read).
 */
async function linesAfter(p: CliProcess, header: string, n: number): Promise<string[]> {
  const at = p.stdout.indexOf(header);
  expect(at).toBeGreaterThanOrEqual(0);
  await waitFor(
    () => p.stdout.length >= at + 1 + n,
    5000,
    () => `${n} lines after ${header}\n${p.stdout.join("\n")}`,
  );
  return p.stdout.slice(at + 1, at + 1 + n);
}

/** No stack trace and no "unexpected error": a sentence for a person. */
function expectCleanFailure(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain("unexpected error");
  expect(stderr).not.toMatch(/\w+Error:/);
}

test("restart: a peer killed with SIGKILL gets the 50 messages it missed, once each, late; its seq goes on", async () => {
  const [homeA, homeB, homeC] = (await Promise.all(["a", "b", "c"].map(peerHome))) as [
    PeerHome,
    PeerHome,
    PeerHome,
  ];
  // A pure chain A – B – C (--degree 0): with B down, C is cut off from A as well.
  const a = startPeer(homeA, ["--json", "--nick", "alice", "--degree", "0"]);
  const portA = await listenPortOf(a);
  const bArgs = ["--json", "--nick", "bob", "--degree", "0", "--peer", `127.0.0.1:${portA}`];
  const b = startPeer(homeB, bArgs);
  const portB = await listenPortOf(b);
  const c = startPeer(homeC, ["--nick", "carol", "--degree", "0", "--peer", `127.0.0.1:${portB}`]);
  const portC = await listenPortOf(c);
  await a.waitForLine(peerUp("bob"));
  await c.waitForLine("connected to bob");

  for (const i of [1, 2, 3]) b.send(`bob before ${i}`);
  a.send("alice before");
  await waitFor(() => hasText(a, "bob before 3") && hasText(b, "alice before"));
  await c.waitForLine(chatLine("alice", "alice before"));
  const beforeKill = messagesOf(b);
  const seqsBefore = beforeKill.filter((m) => m.own).map((m) => m.seq);
  expect(seqsBefore).toEqual([1, 2, 3]);

  b.signal("SIGKILL");
  await b.exited;
  await a.waitForLine(/"type":"peer-down".*"nick":"bob"/);

  const away = Array.from({ length: 50 }, (_, i) => `while bob was away ${i + 1}`);
  for (const text of away) a.send(text);
  await waitFor(
    () => messagesOf(a).filter((m) => m.own && m.text.startsWith("while bob")).length === 50,
    10_000,
    () => `alice's 50 messages\n${a.stdout.join("\n")}`,
  );
  const sentByA = new Map(
    messagesOf(a)
      .filter((m) => m.own && m.text.startsWith("while bob"))
      .map((m) => [m.id, m]),
  );

  // The same identity and data directory; it dials A and C again (on C's port: C has kept
  // dialling B's old one).
  const b2 = startPeer(homeB, [...bArgs, "--peer", `127.0.0.1:${portC}`, "--backlog", "20"]);
  await listenPortOf(b2);
  expect(nodeIdOf(b2)).toBe(nodeIdOf(b));
  expect(b2.stderr.join("\n")).not.toContain("in memory only");
  await waitFor(
    () => messagesOf(b2).filter((m) => m.late).length >= 50,
    15_000,
    () => `50 late messages at the restarted bob\n${b2.stdout.join("\n")}\n${b2.stderr.join("\n")}`,
  );

  b2.send("bob is back");
  const back = await waitFor(() => messagesOf(a).find((m) => m.text === "bob is back"));
  // A message sent after the last late one, on the same links: any stray copy of a late
  // message would have arrived before it.
  a.send("sentinel from alice");
  await waitFor(() => hasText(b2, "sentinel from alice"));
  await c.waitForLine(chatLine("alice", "sentinel from alice"), 15_000);

  // B: what it stored before the kill is its backlog; the 50 are late, once each, with
  // A's own id, nick and send time.
  const after = messagesOf(b2);
  const backlog = after.filter((m) => m.backlog === true);
  expect(backlog.map((m) => m.id).sort()).toEqual(beforeKill.map((m) => m.id).sort());
  for (const m of backlog) expect(m.late).toBe(false);
  const late = after.filter((m) => m.late);
  expect(late).toHaveLength(50);
  expect(late.map((m) => m.text).sort()).toEqual([...away].sort());
  for (const m of late) {
    const original = sentByA.get(m.id);
    expect(original).toBeDefined();
    expect(m).toMatchObject({
      nick: "alice",
      origin: nodeIdOf(a),
      own: false,
      sentAt: original?.sentAt as number,
      seq: original?.seq as number,
    });
  }
  expect(after.filter((m) => m.text.startsWith("while bob") && !m.late)).toEqual([]);

  // No seq reused: B's first message after the restart goes on from the last one.
  const ownAfter = after.filter((m) => m.own && m.backlog !== true);
  expect(ownAfter.map((m) => [m.text, m.seq])).toEqual([["bob is back", 4]]);
  expect(back.seq).toBe(4);
  expect(back.seq).toBeGreaterThan(Math.max(...seqsBefore));
  expect(back.origin).toBe(nodeIdOf(b));

  // Exactly once, across backlog, late and live events.
  expect(repeatedIds(b2)).toEqual([]);
  expect(repeatedIds(a)).toEqual([]);
  expect(messagesOf(a).filter((m) => m.late)).toEqual([]);

  // C, cut off while B was down, is passed the 50 by B: one late block, each line once,
  // stamped with its send time.
  const header = await c.waitForLine(/^— \d+ messages? from while you were away/);
  const sentAts = [...sentByA.values()].map((m) => m.sentAt);
  expect(header).toBe(
    `— 50 messages from while you were away, ${span(Math.min(...sentAts), Math.max(...sentAts))} —`,
  );
  const block = await linesAfter(c, header, 50);
  expect([...block].sort()).toEqual([...sentByA.values()].map(storedLine).sort());
  const stamps = block.map((l) => l.slice(1, 9));
  expect(stamps).toEqual([...stamps].sort());
  // All 50 are shown: no "and K earlier: /history N" line.
  expect(c.stdout.some((l) => l.includes("earlier: /history"))).toBe(false);
  for (const text of [...away, "bob is back", "sentinel from alice"])
    expect(c.stdout.filter((l) => l.endsWith(`> ${text}`))).toHaveLength(1);
  expect(c.stdout.filter((l) => l.includes("from while you were away"))).toHaveLength(1);
}, 40_000);

test("late joiner: a new peer shows the room's messages with their nicks and original send times", async () => {
  const [homeA, homeB, homeC, homeD] = (await Promise.all(["a", "b", "c", "d"].map(peerHome))) as [
    PeerHome,
    PeerHome,
    PeerHome,
    PeerHome,
  ];
  const a = startPeer(homeA, ["--json", "--nick", "alice", "--degree", "0"]);
  const portA = await listenPortOf(a);
  const b = startPeer(homeB, [
    "--json",
    "--nick",
    "bob",
    "--degree",
    "0",
    "--peer",
    `127.0.0.1:${portA}`,
  ]);
  const portB = await listenPortOf(b);
  await a.waitForLine(peerUp("bob"));

  const talk = [
    [a, b, "hello bob"],
    [b, a, "hi alice"],
    [a, b, "how was the trip?"],
    [b, a, "long, but fine"],
  ] as const;
  for (const [from, to, text] of talk) {
    from.send(text);
    await waitFor(() => hasText(to, text));
  }
  const sent = [...messagesOf(a), ...messagesOf(b)]
    .filter((m) => m.own)
    .sort((x, y) => x.sentAt - y.sentAt);
  expect(sent.map((m) => m.text)).toEqual(talk.map(([, , text]) => text));
  // A stamp of arrival time must not pass for a stamp of send time: the newcomers join in
  // a later second than any of these was sent.
  const lastSentAt = sent.at(-1)?.sentAt as number;
  await waitFor(
    () => Math.floor(Date.now() / 1000) > Math.floor(lastSentAt / 1000),
    2000,
    "the next second",
  );

  const c = startPeer(homeC, ["--nick", "carol", "--degree", "0", "--peer", `127.0.0.1:${portB}`]);
  const d = startPeer(homeD, [
    "--json",
    "--nick",
    "dave",
    "--degree",
    "0",
    "--peer",
    `127.0.0.1:${portA}`,
  ]);

  // Human: one block, oldest first, each line stamped with the sender's own sentAt.
  const header = await c.waitForLine(/^— \d+ messages? from while you were away/, 10_000);
  const first = sent[0] as MessageEvent;
  const last = sent.at(-1) as MessageEvent;
  expect(header).toBe(
    `— 4 messages from while you were away, ${span(first.sentAt, last.sentAt)} —`,
  );
  expect(await linesAfter(c, header, 4)).toEqual(sent.map(storedLine));

  // JSON: late, with the sender's id, nick, seq and sentAt.
  await waitFor(
    () => messagesOf(d).filter((m) => m.late).length >= 4,
    10_000,
    () => `4 late messages at dave\n${d.stdout.join("\n")}`,
  );
  const lateAtD = messagesOf(d).filter((m) => m.late);
  expect(lateAtD.map((m) => m.id).sort()).toEqual(sent.map((m) => m.id).sort());
  for (const m of lateAtD) {
    const original = sent.find((s) => s.id === m.id) as MessageEvent;
    expect(m).toMatchObject({
      nick: original.nick,
      origin: original.origin,
      seq: original.seq,
      text: original.text,
      sentAt: original.sentAt,
      own: false,
      late: true,
    });
    expect(m.receivedAt).toBeGreaterThan(lastSentAt);
  }

  // Then live, once: nothing shown twice, no late copy of a live message.
  a.send("welcome, carol and dave");
  await waitFor(() => hasText(d, "welcome, carol and dave"));
  await c.waitForLine(chatLine("alice", "welcome, carol and dave"));
  expect(messagesOf(d).find((m) => m.text === "welcome, carol and dave")?.late).toBe(false);
  for (const p of [a, b, d]) expect(repeatedIds(p)).toEqual([]);
  for (const text of [...talk.map(([, , t]) => t), "welcome, carol and dave"])
    expect(c.stdout.filter((l) => l.endsWith(`> ${text}`))).toHaveLength(1);
  expect(c.stdout.filter((l) => l.includes("from while you were away"))).toHaveLength(1);
}, 30_000);

test("the whole network stopped: a peer started alone shows the backlog and /history 100", async () => {
  const [homeA, homeB] = (await Promise.all(["a", "b"].map(peerHome))) as [PeerHome, PeerHome];
  const a = startPeer(homeA, ["--json", "--nick", "alice", "--degree", "0"]);
  const portA = await listenPortOf(a);
  const b = startPeer(homeB, [
    "--json",
    "--nick",
    "bob",
    "--degree",
    "0",
    "--peer",
    `127.0.0.1:${portA}`,
  ]);
  await a.waitForLine(peerUp("bob"));
  // 130 messages, from both: more than the backlog and more than /history 100 shows. One
  // at a time, so that their order is the order they were sent in (lines sent within one
  // millisecond are the next test's business).
  for (let i = 1; i <= 130; i++) {
    const [from, text] = i % 3 === 0 ? [b, `bob says ${i}`] : [a, `alice says ${i}`];
    from.send(text);
    await waitFor(() => hasText(from, text));
  }
  for (const p of [a, b])
    await waitFor(
      () => messagesOf(p).length === 130,
      10_000,
      () => `130 messages\n${p.stdout.slice(-5).join("\n")}\n${p.stderr.join("\n")}`,
    );
  const all = messagesOf(a).sort((x, y) => x.sentAt - y.sentAt);
  const byText = new Map(all.map((m) => [m.text, m]));

  for (const p of [a, b]) p.send("/quit");
  expect(await a.exited).toBe(0);
  expect(await b.exited).toBe(0);

  // --json shows no backlog unless asked: the answer to /history 1 is the first thing.
  const quiet = startPeer(homeA, ["--json", "--nick", "alice"]);
  await listenPortOf(quiet);
  quiet.send("/history 1");
  await quiet.waitForLine('"type":"history"');
  expect(quiet.events().map((e) => e.type)).toEqual(["ready", "history"]);
  quiet.send("/quit");
  expect(await quiet.exited).toBe(0);

  // JSON: 20 backlog events, then one history event of 100.
  const a2 = startPeer(homeA, ["--json", "--nick", "alice", "--backlog", "20"]);
  await listenPortOf(a2);
  await waitFor(
    () => messagesOf(a2).length >= 20,
    5000,
    () => a2.stdout.join("\n"),
  );
  const backlog = messagesOf(a2);
  expectLatest(backlog, all, 20);
  for (const m of backlog) {
    const original = byText.get(m.text) as MessageEvent;
    expect(m).toMatchObject({
      id: original.id,
      backlog: true,
      late: false,
      nick: original.nick,
      seq: original.seq,
      sentAt: original.sentAt,
      own: original.nick === "alice",
    });
  }
  a2.send("/history 100");
  const historyLine = await a2.waitForLine('"type":"history"');
  const history = (JSON.parse(historyLine) as { messages: HistoryEntry[] }).messages;
  expectLatest(history, all, 100);
  for (const m of history) {
    const original = byText.get(m.text) as MessageEvent;
    expect(m).toMatchObject({
      id: original.id,
      origin: original.origin,
      nick: original.nick,
      seq: original.seq,
      sentAt: original.sentAt,
    });
  }

  // Human: the backlog under "— earlier —", then "/history 100" as a header and 100 lines.
  const b2 = startPeer(homeB, ["--nick", "bob", "--backlog", "20"]);
  const earlier = await b2.waitForLine(/^— earlier —$/);
  const shownBacklog = await linesAfter(b2, earlier, 20);
  expectLatest(shownBacklog.map(lineMessage(byText)), all, 20);
  for (const line of shownBacklog) expect(line).toBe(storedLine(lineMessage(byText)(line)));
  b2.send("/history 100");
  const header = await b2.waitForLine(/^— history: /);
  const last100 = all.slice(-100);
  expect(header).toBe(
    `— history: 100 messages, ${span((last100[0] as MessageEvent).sentAt, (last100.at(-1) as MessageEvent).sentAt)} —`,
  );
  const shownHistory = await linesAfter(b2, header, 100);
  expectLatest(shownHistory.map(lineMessage(byText)), all, 100);
  for (const line of shownHistory) expect(line).toBe(storedLine(lineMessage(byText)(line)));
}, 40_000);

test("lines one author sent within one millisecond keep their order in the backlog and /history", async () => {
  // A pasted paragraph, or a file piped in: many lines, one millisecond. The store orders
  // by sentAt and then by message id, which is random: their seq says their order.
  const home = await peerHome("paste");
  const a = startPeer(home, ["--json", "--nick", "alice"]);
  await listenPortOf(a);
  const lines = Array.from({ length: 30 }, (_, i) => `pasted line ${i + 1}`);
  a.send(lines.join("\n"));
  await waitFor(
    () => messagesOf(a).length === 30,
    5000,
    () => a.stdout.join("\n"),
  );
  const sent = messagesOf(a);
  expect(sent.map((m) => m.text)).toEqual(lines);
  // The case in point: some of them share a millisecond.
  const sentAts = sent.map((m) => m.sentAt);
  expect(new Set(sentAts).size).toBeLessThan(sentAts.length);
  a.send("/quit");
  expect(await a.exited).toBe(0);

  const again = startPeer(home, ["--json", "--nick", "alice", "--backlog", "30"]);
  await waitFor(
    () => messagesOf(again).length >= 30,
    5000,
    () => again.stdout.join("\n"),
  );
  again.send("/history 30");
  const history = JSON.parse(await again.waitForLine('"type":"history"')) as {
    messages: HistoryEntry[];
  };
  expect({
    backlog: messagesOf(again).map((m) => m.text),
    history: history.messages.map((m) => m.text),
  }).toEqual({ backlog: lines, history: lines });
}, 20_000);

test("faults: a corrupt history file and an unwritable data directory exit 1 and say what to do; --data-dir with --ephemeral exits 2", async () => {
  // A corrupt file: found where the peer put it, then overwritten.
  const home = await peerHome("corrupt");
  const room = "history faults";
  const first = startPeer(home, ["--json", "--room", room]);
  await listenPortOf(first);
  const nodeId = nodeIdOf(first);
  // Not a signal: one sent right after `ready` may beat the handler (see the last test).
  first.send("/quit");
  expect(await first.exited).toBe(0);
  const name = historyFileName(room, Buffer.from(nodeId, "hex"));
  expect(readdirSync(home.dataDir).filter((f) => f.endsWith(".db"))).toEqual([name]);
  const file = join(home.dataDir, name);
  const garbage = "this is not a database, it is a grocery list\n".repeat(200);
  await writeFile(file, garbage);
  const corrupt = startPeer(home, ["--json", "--room", room]);
  expect(await corrupt.exited).toBe(1);
  const corruptErr = corrupt.stderr.join("\n");
  expect(corruptErr).toContain(file);
  expect(corruptErr).toContain("move it away");
  expectCleanFailure(corruptErr);
  expect(corrupt.stdout).toEqual([]);
  // The user's file is left as it was, and no lock is left behind.
  expect(readFileSync(file, "utf8")).toBe(garbage);
  expect(existsSync(`${file}.lock`)).toBe(false);

  // A database, but of a schema this peerchat does not know: the same, not overwritten.
  await rm(file);
  const future = new Database(file);
  future.exec("PRAGMA user_version = 7");
  future.close();
  const before = readFileSync(file);
  const newer = startPeer(home, ["--json", "--room", room]);
  expect(await newer.exited).toBe(1);
  const newerErr = newer.stderr.join("\n");
  expect(newerErr).toContain(file);
  expect(newerErr).toContain("move it away");
  expectCleanFailure(newerErr);
  expect(readFileSync(file).equals(before)).toBe(true);

  // An unwritable data directory. Root writes through mode bits: then the peer runs as
  // nobody, with a home and identity of its own and a data directory it cannot write.
  const asRoot = AS_ROOT;
  // Run from a bundle anyone can read: nobody may not be able to read the checkout.
  const bin = await readableBundle(join(import.meta.dir, "..", "..", "src", "bin.ts"));
  const dir = await tempDir("unwritable");
  chmodSync(dir, 0o755);
  const userHome = join(dir, "home");
  mkdirSync(userHome, { mode: 0o700 });
  if (asRoot) chownSync(userHome, 65534, 65534);
  const locked = join(dir, "data");
  mkdirSync(locked, { mode: 0o755 });
  if (!asRoot) chmodSync(locked, 0o555);
  const launcher: Launcher = (args) => asNobody([process.execPath, bin, ...args]);
  const env = {
    HOME: userHome,
    XDG_CONFIG_HOME: join(userHome, "config"),
    XDG_DATA_HOME: join(userHome, "data"),
    XDG_STATE_HOME: join(userHome, "state"),
    XDG_CACHE_HOME: join(userHome, "cache"),
  };
  // The directory exists but cannot be written; and one that cannot be created in it.
  for (const dataDir of [locked, join(locked, "history")]) {
    const peer = start(
      ["127.0.0.1", "0", "--identity", join(userHome, "identity"), "--data-dir", dataDir, "--json"],
      { launcher, env },
    );
    expect(await peer.exited).toBe(1);
    const err = peer.stderr.join("\n");
    expect(err).toContain(dataDir);
    expect(err).toContain("--ephemeral");
    expectCleanFailure(err);
    expect(peer.stdout).toEqual([]);
  }
  expect(readdirSync(locked)).toEqual([]);

  // Both --data-dir and --ephemeral: a usage error, and nothing created.
  const both = join(dir, "never-made");
  const usage = start(["127.0.0.1", "0", "--data-dir", both, "--ephemeral"]);
  expect(await usage.exited).toBe(2);
  const usageErr = usage.stderr.join("\n");
  expect(usageErr).toContain("--data-dir");
  expect(usageErr).toContain("--ephemeral");
  expectCleanFailure(usageErr);
  expect(existsSync(both)).toBe(false);
}, 30_000);

test("a peer on a temporary identity keeps its history in memory only", async () => {
  const home = await peerHome("shared");
  const owner = startPeer(home, ["--json", "--nick", "owner"]);
  const port = await listenPortOf(owner);
  const otherData = join(await tempDir("temporary"), "data");
  const guest = start([
    "127.0.0.1",
    "0",
    "--identity",
    home.identity,
    "--data-dir",
    otherData,
    "--json",
    "--nick",
    "guest",
    "--peer",
    `127.0.0.1:${port}`,
  ]);
  await guest.waitForLog("keeps its history in memory only");
  await guest.waitForLine(peerUp("owner"));
  expect(nodeIdOf(guest)).not.toBe(nodeIdOf(owner));
  guest.send("from a temporary identity");
  await waitFor(() => hasText(owner, "from a temporary identity"));
  // Kept in memory: /history has it; no file was made for an identity that dies with it.
  guest.send("/history");
  const line = await guest.waitForLine('"type":"history"');
  expect((JSON.parse(line) as { messages: HistoryEntry[] }).messages.map((m) => m.text)).toEqual([
    "from a temporary identity",
  ]);
  expect(existsSync(otherData)).toBe(false);
  expect(readdirSync(home.dataDir).filter((f) => f.endsWith(".db"))).toHaveLength(1);
}, 20_000);

test("SIGTERM the moment `ready` is out is a graceful exit (0), not death by the signal", async () => {
  // A supervisor (or a test) may stop a peer as soon as it says it is ready. The handler
  // must be in place by then: otherwise the default action kills it (143), with no BYE,
  // and its history and identity locks left behind. Twenty at once, to widen the window.
  const homes = await Promise.all(Array.from({ length: 20 }, (_, i) => peerHome(`term${i}`)));
  const outcomes = await Promise.all(
    homes.map(async (home) => {
      const p = startPeer(home, ["--json"]);
      p.onStdoutLine((line) => {
        if (line.includes('"type":"ready"')) p.signal("SIGTERM");
      });
      const code = await p.exited;
      const locks = existsSync(home.dataDir)
        ? readdirSync(home.dataDir).filter((f) => f.endsWith(".lock"))
        : [];
      return { code, locks };
    }),
  );
  const bad = outcomes.filter((o) => o.code !== 0 || o.locks.length > 0);
  expect(`${bad.length} of 20 did not leave gracefully: ${JSON.stringify(bad)}`).toBe(
    "0 of 20 did not leave gracefully: []",
  );
}, 20_000);
