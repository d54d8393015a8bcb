import { afterEach, describe, expect, test } from "bun:test";
import {
  chainEdges,
  type Edge,
  randomGraphEdges,
  ringEdges,
  TestNetwork,
} from "../helpers/network.ts";
import { randomInt, seededRandom, testSeed } from "../helpers/random.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/**
 * Starts `n` peers, links `edges`, has several peers send, and checks the flood's two
 * promises: every peer delivers every message exactly once, and no message crosses a
 * link more than once in each direction.
 */
async function floodAndCheck(
  n: number,
  edges: readonly Edge[],
  senders: readonly number[],
  perSender: number,
  context: string,
) {
  net = TestNetwork.start(n);
  await net.link(edges);
  const sent = [];
  for (let round = 0; round < perSender; round++) {
    for (const s of senders) sent.push(net.send(s, `message ${round} from peer${s}`));
  }
  const ids = sent.map((m) => m.id);
  await net.waitDelivered(ids);
  await net.quiesce();

  for (const peer of net.peers) {
    for (const m of sent) {
      const copies = peer.messages.filter((x) => x.id === m.id);
      expect(copies.length, `${context}: peer${peer.index} delivered ${m.text}`).toBe(1);
      expect(copies[0]?.nick).toBe(m.nick);
      expect(copies[0]?.text).toBe(m.text);
    }
    expect(peer.messages.length, `${context}: peer${peer.index} delivered nothing else`).toBe(
      sent.length,
    );
  }

  // Per message and per directed link: at most one copy, and never back to where it came from.
  const directed: Edge[] = edges.flatMap(([a, b]) => [[a, b] as const, [b, a] as const]);
  let copiesSent = 0;
  for (const m of sent) {
    for (const [a, b] of directed) {
      const copies = net.floods(a, b, m.id);
      expect(copies, `${context}: ${m.text} crossed ${a}→${b}`).toBeLessThanOrEqual(1);
      copiesSent += copies;
    }
  }
  // A flood sends each message over every link once, in one direction or the other,
  // except where both ends forwarded it to each other at the same moment.
  expect(copiesSent).toBeGreaterThanOrEqual(sent.length * edges.length);
  expect(copiesSent).toBeLessThanOrEqual(sent.length * directed.length);
  const duplicates = net.peers.reduce((sum, p) => sum + p.peer.node.stats.duplicates, 0);
  return { sent, copiesSent, duplicates };
}

describe("flood relay over real TCP", () => {
  test("chain of 3 (the README example): every message once at every peer", async () => {
    const { copiesSent, sent } = await floodAndCheck(3, chainEdges(3), [0, 1, 2], 5, "chain of 3");
    // A tree carries each message over each link exactly once.
    expect(copiesSent).toBe(sent.length * 2);
  });

  test("ring of 5: the cycle does not loop messages", async () => {
    const { duplicates } = await floodAndCheck(5, ringEdges(5), [0, 2, 4], 10, "ring of 5");
    // Round a ring each message meets itself once: duplicates are dropped, not delivered.
    expect(duplicates).toBeGreaterThan(0);
  });

  test("seeded random graph of 20 peers with cycles", async () => {
    const seed = testSeed(20_261_124);
    const random = seededRandom(seed);
    const edges = randomGraphEdges(20, 3, random);
    const senders = [...new Set(Array.from({ length: 5 }, () => randomInt(random, 20)))];
    await floodAndCheck(20, edges, senders, 6, `random graph (seed ${seed})`);
  }, 30_000);

  test("the hop limit stops a message 16 links away", async () => {
    net = TestNetwork.start(18);
    await net.link(chainEdges(18));
    await net.quiesce(); // presence JOINs have travelled (and been hop-limited) too
    const limitedBefore = net.peer(16).peer.node.stats.hopLimited;
    const m = net.send(0, "how far?");
    await net.waitDelivered([m.id], net.peers.slice(0, 17));
    await net.quiesce();
    expect(net.peer(16).messages.map((x) => x.hops)).toEqual([16]);
    expect(net.peer(17).messages).toEqual([]);
    expect(net.peer(16).peer.node.stats.hopLimited - limitedBefore).toBe(1);
  }, 20_000);

  test("a peer that leaves is reported with its reason, and the rest keep talking", async () => {
    net = TestNetwork.start(3);
    await net.link([
      [1, 0],
      [2, 0],
    ]);
    await net.peer(1).peer.close("gone for lunch");
    await waitFor(() => net?.peer(0).downs.length === 1);
    expect(net.peer(0).downs[0]).toMatchObject({ nick: "peer1", reason: "gone for lunch" });
    const m = net.send(2, "anyone?");
    await net.waitDelivered([m.id], [net.peer(0), net.peer(2)]);
  });
});
