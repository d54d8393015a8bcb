import { expect } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultIdentityPath, openIdentity } from "../../src/cli/identity-file.ts";
import { encodeBye } from "../../src/protocol/control.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { CliProcess, type Launcher, listenPortOf } from "../helpers/cli.ts";
import { testEnv } from "../helpers/hermetic-env.ts";
import { rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** Time limit for one scenario: it starts several processes (and may wait for a redial). */
export const SCENARIO_TIMEOUT_MS = 30_000;

/** Every peer process started by a scenario, stopped by `stopAll`. */
const running: CliProcess[] = [];

function start(launcher: Launcher, args: string[]): CliProcess {
  const p = new CliProcess(launcher, args);
  running.push(p);
  return p;
}

export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((p) => p.stop()));
}

const chatLine = (nick: string, text: string) =>
  new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] <${nick}> ${text}$`);
const count = (p: CliProcess, re: RegExp) => p.stdout.filter((l) => re.test(l)).length;

/**
 * The README's three-peer chain, typed exactly as the README shows it
 * (`peerchat localhost PORT localhost PEER_PORT`), lines piped into each peer.
 */
export async function readmeChain(launcher: Launcher): Promise<void> {
  const a = start(launcher, ["localhost", "0"]);
  const portA = await listenPortOf(a);
  const b = start(launcher, ["localhost", "0", "localhost", String(portA)]);
  const portB = await listenPortOf(b);
  const c = start(launcher, ["localhost", "0", "localhost", String(portB)]);
  const portC = await listenPortOf(c);
  const nicks = [`localhost:${portA}`, `localhost:${portB}`, `localhost:${portC}`];
  await a.waitForLine(`${nicks[1]} connected from 127.0.0.1:${portB}`);
  await c.waitForLine(`connected to ${nicks[1]} (127.0.0.1:${portB})`);

  const peers = [a, b, c];
  for (const [i, p] of peers.entries()) p.send(`hello from peer ${i}`);
  for (const [i, p] of peers.entries()) p.send(`second line from peer ${i}`);
  for (const [i, nick] of nicks.entries()) {
    for (const text of [`hello from peer ${i}`, `second line from peer ${i}`]) {
      const re = chatLine(nick.replace(/\./g, "\\."), text);
      for (const p of peers) await p.waitForLine(re);
    }
  }
  // A last line from each peer: links deliver in order, so once these sentinels have
  // arrived everywhere, any stray copy of the lines above would have arrived too.
  for (const [i, p] of peers.entries()) p.send(`sentinel ${i}`);
  for (const p of peers)
    for (const i of [0, 1, 2]) await p.waitForLine(new RegExp(`> sentinel ${i}$`));
  for (const [i, nick] of nicks.entries()) {
    for (const p of peers) {
      expect(count(p, chatLine(nick.replace(/\./g, "\\."), `hello from peer ${i}`))).toBe(1);
      expect(count(p, chatLine(nick.replace(/\./g, "\\."), `second line from peer ${i}`))).toBe(1);
    }
  }

  // /quit leaves gracefully: exit 0 within a second, and the neighbour is told why.
  const quitAt = performance.now();
  c.send("/quit");
  expect(await c.exited).toBe(0);
  expect(performance.now() - quitAt).toBeLessThan(1000);
  await b.waitForLine(`${nicks[2]} left: quit`);
}

/** The same chain in --json mode: stdout is NDJSON only. */
export async function jsonChain(launcher: Launcher): Promise<void> {
  // --degree 0: a pure chain, as the original program would make it.
  const a = start(launcher, ["127.0.0.1", "0", "--json", "--nick", "alice", "--degree", "0"]);
  const portA = await listenPortOf(a);
  const b = start(launcher, [
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(portA),
    "--json",
    "--nick",
    "bob",
    "--degree",
    "0",
  ]);
  const portB = await listenPortOf(b);
  const c = start(launcher, [
    "127.0.0.1",
    "0",
    "--peer",
    `127.0.0.1:${portB}`,
    "--json",
    "--nick",
    "carol",
    "--degree",
    "0",
  ]);
  await c.waitForLine('"type":"peer-up"');
  await a.waitForLine('"nick":"bob"');
  a.send("hi from alice");
  c.send("hi from carol");
  await c.waitForLine("hi from alice");
  await a.waitForLine("hi from carol");

  for (const p of [a, b, c]) {
    const events = p.events(); // throws if any line is not JSON
    expect(events[0]).toMatchObject({ type: "ready", version: expect.any(String) });
    expect(events[0]?.nodeId).toMatch(/^[0-9a-f]{64}$/);
  }
  const atC = c.events().find((e) => e.type === "message" && e.text === "hi from alice");
  // seq counts every FLOOD alice originated (her presence JOIN came first).
  expect(atC).toMatchObject({ type: "message", nick: "alice", hops: 2, own: false });
  const ownAtA = a.events().find((e) => e.type === "message" && e.own === true);
  expect(ownAtA?.seq).toBe(atC?.seq);
  expect(atC?.id).toMatch(/^[0-9a-f]{32}$/);
  expect(atC?.origin).toBe(a.events()[0]?.nodeId);
  expect(typeof atC?.sentAt).toBe("number");
  expect(typeof atC?.receivedAt).toBe("number");
  const upAtA = a.events().find((e) => e.type === "peer-up");
  expect(upAtA).toMatchObject({ nick: "bob", address: `127.0.0.1:${portB}`, direction: "inbound" });

  // Commands answer in JSON too.
  b.send("/peers");
  const peersLine = await b.waitForLine('"type":"peers"');
  expect((JSON.parse(peersLine) as { peers: unknown[] }).peers).toHaveLength(2);
  b.signal("SIGTERM");
  expect(await b.exited).toBe(0);
  const down = await a.waitForLine('"type":"peer-down"');
  expect(JSON.parse(down)).toMatchObject({ nick: "bob", reason: "shutting down", by: "remote" });
}

/** `peerchat send` reaches a running peer, and fails clearly when there is none. */
export async function oneShotSend(launcher: Launcher): Promise<void> {
  const a = start(launcher, ["127.0.0.1", "0", "--nick", "alice"]);
  const portA = await listenPortOf(a);
  const b = start(launcher, ["127.0.0.1", "0", "127.0.0.1", String(portA), "--nick", "bob"]);
  await b.waitForLine("connected to alice");

  const send = start(launcher, [
    "send",
    `127.0.0.1:${portA}`,
    "sent in one shot",
    "--nick",
    "oneshot",
  ]);
  expect(await send.exited).toBe(0);
  await a.waitForLine(chatLine("oneshot", "sent in one shot"));
  await b.waitForLine(chatLine("oneshot", "sent in one shot"));
  // A one-shot sender is quiet: once its link is gone, the message was all there was of it.
  let asked = 0;
  await waitFor(() => {
    const answers = a.stdout.filter((l) => / neighbours?:$/.test(l));
    if (answers.at(-1)?.endsWith(" 1 neighbour:")) return true;
    if (answers.length === asked) {
      a.send("/peers");
      asked++;
    }
    return false;
  }, 10_000);
  expect(a.stdout.filter((l) => l.includes("oneshot") && !l.includes("<oneshot>"))).toEqual([]);

  // A message typed with nobody connected says so, and is kept: the first peer to join
  // gets it by sync.
  const alone = start(launcher, ["127.0.0.1", "0", "--nick", "alone"]);
  const alonePort = await listenPortOf(alone);
  alone.send("anyone there?");
  await alone.waitForLine(
    "nobody is connected: the message is kept here and goes out when a peer joins",
  );
  const friend = start(launcher, ["127.0.0.1", "0", "127.0.0.1", String(alonePort)]);
  await friend.waitForLine(chatLine("alone", "anyone there\\?"));

  // Nobody listening on the port we just freed.
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const deadPort = probe.port;
  probe.stop(true);
  const failed = start(launcher, ["send", `127.0.0.1:${deadPort}`, "into the void"]);
  expect(await failed.exited).toBe(1);
  await failed.waitForLog(`could not reach 127.0.0.1:${deadPort}: connection refused`);
}

/** What a user meets when things go wrong: clear lines and exit codes. */
export async function failures(launcher: Launcher): Promise<void> {
  const a = start(launcher, ["127.0.0.1", "0"]);
  const port = await listenPortOf(a);
  const clash = start(launcher, ["127.0.0.1", String(port)]);
  expect(await clash.exited).toBe(1);
  await clash.waitForLog(`127.0.0.1:${port} is already in use`);

  const badPort = start(launcher, ["127.0.0.1", "70000"]);
  expect(await badPort.exited).toBe(2);
  await badPort.waitForLog("PORT must be a number from 0 to 65535");
  await badPort.waitForLog("usage: peerchat");

  const unknown = start(launcher, ["--colour"]);
  expect(await unknown.exited).toBe(2);
  await unknown.waitForLog("--colour");

  const version = start(launcher, ["--version"]);
  expect(await version.exited).toBe(0);
  const versionLater = start(launcher, ["127.0.0.1", "0", "--version"]);
  expect(await versionLater.exited).toBe(0);
  const pkg = (await Bun.file(new URL("../../package.json", import.meta.url)).json()) as {
    version: string;
  };
  await version.waitForLine(pkg.version);

  // A bootstrap peer that is down: a warning, the peer keeps listening and joins once it is up.
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const latePort = probe.port;
  probe.stop(true);
  const early = start(launcher, [
    "127.0.0.1",
    "0",
    "127.0.0.1",
    String(latePort),
    "--nick",
    "early",
  ]);
  await early.waitForLog(`could not reach 127.0.0.1:${latePort}: connection refused; retrying in`);
  const late = start(launcher, ["127.0.0.1", String(latePort), "--nick", "late"]);
  await late.waitForLine("early connected from", 15_000);
  late.send("you made it");
  await early.waitForLine(chatLine("late", "you made it"));
}

/** Piped input ending does not stop the peer; it stays a relay. Display is neutralised. */
export async function headlessRelay(launcher: Launcher): Promise<void> {
  const relay = start(launcher, ["127.0.0.1", "0", "--nick", "relay"]);
  const port = await listenPortOf(relay);
  relay.endInput();
  const a = start(launcher, ["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "left"]);
  const b = start(launcher, ["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "right"]);
  await relay.waitForLine("right connected from");
  await waitFor(
    () =>
      a.stdout.some((l) => l.includes("connected to relay")) &&
      b.stdout.some((l) => l.includes("connected to relay")),
  );
  a.send("through the headless relay");
  await b.waitForLine(chatLine("left", "through the headless relay"));
  // Right-to-left override: harmless bytes on the wire, but shown as a visible escape.
  a.send("evil \u202Etxt.exe");
  await b.waitForLine("evil \\u{202e}txt.exe");
  expect(b.stdout.some((l) => l.includes("\u202E"))).toBe(false);

  // A neighbour's BYE reason is theirs to choose: it must not repaint our screen either.
  const raw = await rawConnect({ host: "127.0.0.1", port });
  // (It claims to listen: a neighbour that does not is a one-shot sender, shown quietly.)
  raw.write(encodeHello({ nodeId: raw.nodeId, listenPort: 1, nick: "raw" }));
  await relay.waitForLine("raw connected from");
  raw.write(encodeBye("\u001b[2J\u001b[Hgotcha"));
  await relay.waitForLine("raw left: ^[[2J^[[Hgotcha");
  expect(relay.stdout.some((l) => l.includes("\u001b"))).toBe(false);
}

/**
 * Peerchat as a filter in a shell pipeline: lines piped in before the bootstrap link is
 * up still reach the network, and when the reader of stdout goes away (`| head -n 1`)
 * the peer leaves gracefully instead of failing on every later line.
 */
export async function shellPipeline(launcher: Launcher): Promise<void> {
  const hub = start(launcher, ["127.0.0.1", "0", "--nick", "hub"]);
  const port = await listenPortOf(hub);

  const early = start(launcher, ["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "early"]);
  early.send("said before the link was up");
  await hub.waitForLine(chatLine("early", "said before the link was up"));

  // The filter's user has run peerchat before: their identity is loaded without a word
  // (the run's shared one is held by the other peers here, which a peer says on stderr).
  const config = await mkdtemp(join(tmpdir(), "peerchat-filter-"));
  openIdentity(defaultIdentityPath({ XDG_CONFIG_HOME: config })).release();
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  const command = launcher(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "filter"]);
  const pipeline = Bun.spawn(["sh", "-c", `${command.map(quote).join(" ")} | head -n 1`], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: testEnv({ NO_COLOR: "1", XDG_CONFIG_HOME: config }),
  });
  try {
    await hub.waitForLine("filter connected from");
    // Something for the filter to print once head has exited; the write finds the pipe gone.
    hub.send("anyone reading?");
    await hub.waitForLine("filter left: quit");
    expect(await pipeline.exited).toBe(0);
    expect(await new Response(pipeline.stdout).text()).toMatch(/listening on 127\.0\.0\.1:\d+/);
    expect(await new Response(pipeline.stderr).text()).toBe("");
  } finally {
    pipeline.kill("SIGKILL");
    await rm(config, { recursive: true, force: true });
  }
}

/**
 * Rooms and identity: a peer with another room name cannot join, and says why; one with
 * the same name can. An identity file gives the same node id run after run.
 */
export async function roomsAndIdentity(launcher: Launcher): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "peerchat-rooms-"));
  try {
    const identity = join(dir, "alice.key");
    const alice = start(launcher, [
      "127.0.0.1",
      "0",
      "--json",
      "--room",
      "alpha",
      "--identity",
      identity,
      "--nick",
      "alice",
    ]);
    const port = await listenPortOf(alice);
    const firstId = alice.events().find((e) => e.type === "ready")?.nodeId;
    expect(firstId).toMatch(/^[0-9a-f]{64}$/);

    const outsider = start(launcher, [
      "127.0.0.1",
      "0",
      "127.0.0.1",
      String(port),
      "--room",
      "beta",
      "--nick",
      "eve",
    ]);
    await outsider.waitForLog(
      `could not join 127.0.0.1:${port}: different room or not a peerchat peer; retrying in`,
    );
    expect(outsider.stderr.join("\n")).not.toContain("alpha");

    const friend = start(launcher, [
      "127.0.0.1",
      "0",
      "127.0.0.1",
      String(port),
      "--room",
      "alpha",
      "--nick",
      "bob",
    ]);
    await friend.waitForLine("connected to alice");
    friend.send("in the alpha room");
    await waitFor(() =>
      alice.events().some((e) => e.type === "message" && e.text === "in the alpha room"),
    );
    // Eve never got in, and no room name was ever printed.
    expect(alice.events().some((e) => e.type === "peer-up" && e.nick === "eve")).toBe(false);
    for (const p of [alice, friend, outsider]) expect(p.stderr.join("\n")).not.toContain("alpha");

    // The same identity file, the same node id.
    expect(await alice.stop()).toBe(0);
    const again = start(launcher, ["127.0.0.1", "0", "--json", "--identity", identity]);
    await listenPortOf(again);
    expect(again.events().find((e) => e.type === "ready")?.nodeId).toBe(firstId);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
