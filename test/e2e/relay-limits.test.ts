import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { CircuitCloseCode } from "../../src/protocol/circuit.ts";
import { CIRCUIT_MAX_BYTES, MAX_CIRCUITS_PER_PEER } from "../../src/relay/circuit-relay.ts";
import type { CliProcess } from "../helpers/cli.ts";
import { NetLab } from "../helpers/net-lab.ts";
import { waitFor } from "../helpers/wait-for.ts";

// Issue #13, acceptance 4: relay limits, in namespaces the test builds and removes. P is
// public and relays; B (the CLI, --json) and the abuser A (circuit-abuser.ts, an
// in-process peer) each sit behind a home router of their own, linked to P only. A opens
// too many circuits, or pushes too many bytes through one, to B through P: P refuses or
// cuts it, and P's chat goes on reaching both.
//
// The relay planner (relay-planner.ts) would open a relayed link A–B through P on its own
// (A and B are not linked, P lists both), taking one of A's circuits at P. The abuser
// keeps it out: degree 0 (its planner never wants a link) and a node id below B's (B's
// planner leaves the open to the lower id). It reports the relayed streams it held before
// (`held`), and the test counts them against A's allowance all the same. Never skipped:
// without root, `ip` and `iptables`, NetLab.create() throws and these fail.

const ABUSER = join(import.meta.dir, "..", "helpers", "circuit-abuser.ts");
const MIB = 1024 * 1024;

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

function peer(net: NetLab, host: string, nick: string, extra: string[] = []): CliProcess {
  return net.chatPeer(host, ["0.0.0.0", "9000", ...extra, "--nick", nick]);
}

type Json = Record<string, unknown>;

/** The first JSON line on `proc`'s stdout with `key`, waited for. */
async function jsonLine(proc: CliProcess, key: string, timeoutMs: number): Promise<Json> {
  const parsed = () =>
    proc.stdout.flatMap((line) => {
      try {
        const value = JSON.parse(line) as Json;
        return key in value ? [value] : [];
      } catch {
        return [];
      }
    });
  return waitFor(
    () => parsed()[0],
    timeoutMs,
    () =>
      `a JSON line with ${key}\nstdout:\n${proc.stdout.join("\n")}\nstderr:\n${proc.stderr.join("\n")}`,
  );
}

/** B's JSON events of `type`. */
function eventsOf(b: CliProcess, type: string): Json[] {
  return b.events().filter((e) => e.type === type);
}

/** P public; B behind its NAT, linked to P; A (the abuser, `mode n`) behind its own. */
async function relayLab(mode: "circuits" | "bytes" | "raw", n: number) {
  lab = await NetLab.create();
  await lab.natTopology();
  const p = peer(lab, "P", "p");
  await p.waitForLine("listening on", 10_000);
  const b = peer(lab, "B", "b", ["10.77.0.1", "9000", "--json"]);
  const ready = await jsonLine(b, "nodeId", 10_000);
  const bHex = ready.nodeId as string;
  await waitFor(
    () => eventsOf(b, "peer-up").some((e) => e.nick === "p"),
    10_000,
    () => `B linked to P\n${b.stdout.join("\n")}`,
  );
  const started = Date.now();
  const a = lab.spawn("A", [process.execPath, ABUSER, "10.77.0.1", "9000", bHex, mode, `${n}`]);
  const aReady = (await jsonLine(a, "ready", 20_000)).ready as { nodeId: string; held: number };
  return { net: lab, p, b, a, bHex, aHex: aReady.nodeId, held: aReady.held, started };
}

/** P types a line; A and B both receive it. */
async function chatReachesBoth(p: CliProcess, a: CliProcess, b: CliProcess, text: string) {
  p.send(text);
  await waitFor(
    () => a.stdout.some((l) => l.includes(`"chat":${JSON.stringify(text)}`)),
    5_000,
    () => `A to receive ${text}\n${a.stdout.join("\n")}\n${a.stderr.join("\n")}`,
  );
  await waitFor(
    () => eventsOf(b, "message").some((e) => e.text === text && e.nick === "p"),
    5_000,
    () => `B to receive ${text}\n${b.stdout.join("\n")}`,
  );
}

test("relay limits - a peer opening 12 circuits gets 8 and is refused the rest; the relay says so and its chat goes on", async () => {
  const { p, a, b, aHex, held, started } = await relayLab("circuits", 12);
  const result = await jsonLine(a, "opened", 20_000);
  const opened = result.opened as number;
  const refused = result.refused as number;
  const codes = result.codes as (number | null)[];
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `relay limits: 12 circuits asked, ${held} held before: ${opened} opened, ${refused} refused (codes ${codes.join(",")}; ${(result.reasons as string[])[0]}) after ${seconds.toFixed(1)} s`,
  );
  expect(opened + held).toBe(MAX_CIRCUITS_PER_PEER);
  expect(refused).toBe(12 - opened);
  expect(codes.every((c) => c === CircuitCloseCode.Refused)).toBe(true);
  // Circuits logs the first refusal of a peer each minute, at info: on P's stderr.
  const line = await p.waitForLog(
    new RegExp(
      `refused a circuit from ${aHex.slice(0, 8)}: too many circuits \\(${MAX_CIRCUITS_PER_PEER}\\)`,
    ),
    5_000,
  );
  console.log(`relay limits: P logged: ${line}`);
  await chatReachesBoth(p, a, b, "still chatting after the circuit flood");
  // Once a minute per peer: the other refusals of that burst were not logged.
  expect(p.stderr.filter((l) => l.includes(`refused a circuit from ${aHex.slice(0, 8)}`))).toEqual([
    line,
  ]);
  expect(eventsOf(b, "peer-down").filter((e) => e.nick === "p")).toEqual([]);
}, 60_000);

test("relay limits - a peer pushing 20 MiB through one circuit is cut off at 16 MiB; B keeps its link to P and the relay's chat goes on", async () => {
  const { p, a, b, started } = await relayLab("bytes", 20);
  const result = await jsonLine(a, "closed", 45_000);
  const sent = result.sent as number;
  console.log(
    `relay limits: 20 MiB pushed: closed=${result.closed} code=${result.code} (${result.reason}) after ${(sent / MIB).toFixed(2)} MiB sent in ${result.seconds} s (${((Date.now() - started) / 1000).toFixed(1)} s in all)`,
  );
  expect(result.closed).toBe(true);
  expect(result.code).toBe(CircuitCloseCode.ByteLimit);
  expect(sent).toBeLessThan(20 * MIB);
  expect(sent).toBeGreaterThan(CIRCUIT_MAX_BYTES - MIB);
  // B saw the relayed link to A go, not its link to P.
  const down = await waitFor(
    () => eventsOf(b, "peer-down").find((e) => e.nick === "abuser"),
    5_000,
    () => `B's peer-down for A\n${b.stdout.join("\n")}`,
  );
  console.log(`relay limits: B: abuser down (${down.reason})`);
  // B is told why, and so is whoever runs the relay.
  expect(String(down.reason)).toContain("byte limit");
  const cut = await p.waitForLog(/cut the circuit from \w+ to \w+: byte limit/, 5_000);
  console.log(`relay limits: P: ${cut}`);
  await chatReachesBoth(p, a, b, "still chatting after the byte flood");
  b.send("/peers");
  const listed = await waitFor(() => eventsOf(b, "peers")[0], 5_000, "B's /peers");
  const rows = listed.peers as Json[];
  expect(rows.find((r) => r.nick === "p")?.link).toBe("direct");
  expect(eventsOf(b, "peer-down").filter((e) => e.nick === "p")).toEqual([]);
}, 90_000);

test("relay limits - raw bytes pushed into a circuit are cut off by the target, which reads them as a handshake; the relay's chat goes on", async () => {
  const { p, a, b } = await relayLab("raw", 20);
  const result = await jsonLine(a, "closed", 45_000);
  const sent = result.sent as number;
  console.log(
    `relay limits: 20 MiB raw: closed=${result.closed} code=${result.code} (${result.reason}, by ${result.by}) after ${(sent / 1024).toFixed(0)} KiB sent in ${result.seconds} s`,
  );
  // B's secure channel takes the first bytes for a Noise message 1, fails, and resets
  // the circuit: long before the relay's byte limit could matter.
  expect(result.closed).toBe(true);
  expect(result.code).toBe(CircuitCloseCode.Closed);
  expect(sent).toBeLessThan(MIB);
  await chatReachesBoth(p, a, b, "still chatting after the raw bytes");
  expect(eventsOf(b, "peer-down").filter((e) => e.nick === "p")).toEqual([]);
}, 60_000);
