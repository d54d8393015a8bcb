import { afterEach, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { hermeticDirs, testEnv } from "../helpers/hermetic-env.ts";
import { Screen } from "../helpers/screen.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** peerchat on a pseudo-terminal, as a person runs it. */
class TtyPeer {
  readonly screen: Screen;
  readonly proc: Subprocess;
  raw = "";

  constructor(
    args: string[],
    options: { cols?: number; rows?: number; env?: Record<string, string> } = {},
  ) {
    const cols = options.cols ?? 100;
    const rows = options.rows ?? 30;
    this.screen = new Screen(cols, rows);
    this.proc = Bun.spawn(fromSource(args), {
      terminal: {
        cols,
        rows,
        data: (_t, bytes) => {
          const text = new TextDecoder().decode(bytes);
          this.raw += text;
          this.screen.write(text);
        },
      },
      env: testEnv({ TERM: "xterm-256color", ...options.env }),
    });
  }

  type(keys: string): void {
    this.proc.terminal?.write(keys);
  }

  /** The window is resized, as by dragging its corner: the screen re-wraps, the program hears SIGWINCH. */
  resize(cols: number, rows: number): void {
    this.screen.resize(cols, rows);
    this.proc.terminal?.resize(cols, rows);
  }

  async waitForScreen(predicate: (rows: string[]) => boolean, what: string): Promise<void> {
    await waitFor(
      () => predicate(this.screen.text()),
      10_000,
      () =>
        `${what}; screen:\n${this.screen.text().join("\n")}\nraw: ${JSON.stringify(this.raw.slice(-3000))}`,
    );
  }

  port(): number {
    return Number(/listening on 127\.0\.0\.1:(\d+)/.exec(this.raw)?.[1]);
  }
}

const others: CliProcess[] = [];
let tty: TtyPeer | undefined;
const ttys: TtyPeer[] = [];
afterEach(async () => {
  tty?.proc.kill("SIGKILL");
  tty = undefined;
  for (const t of ttys.splice(0)) t.proc.kill("SIGKILL");
  await Promise.all(others.splice(0).map((p) => p.stop()));
});

test("interactive: a half-typed line survives incoming messages; own lines show once, formatted", async () => {
  tty = new TtyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const t = tty;
  await t.waitForScreen(
    (rows) =>
      /^\[lobby · \d+ here\] >$/.test(rows.at(-1) ?? "") &&
      rows.some((r) => r.includes("listening on")),
    "prompt and listening line",
  );
  const bob = new CliProcess(fromSource, [
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(t.port()),
    "--nick",
    "bob",
  ]);
  others.push(bob);
  await t.waitForScreen(
    (rows) => rows.some((r) => r.includes("bob connected from 127.0.0.1:")),
    "peer-up line",
  );

  t.type("half a thou");
  await t.waitForScreen((rows) => rows.at(-1) === "[lobby · 2 here] > half a thou", "typed text");
  bob.send("an interruption");
  await t.waitForScreen(
    (rows) => rows.some((r) => /<bob> an interruption$/.test(r)),
    "incoming line",
  );
  // The half-typed line is redrawn below the arrival, intact.
  await t.waitForScreen(
    (rows) => rows.at(-1) === "[lobby · 2 here] > half a thou",
    "prompt redrawn",
  );

  t.type("ght\r");
  await t.waitForScreen(
    (rows) => rows.some((r) => /^\[\d\d:\d\d:\d\d\] <me> half a thought$/.test(r)),
    "own line",
  );
  await bob.waitForLine(/<me> half a thought$/);
  const rows = t.screen.text();
  expect(rows.filter((r) => r.includes("half a thought"))).toHaveLength(1);
  expect(rows.at(-1)).toBe("[lobby · 2 here] >");

  t.type("/nosuch\r");
  await t.waitForScreen(
    (rows) => rows.some((r) => r.includes("unknown command /nosuch; type /help")),
    "hint",
  );
  t.type("/peers\r");
  await t.waitForScreen(
    (rows) =>
      rows.some((r) =>
        /bob\s+127\.0\.0\.1:\d+\s+inbound\s+direct\s+\d\d:\d\d:\d\d \(\d+s\)\s+(-|\d+ ms)$/.test(r),
      ),
    "/peers table",
  );

  // Ctrl-C: BYE to every neighbour, exit 0 within a second.
  const started = performance.now();
  t.type("\u0003");
  expect(await t.proc.exited).toBe(0);
  expect(performance.now() - started).toBeLessThan(1000);
  await bob.waitForLine("me left: quit");
}, 30_000);

test("interactive: Ctrl-D leaves gracefully", async () => {
  tty = new TtyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const t = tty;
  await t.waitForScreen(
    (rows) =>
      /^\[lobby · \d+ here\] >$/.test(rows.at(-1) ?? "") &&
      rows.some((r) => r.includes("listening on")),
    "prompt and listening line",
  );
  const bob = new CliProcess(fromSource, [
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(t.port()),
    "--nick",
    "bob",
  ]);
  others.push(bob);
  await bob.waitForLine("connected to me");
  t.type("\u0004");
  expect(await t.proc.exited).toBe(0);
  await bob.waitForLine("me left: quit");
}, 30_000);

test("--json typed at a terminal: Ctrl-D leaves, as at the prompt", async () => {
  tty = new TtyPeer(["127.0.0.1", "0", "--json", "--ephemeral"]);
  const t = tty;
  await t.waitForScreen((rows) => rows.some((r) => r.includes('"type":"ready"')), "ready event");
  t.type("\x04");
  const code = await Promise.race([t.proc.exited, Bun.sleep(10_000).then(() => "still running")]);
  expect(code).toBe(0);
});

/** Starts a peer at a terminal and waits for its prompt. */
async function ttyPeer(
  args: string[],
  options: { cols?: number; rows?: number; env?: Record<string, string> } = {},
): Promise<TtyPeer> {
  const t = new TtyPeer(args, options);
  ttys.push(t);
  await t.waitForScreen(
    (rows) => /\] >/.test(rows.at(-1) ?? "") && rows.some((r) => r.includes("listening on")),
    "prompt and listening line",
  );
  return t;
}

/** A peer on pipes that joins `t`, waited for until `t` shows it connected. */
async function pipedPeer(t: TtyPeer, nick: string, extra: string[] = []): Promise<CliProcess> {
  const peer = new CliProcess(fromSource, [
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(t.port()),
    "--nick",
    nick,
    ...extra,
  ]);
  others.push(peer);
  await t.waitForScreen(
    (rows) => rows.some((r) => r.includes(`${nick} connected from 127.0.0.1:`)),
    "link",
  );
  return peer;
}

test("resize: shrunk to 50 columns with a line half-typed, then back to 120, the screen holds every message whole and the line once", async () => {
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"], { cols: 120 });
  const bob = await pipedPeer(t, "bob");
  const typed = "the shrink with a typed line pending, seventy characters or so, indeed";
  t.type(typed);
  await t.waitForScreen((rows) => rows.at(-1)?.endsWith(typed) === true, "typed line");

  t.resize(50, 30);
  const incoming = "incoming right after the shrink, a message longer than fifty columns";
  bob.send(incoming);
  // At 50 columns the message wraps; joined again, it is whole.
  const squeezed = (text: string) => text.replaceAll(" ", "");
  await t.waitForScreen(
    (rows) => squeezed(rows.join("")).includes(squeezed(`<bob> ${incoming}`)),
    "message at 50",
  );
  t.resize(120, 30);
  bob.send("and one after growing back");
  await t.waitForScreen(
    (rows) => rows.some((r) => r.endsWith("<bob> and one after growing back")),
    "message at 120",
  );
  await t.waitForScreen((rows) => rows.at(-1)?.endsWith(`] > ${typed}`) === true, "input intact");
  const rows = t.screen.text();
  expect(rows.filter((r) => r.endsWith(`<bob> ${incoming}`))).toHaveLength(1);
  // No stale copy of the input anywhere but on its own row.
  expect(rows.filter((r) => r.includes("seventy characters"))).toHaveLength(1);
  expect(
    rows.filter((r) => r.includes("connected to bob") || r.includes("bob connected")),
  ).toHaveLength(1);

  // Sent after all that, the line is whole too.
  t.type("\r");
  await bob.waitForLine(`<me> ${typed}`);
}, 30_000);

test("pasted text is messages, never commands: a pasted /nick is sent as text; the last, unfinished line stays to be edited", async () => {
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const bob = await pipedPeer(t, "bob");
  t.type("\u001b[200~first pasted line\n/nick pastedcmd\nunfinished\u001b[201~");
  await bob.waitForLine("<me> first pasted line");
  await bob.waitForLine("<me> /nick pastedcmd");
  await t.waitForScreen(
    (rows) => rows.at(-1)?.endsWith("] > unfinished") === true,
    "last line kept",
  );
  t.type(" and finished\r");
  await bob.waitForLine("<me> unfinished and finished");
  // Typed, not pasted, the command works.
  t.type("/nick typed\r");
  await bob.waitForLine("me is now typed");
  expect(bob.stdout.some((l) => l.includes("pastedcmd") && l.includes("is now"))).toBe(false);
}, 30_000);

test("Tab completes commands and nicks; Up recalls lines typed, also in the next run; /nick is remembered, and --nick wins over it", async () => {
  // One user's state directory, kept from one run to the next.
  const env = { XDG_STATE_HOME: mkdtempSync(join(hermeticDirs().root, "state-")) };
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"], { env });
  const bob = await pipedPeer(t, "bobby");
  await t.waitForScreen((rows) => rows.some((r) => r.includes("bobby joined")), "presence");
  t.type("/wh\t");
  await t.waitForScreen((rows) => rows.at(-1)?.endsWith("] > /who") === true, "command completed");
  t.type("\u0015bo\t");
  await t.waitForScreen((rows) => rows.at(-1)?.endsWith("] > bobby:") === true, "nick completed");
  t.type("hello there\r");
  await bob.waitForLine("<me> bobby: hello there");
  t.type("/nick remembered\r");
  await bob.waitForLine("me is now remembered");
  t.type("/quit\r");
  expect(await t.proc.exited).toBe(0);

  // The same user starts again, without --nick: the nick and the lines typed are back.
  const again = await ttyPeer(["127.0.0.1", "0"], { env });
  expect(again.screen.text().some((r) => r.includes("as remembered;"))).toBe(true);
  again.type("\u001b[A");
  await again.waitForScreen((rows) => rows.at(-1)?.endsWith("] > /quit") === true, "Up: /quit");
  again.type("\u001b[A\u001b[A");
  await again.waitForScreen(
    (rows) => rows.at(-1)?.endsWith("] > bobby: hello there") === true,
    "Up Up: the line before",
  );
  again.type("\u0003");
  expect(await again.proc.exited).toBe(0);

  // A --nick given wins over the remembered one.
  const flagged = await ttyPeer(["127.0.0.1", "0", "--nick", "flagged"], { env });
  expect(flagged.screen.text().some((r) => r.includes("as flagged;"))).toBe(true);
}, 30_000);

test("/me, the prompt with the room and head count, a colour per identity (none with NO_COLOR), a mention in bold with the bell", async () => {
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const bob = await pipedPeer(t, "bob");
  await t.waitForScreen((rows) => rows.at(-1) === "[lobby · 2 here] >", "prompt: 2 here");
  t.type("/me waves\r");
  await bob.waitForLine(/\* me waves$/);
  await t.waitForScreen((rows) => rows.some((r) => /\] \* me waves$/.test(r)), "own action");

  const bells = t.screen.bells;
  bob.send("nothing for you");
  bob.send("hey me, look");
  await t.waitForScreen((rows) => rows.some((r) => r.endsWith("<bob> hey me, look")), "mention");
  await waitFor(
    () => t.screen.bells === bells + 1,
    5_000,
    () => `bells: ${t.screen.bells}`,
  );
  // Bob's nick in its colour; the mention line in bold; the other line not.
  expect(t.raw).toMatch(/<\u001b\[(3[1-6]|9[1-6])mbob\u001b\[39m> nothing for you/);
  expect(t.raw).toMatch(
    /\u001b\[1m\[\d\d:\d\d:\d\d\] <\u001b\[\d+mbob\u001b\[39m> hey me, look\u001b\[22m/,
  );
  bob.send("/quit");
  await t.waitForScreen((rows) => rows.at(-1) === "[lobby · 1 here] >", "prompt: 1 here");

  // A private room is never named on screen; NO_COLOR: not one colour.
  const secret = await ttyPeer(["127.0.0.1", "0", "--nick", "me", "--room", "our-secret-room"], {
    env: { NO_COLOR: "1" },
  });
  expect(secret.screen.text().at(-1)).toBe("[private · 1 here] >");
  const carol = await pipedPeer(secret, "carol", ["--room", "our-secret-room"]);
  carol.send("hello me");
  await secret.waitForScreen((rows) => rows.some((r) => r.endsWith("<carol> hello me")), "line");
  expect(secret.raw).not.toContain("our-secret-room");
  expect(secret.raw).not.toMatch(/\u001b\[[0-9;]*m/);
}, 30_000);

test("/ignore hides a person's messages here (by identity), /unignore shows them again; /clear empties the screen", async () => {
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const bob = await pipedPeer(t, "bob", ["--degree", "0"]);
  // Carol hears bob only through this peer: once she has a line, so has this peer.
  const carol = await pipedPeer(t, "carol", ["--degree", "0"]);
  await t.waitForScreen((rows) => rows.some((r) => r.includes("bob joined")), "presence");
  t.type("/ignore bob\r");
  await t.waitForScreen((rows) => rows.some((r) => r.includes("ignoring bob")), "ignoring");
  bob.send("unseen words");
  await carol.waitForLine("<bob> unseen words");
  t.type("/unignore bob\r");
  await t.waitForScreen((rows) => rows.some((r) => r.includes("no longer ignoring bob")), "un");
  bob.send("seen words");
  await t.waitForScreen((rows) => rows.some((r) => r.endsWith("<bob> seen words")), "seen");
  expect(t.raw).not.toContain("unseen words");

  t.type("/clear\r");
  await t.waitForScreen((rows) => rows.length === 1 && rows[0] === "[lobby · 3 here] >", "cleared");
}, 30_000);

test("at the prompt: a neighbour that left and came back, then is killed, is a 'lost link' line at once, and /who drops it; /quit WORDS says them", async () => {
  const t = await ttyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const keyDir = mkdtempSync(join(hermeticDirs().root, "bob-"));
  const bobArgs = (port: string) => [
    "127.0.0.1",
    port,
    "127.0.0.1",
    String(t.port()),
    "--nick",
    "bob",
    "--identity",
    join(keyDir, "identity"),
    "--ephemeral",
  ];
  const first = new CliProcess(fromSource, bobArgs("0"));
  others.push(first);
  await t.waitForScreen((rows) => rows.some((r) => r.includes("bob joined")), "bob joined");
  const port = String(await listenPortOf(first));
  first.send("/quit brb");
  await t.waitForScreen((rows) => rows.some((r) => r.endsWith("bob left: brb")), "bob left");
  expect(await first.exited).toBe(0);

  // Back with the same identity and port, then killed: the loss is news again, at once.
  const again = new CliProcess(fromSource, bobArgs(port));
  others.push(again);
  await t.waitForScreen(
    (rows) => rows.filter((r) => r.includes("bob joined")).length === 2,
    "back",
  );
  again.signal("SIGKILL");
  await t.waitForScreen((rows) => rows.some((r) => /\* lost link to bob \(/.test(r)), "lost link");
  t.type("/who\r");
  await t.waitForScreen(
    (rows) => rows.some((r) => r.includes("* 1 here (heard from")),
    "/who: only me",
  );

  const carol = await pipedPeer(t, "carol");
  t.type("/quit see you all\r");
  await carol.waitForLine("me left: see you all");
  expect(await t.proc.exited).toBe(0);
}, 30_000);
