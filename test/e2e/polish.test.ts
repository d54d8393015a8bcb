/**
 * What a person meets at the command line, end to end (issue: "the terminal a weechat
 * or irssi user expects"): each test here failed on the code before its fix.
 */

import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { testEnv } from "../helpers/hermetic-env.ts";

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

/** Runs the CLI to its end with stdin closed; its exit code and output. */
async function run(args: string[], env: Record<string, string> = {}) {
  const p = start(args, env);
  p.endInput();
  const code = await p.exited;
  return { code, out: p.stdout.join("\n"), err: p.stderr.join("\n") };
}

test("the command line without surprises: help, -v, unknown options, names that do not resolve, a file that is not a key", async () => {
  const help = await run(["help"]);
  expect(help.code).toBe(0);
  expect(help.out).toContain("USAGE");
  expect(help.out).toContain("-V, -v, --version");
  expect(help.err).not.toContain("cannot listen");

  // -v is the version (as for node and bun), not a peer started by surprise.
  const v = await run(["-v"]);
  expect({ code: v.code, out: v.out.trim() }).toEqual({
    code: 0,
    out: expect.stringMatching(/^\d+\.\d+\.\d+$/),
  });

  const bogus = await run(["--bogus"]);
  expect(bogus.code).toBe(2);
  expect(bogus.err.split("\n")[0]).toBe("peerchat: unknown option --bogus");

  const nowhere = await run(["nosuchhost.invalid", "19020", "--ephemeral"]);
  expect(nowhere.code).toBe(1);
  expect(nowhere.err).toContain(
    "cannot listen on nosuchhost.invalid:19020: the name nosuchhost.invalid does not resolve",
  );

  const passwd = await run(["127.0.0.1", "0", "--identity", "/etc/passwd", "--ephemeral"]);
  expect(passwd.code).toBe(1);
  expect(passwd.err).toContain(
    "/etc/passwd is not a peerchat identity (its contents are not a PEM private key)",
  );
});

test("a listen that fails leaves no identity key behind: the retry is a first run", async () => {
  const config = await mkdtemp(join(tmpdir(), "peerchat-polish-config-"));
  try {
    const blocker = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const failed = await run(["127.0.0.1", String(blocker.port), "--ephemeral"], {
        XDG_CONFIG_HOME: config,
      });
      expect(failed.code).toBe(1);
      expect(failed.err).toContain("is already in use");
      expect(existsSync(join(config, "peerchat", "identity"))).toBe(false);
    } finally {
      blocker.stop(true);
    }
  } finally {
    await rm(config, { recursive: true, force: true });
  }
});

test("stdout on a full disk: an error on stderr and exit 1, not a silent exit 0", async () => {
  const proc = Bun.spawn(fromSource(["127.0.0.1", "0", "--ephemeral"]), {
    stdin: "ignore",
    stdout: Bun.file("/dev/full"),
    stderr: "pipe",
    env: testEnv({ NO_COLOR: "1" }),
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  clearTimeout(timer);
  expect(code).toBe(1);
  expect(err).toContain("peerchat: cannot write to stdout: ENOSPC");
});

test("five one-shot sends show five message lines at the peer, under one nick, and nothing else; /who unchanged", async () => {
  const alice = start(["127.0.0.1", "0", "--nick", "alice", "--ephemeral"]);
  const port = await listenPortOf(alice);
  const before = alice.stdout.length;
  for (let i = 1; i <= 5; i++) {
    const send = start(["send", `127.0.0.1:${port}`, `note ${i}`, "--nick", "script"]);
    expect(await send.exited).toBe(0);
  }
  await alice.waitForLine(/<script> note 5$/);
  alice.send("/who");
  await alice.waitForLine(/1 here/);
  const shown = alice.stdout.slice(before);
  expect(shown.slice(0, 5).map((l) => l.replace(/^\[[\d:]+\] /, ""))).toEqual(
    [1, 2, 3, 4, 5].map((i) => `<script> note ${i}`),
  );
  expect(shown[5]).toMatch(/\* 1 here/);
});

test("piped lines wait for the first neighbour: a bootstrap peer that comes up later still gets them, live", async () => {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  // The piping peer starts first; its bootstrap peer is not there yet.
  const piper = start([
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(port),
    "--nick",
    "piper",
    "--ephemeral",
  ]);
  await listenPortOf(piper);
  piper.send("said before anyone was there");
  const host = start(["127.0.0.1", String(port), "--nick", "host", "--ephemeral"]);
  const line = await host.waitForLine(/<piper> said before anyone was there$/, 15_000);
  expect(line).toBeDefined();
  // Live, not recovered later by sync as a missed message.
  expect(host.stdout.some((l) => l.includes("while you were away"))).toBe(false);
  expect(piper.stdout.some((l) => l.includes("nobody is connected"))).toBe(false);
});
