import { afterEach, expect, test } from "bun:test";
import type { CliProcess } from "../helpers/cli.ts";
import { type NatKind, NetLab } from "../helpers/net-lab.ts";
import { arrived } from "../helpers/presence-lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

// Issue #13, acceptance 3: the NAT matrix, in namespaces the test builds and removes. A
// public peer P; A and B each behind a home router of its own (MASQUERADE, unsolicited
// inbound connections dropped). Never skipped: without root, `ip` and `iptables`,
// NetLab.create() throws and these fail.

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

function peer(net: NetLab, host: string, nick: string, extra: string[] = []): CliProcess {
  return net.chatPeer(host, ["0.0.0.0", "9000", ...extra, "--nick", nick]);
}

/** The row of `/peers` for `nick`, asked until `pattern` shows in it. */
async function peersRow(p: CliProcess, nick: string, pattern: RegExp, timeoutMs: number) {
  let row = "";
  await waitFor(
    async () => {
      const before = p.stdout.length;
      p.send("/peers");
      await Bun.sleep(100);
      row = p.stdout.slice(before).find((l) => l.trim().startsWith(`${nick} `)) ?? row;
      return pattern.test(row);
    },
    timeoutMs,
    `${nick}'s row of /peers to match ${pattern}`,
  );
  return row;
}

/** P, and A and B behind NATs of `kind`, chatting through P. */
async function natPeers(kind: NatKind) {
  lab = await NetLab.create();
  await lab.natTopology({ kind });
  const p = peer(lab, "P", "p");
  await p.waitForLine("listening on", 10_000);
  const started = Date.now();
  const a = peer(lab, "A", "a", ["10.77.0.1", "9000"]);
  const b = peer(lab, "B", "b", ["10.77.0.1", "9000"]);
  // Each says a line every 200 ms until the other shows one: when chatting through P
  // first works, not when presence gets round to saying who is here (3 s after a join).
  const until = async (from: CliProcess, to: CliProcess, text: string) => {
    let n = 0;
    await waitFor(
      async () => {
        from.send(`${text} ${++n}`);
        await Bun.sleep(200);
        return to.stdout.some((l) => l.includes(`> ${text} `));
      },
      10_000,
      `"${text}" to arrive`,
    );
  };
  await Promise.all([until(a, b, "hello b, through p"), until(b, a, "hello a")]);
  const chatS = (Date.now() - started) / 1000;
  await a.waitForLine(arrived("b"), 10_000);
  await b.waitForLine(arrived("a"), 10_000);
  return { net: lab, p, a, b, started, chatS };
}

test("behind port-preserving NATs: A and B chat through P, punch a direct link within 10 s, and chat on after P is killed", async () => {
  const { p, a, b, started, chatS } = await natPeers("port-preserving");
  expect(chatS).toBeLessThan(5);
  const row = await peersRow(a, "b", /\bdirect\b/, 10_000);
  const directS = (Date.now() - started) / 1000;
  await peersRow(b, "a", /\bdirect\b/, 2_000);
  p.signal("SIGKILL");
  await a.waitForLine(/lost link to p|p left/, 10_000);
  a.send("still here after p");
  await b.waitForLine("<a> still here after p", 5_000);
  b.send("me too");
  await a.waitForLine("<b> me too", 5_000);
  console.log(
    `NAT port-preserving: chat through P after ${chatS.toFixed(1)} s; direct after ${directS.toFixed(1)} s (${row.trim().replace(/\s+/g, " ")}); chat on after P killed`,
  );
  expect(directS).toBeLessThan(10);
}, 60_000);

test("behind symmetric NATs (--random-fully): A and B stay relayed through P, keep chatting, and /peers says so", async () => {
  const { a, b, chatS } = await natPeers("symmetric");
  expect(chatS).toBeLessThan(5);
  const row = await peersRow(a, "b", /via p\b/, 15_000);
  // The punch is tried (up to 3 attempts) and fails: the link stays relayed, and /peers
  // on both ends says so once the punching is over.
  const over = /via p \((?!punching)[^)]+\)/;
  const later = await peersRow(a, "b", over, 45_000);
  const other = await peersRow(b, "a", over, 45_000);
  expect(`${later}\n${other}`).toContain("punch failed after 3 attempts");
  a.send("still relayed");
  await b.waitForLine("<a> still relayed", 5_000);
  console.log(
    `NAT symmetric: chat through P after ${chatS.toFixed(1)} s; relayed: ${row.trim().replace(/\s+/g, " ")}; after the punch: ${later.trim().replace(/\s+/g, " ")} | ${other.trim().replace(/\s+/g, " ")}`,
  );
}, 90_000);
