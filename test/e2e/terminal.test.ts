import { afterEach, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { CliProcess, fromSource } from "../helpers/cli.ts";
import { testEnv } from "../helpers/hermetic-env.ts";
import { Screen } from "../helpers/screen.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** peerchat on a pseudo-terminal, as a person runs it. */
class TtyPeer {
  readonly screen = new Screen(100, 30);
  readonly proc: Subprocess;
  private raw = "";

  constructor(args: string[]) {
    this.proc = Bun.spawn(fromSource(args), {
      terminal: {
        cols: 100,
        rows: 30,
        data: (_t, bytes) => {
          const text = new TextDecoder().decode(bytes);
          this.raw += text;
          this.screen.write(text);
        },
      },
      env: testEnv({ TERM: "xterm-256color" }),
    });
  }

  type(keys: string): void {
    this.proc.terminal?.write(keys);
  }

  async waitForScreen(predicate: (rows: string[]) => boolean, what: string): Promise<void> {
    await waitFor(
      () => predicate(this.screen.text()),
      10_000,
      () => `${what}; screen:\n${this.screen.text().join("\n")}\nraw: ${JSON.stringify(this.raw)}`,
    );
  }

  port(): number {
    return Number(/listening on 127\.0\.0\.1:(\d+)/.exec(this.raw)?.[1]);
  }
}

const others: CliProcess[] = [];
let tty: TtyPeer | undefined;
afterEach(async () => {
  tty?.proc.kill("SIGKILL");
  tty = undefined;
  await Promise.all(others.splice(0).map((p) => p.stop()));
});

test("interactive: a half-typed line survives incoming messages; own lines show once, formatted", async () => {
  tty = new TtyPeer(["127.0.0.1", "0", "--nick", "me"]);
  const t = tty;
  await t.waitForScreen(
    (rows) => rows.at(-1) === ">" && rows.some((r) => r.includes("listening on")),
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
    (rows) => rows.some((r) => r.includes("connected to bob (127.0.0.1:")),
    "peer-up line",
  );

  t.type("half a thou");
  await t.waitForScreen((rows) => rows.at(-1) === "> half a thou", "typed text");
  bob.send("an interruption");
  await t.waitForScreen(
    (rows) => rows.some((r) => /<bob> an interruption$/.test(r)),
    "incoming line",
  );
  // The half-typed line is redrawn below the arrival, intact.
  await t.waitForScreen((rows) => rows.at(-1) === "> half a thou", "prompt redrawn");

  t.type("ght\r");
  await t.waitForScreen(
    (rows) => rows.some((r) => /^\[\d\d:\d\d:\d\d\] <me> half a thought$/.test(r)),
    "own line",
  );
  await bob.waitForLine(/<me> half a thought$/);
  const rows = t.screen.text();
  expect(rows.filter((r) => r.includes("half a thought"))).toHaveLength(1);
  expect(rows.at(-1)).toBe(">");

  t.type("/nosuch\r");
  await t.waitForScreen(
    (rows) => rows.some((r) => r.includes("unknown command /nosuch; type /help")),
    "hint",
  );
  t.type("/peers\r");
  await t.waitForScreen(
    (rows) =>
      rows.some((r) =>
        /bob\s+127\.0\.0\.1:\d+\s+inbound\s+\d\d:\d\d:\d\d \(\d+s\)\s+(-|\d+ ms)$/.test(r),
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
    (rows) => rows.at(-1) === ">" && rows.some((r) => r.includes("listening on")),
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
