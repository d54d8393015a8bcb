import { afterEach, expect, test } from "bun:test";
import type { CliProcess } from "../helpers/cli.ts";
import { NetLab } from "../helpers/net-lab.ts";
import { arrived } from "../helpers/presence-lines.ts";
import { waitFor } from "../helpers/wait-for.ts";

// Issue #13, acceptance 1: LAN discovery, in namespaces on one bridge that the test
// builds and removes. Never skipped: without root, `ip` and `iptables`, NetLab.create()
// throws and these fail.

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

/** Discovery on: the hermetic environment turns it off for every other test. */
const DISCOVERING = { PEERCHAT_NO_DISCOVER: "" };

/** A peer in `host`'s namespace listening on every interface, given no peer address. */
function lanPeer(
  net: NetLab,
  host: string,
  nick: string,
  port: string,
  extra: string[] = [],
): CliProcess {
  return net.chatPeer(host, ["0.0.0.0", port, ...extra, "--nick", nick], { env: DISCOVERING });
}

test("three hosts on a LAN, given no address, find each other and chat within 5 s; two peers on one host both find the others; another room links to nobody", async () => {
  lab = await NetLab.create();
  await lab.lan("lan", ["H1", "H2", "H3"], "10.1.0.0/24");
  const alice = lanPeer(lab, "H1", "alice", "9000");
  // A second peer on H1: it and alice share the discovery port.
  const dave = lanPeer(lab, "H1", "dave", "9001");
  const bob = lanPeer(lab, "H2", "bob", "9000");
  const carol = lanPeer(lab, "H3", "carol", "9000");
  // Same LAN, another room: it hears every beacon and must recognise none.
  const eve = lanPeer(lab, "H2", "eve", "9001", ["--room", "another secret"]);
  const peers = [alice, dave, bob, carol];
  const nicks = ["alice", "dave", "bob", "carol"];
  for (const p of [...peers, eve]) await p.waitForLine("listening on", 10_000);
  const started = Date.now();
  // Each says a line every 200 ms until every other peer shows one of its lines: when
  // chatting first works, not when presence gets round to saying who is here.
  await Promise.all(
    peers.map(async (p, i) => {
      let n = 0;
      await waitFor(
        async () => {
          p.send(`hello from ${nicks[i]} ${++n}`);
          await Bun.sleep(200);
          return peers.every((q) => q.stdout.some((l) => l.includes(`<${nicks[i]}> hello from`)));
        },
        10_000,
        `${nicks[i]}'s line at every peer`,
      );
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  for (const [i, p] of peers.entries())
    for (const [j, nick] of nicks.entries()) if (i !== j) await p.waitForLine(arrived(nick), 5_000);
  console.log(
    `4 LAN peers (2 on one host) found each other and chatted ${seconds.toFixed(1)} s after start`,
  );
  expect(seconds).toBeLessThan(5);

  // Eve heard all their beacons for as long: no link, no nick, in either direction.
  eve.send("/who");
  await eve.waitForLine(/1 here/, 5_000);
  eve.send("/peers");
  await eve.waitForLine("no neighbours", 5_000);
  for (const nick of nicks) expect(eve.stdout.join("\n")).not.toContain(nick);
  for (const p of peers) expect(p.stdout.join("\n")).not.toContain("eve");
}, 60_000);
