import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { CountingClock } from "../helpers/counting-clock.ts";
import {
  TestNetwork as Net,
  ringEdges,
  type TestNetwork,
  type TestPeer,
} from "../helpers/network.ts";
import { PartitionProxy } from "../helpers/partition-proxy.ts";
import { randomInt, seededRandom, testSeed } from "../helpers/random.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
let proxy: PartitionProxy | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
  proxy?.close();
  proxy = undefined;
});

const openFds = () => readdirSync("/proc/self/fd").length;

/** Sends from `from` and waits until every live peer has it exactly once. */
async function reachesEveryone(
  n: TestNetwork,
  from: number,
  text: string,
  timeoutMs = 10_000,
): Promise<void> {
  const m = n.send(from, text);
  await n.waitDelivered([m.id], n.live(), timeoutMs);
  await n.quiesce();
  for (const p of n.live())
    expect(p.messages.filter((x) => x.id === m.id).length, `peer${p.index}`).toBe(1);
}

describe("self-healing mesh", () => {
  test("README chain A ← B ← C: kill B; A and C are linked within 10 s and C's line reaches A", async () => {
    net = new Net();
    const a = net.add({ degree: 4 });
    const b = net.add({ degree: 4, peers: [a.peer.listen] });
    net.add({ degree: 4, peers: [b.peer.listen] });
    await waitFor(() => net?.linked(1, 0) && net?.linked(2, 1), 5000, "chain up");
    net.kill(1);
    const killedAt = performance.now();
    await waitFor(() => net?.linked(0, 2), 10_000, "A–C link");
    console.log(
      `A and C linked ${((performance.now() - killedAt) / 1000).toFixed(2)} s after B was killed`,
    );
    await reachesEveryone(net, 2, "from C, around the hole");
  });

  test("--degree 1 chain: nothing but healing can link A and C after B dies", async () => {
    net = new Net();
    const a = net.add({ degree: 1 });
    const b = net.add({ degree: 1, peers: [a.peer.listen] });
    net.add({ degree: 1, peers: [b.peer.listen] });
    await waitFor(() => net?.linked(1, 0) && net?.linked(2, 1), 5000, "chain up");
    await Bun.sleep(1500); // several mesh ticks: at degree 1 nobody adds a link
    expect(net.linked(0, 2)).toBe(false);
    net.kill(1);
    const killedAt = performance.now();
    await waitFor(() => net?.linked(0, 2), 10_000, "A–C link");
    console.log(`healed in ${((performance.now() - killedAt) / 1000).toFixed(2)} s`);
    await reachesEveryone(net, 2, "healed");
  }, 20_000);

  test("a ring of 8 loses 2 non-adjacent nodes and stays one network; messages then arrive exactly once", async () => {
    net = Net.start(8, { degree: 2 });
    await net.link(ringEdges(8));
    net.kill(2);
    net.kill(6);
    await waitFor(() => net?.connected(), 10_000, "one network of 6");
    for (const p of net.live())
      expect(p.peer.node.neighbourCount, `peer${p.index}`).toBeGreaterThanOrEqual(2);
    const sent = [0, 3, 5, 7]
      .map((i) => net?.send(i, `after healing, from peer${i}`))
      .map((m) => m?.id as string);
    await net.waitDelivered(sent);
    await net.quiesce();
    for (const p of net.live()) {
      for (const id of sent)
        expect(p.messages.filter((m) => m.id === id).length, `peer${p.index}`).toBe(1);
    }
  }, 30_000);

  test("churn: 12 peers, one killed every 3 s and restarted 2 s later; no leaked sockets or timers", async () => {
    const seed = testSeed(1203);
    const random = seededRandom(seed);
    const clock = new CountingClock();
    const fdsBefore = openFds();
    net = new Net();
    const bootstrap = net.add({ degree: 4, clock });
    for (let i = 1; i < 12; i++) net.add({ degree: 4, clock, peers: [bootstrap.peer.listen] });
    await waitFor(
      () => net?.connected() && net.live().every((p) => p.peer.node.neighbourCount >= 4),
      15_000,
      "mesh formed",
    );
    await net.quiesce();
    const fdsStart = openFds();
    const linksStart = net.degrees().reduce((a, b) => a + b, 0) / 2;

    const started = performance.now();
    let round = 0;
    while (performance.now() - started < 30_000) {
      const roundStart = performance.now();
      const victim = 1 + randomInt(random, 11); // peer 0 is the stable sender
      net.kill(victim);
      await Bun.sleep(2000);
      const back: TestPeer = net.restart(victim);
      await waitFor(
        () => net?.connected() && back.peer.node.neighbourCount > 0,
        15_000,
        () => `round ${round} (seed ${seed}): heal after peer${victim} restarted`,
      );
      await reachesEveryone(net, 0, `round ${round}: peer${victim} was restarted`);
      round++;
      const rest = 3000 - (performance.now() - roundStart);
      if (rest > 0) await Bun.sleep(rest);
    }
    expect(round).toBeGreaterThanOrEqual(9);

    await net.quiesce();
    const fdsEnd = openFds();
    const linksEnd = net.degrees().reduce((a, b) => a + b, 0) / 2;
    console.log(
      `churn: ${round} rounds; fds ${fdsBefore} before, ${fdsStart} at start, ${fdsEnd} at end; links ${linksStart} → ${linksEnd}; degrees ${net.degrees().join(" ")}`,
    );
    // Two descriptors per link (one at each end, same process); the rest must not grow.
    expect(Math.abs(fdsEnd - fdsStart - 2 * (linksEnd - linksStart))).toBeLessThanOrEqual(6);
    await net.close();
    net = undefined;
    await waitFor(
      () => openFds() <= fdsBefore + 2,
      5000,
      () => `fds back to ${fdsBefore} (now ${openFds()})`,
    );
    expect(clock.pending).toBe(0);
  }, 90_000);

  for (const mode of ["cut", "blackhole"] as const) {
    test(`a 20 s partition (${mode}) heals: the halves reconnect within 10 s and messages reach everyone`, async () => {
      const p = new PartitionProxy();
      proxy = p;
      net = new Net();
      const left = [0, 1, 2, 3, 4];
      // Peers 0–4 on the left, 5–9 on the right; everyone bootstraps from peer 0.
      const first = net.add({ degree: 3, dial: p.dialer("left") });
      p.assign(first.peer.listen.port, "left");
      for (let i = 1; i < 10; i++) {
        const side = left.includes(i) ? "left" : "right";
        // Ports are known only once a peer listens, so bootstrap after assigning sides.
        const peer = net.add({ degree: 3, dial: p.dialer(side) });
        p.assign(peer.peer.listen.port, side);
        void peer.peer.connect(first.peer.listen);
      }
      await waitFor(() => net?.connected(), 15_000, "network formed");
      const crossing = () =>
        (net as TestNetwork)
          .live()
          .some(
            (a) =>
              left.includes(a.index) &&
              a.peer.node
                .neighbours()
                .some(
                  (n) =>
                    !left.some(
                      (i) => (net as TestNetwork).peer(i).peer.node.nodeIdHex === n.nodeId,
                    ),
                ),
          );
      await waitFor(crossing, 10_000, "links across the halves");

      if (mode === "cut") p.cut();
      else p.blackhole();
      await Bun.sleep(20_000);
      p.heal();
      const healedAt = performance.now();
      // Reconnected: one network again, and a message crosses in each direction.
      await waitFor(() => net?.connected(), 10_000, "one network again");
      await reachesEveryone(
        net,
        0,
        "left to right after the heal",
        10_000 - (performance.now() - healedAt),
      );
      await reachesEveryone(
        net,
        9,
        "right to left after the heal",
        10_000 - (performance.now() - healedAt),
      );
      console.log(
        `${mode}: reconnected and delivered ${((performance.now() - healedAt) / 1000).toFixed(2)} s after the heal`,
      );
    }, 60_000);
  }

  test("30 peers from one bootstrap: every node keeps between D and --max-peers links", async () => {
    const degree = 4;
    const maxPeers = 64;
    net = new Net();
    const bootstrap = net.add({ degree, maxPeers });
    for (let i = 1; i < 30; i++) net.add({ degree, maxPeers, peers: [bootstrap.peer.listen] });
    await waitFor(
      () => net?.live().every((p) => p.peer.node.neighbourCount >= degree) && net.connected(),
      20_000,
      () => `degree ≥ ${degree} everywhere; degrees ${net?.degrees().join(" ")}`,
    );
    await Bun.sleep(2000); // let it settle, then look again
    const degrees = net.degrees();
    const histogram = new Map<number, number>();
    for (const d of degrees) histogram.set(d, (histogram.get(d) ?? 0) + 1);
    const rows = [...histogram.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(([d, n]) => `  ${String(d).padStart(2)} links: ${"#".repeat(n)} ${n}`);
    console.log(`degree distribution, 30 peers, D=${degree}, max ${maxPeers}:\n${rows.join("\n")}`);
    for (const d of degrees) {
      expect(d).toBeGreaterThanOrEqual(degree);
      expect(d).toBeLessThanOrEqual(maxPeers);
    }
    await reachesEveryone(net, 17, "to all thirty");
  }, 60_000);
});
