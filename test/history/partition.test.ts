import { afterEach, expect, test } from "bun:test";
import type { ChatMessage } from "../../src/node/delivery.ts";
import { TestNetwork, type TestPeer } from "../helpers/network.ts";
import { PartitionProxy } from "../helpers/partition-proxy.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
let proxy: PartitionProxy | undefined;
afterEach(async () => {
  proxy?.close();
  proxy = undefined;
  await net?.close();
  net = undefined;
});

/** The messages a peer has shown whose text starts with `prefix`. */
const shown = (p: TestPeer, prefix: string): ChatMessage[] =>
  p.messages.filter((m) => m.text.startsWith(prefix));

test("a 30 s partition (connections reset and refused): within 10 s of the heal every peer has shown all 40 messages of both halves, once each, the other half's late", async () => {
  const p = new PartitionProxy();
  proxy = p;
  const n = new TestNetwork();
  net = n;
  const left = [0, 1, 2, 3];
  // Two rings of four, 0–3 on the left and 4–7 on the right, and four links across
  // (i to i + 4) through the proxy; every peer keeps 3 links (the mesh may add more).
  for (let i = 0; i < 8; i++) {
    const peer = n.add({ degree: 3, dial: p.dialer(left.includes(i) ? "left" : "right") });
    p.assign(peer.peer.listen.port, left.includes(i) ? "left" : "right");
  }
  const ring = (first: number) =>
    [0, 1, 2, 3].map((k) => [first + k, first + ((k + 1) % 4)] as const);
  await n.link([...ring(0), ...ring(4), [0, 4], [1, 5], [2, 6], [3, 7]]);
  const halves = [left.map((i) => n.peer(i)), [4, 5, 6, 7].map((i) => n.peer(i))];

  p.cut();
  await waitFor(() => halves.every((half) => n.connected(half)), 5_000, "each half on its own");
  const cutAt = performance.now();
  for (let k = 0; k < 5; k++) {
    for (const [side, half] of ["L", "R"].entries()) {
      for (const peer of halves[side] as TestPeer[])
        n.send(peer.index, `${half}${peer.index} ${k}`);
    }
  }
  // Each half got its own 20 live, and nothing of the other's.
  await waitFor(
    () =>
      halves.every((half, side) =>
        half.every((peer) => shown(peer, side === 0 ? "L" : "R").length === 20),
      ),
    10_000,
    "each half's own 20",
  );
  expect(halves[0]?.some((peer) => shown(peer, "R").length > 0)).toBe(false);
  await Bun.sleep(Math.max(0, 30_000 - (performance.now() - cutAt)));
  p.heal();
  const healedAt = performance.now();

  await waitFor(
    () => n.live().every((peer) => shown(peer, "L").length + shown(peer, "R").length >= 40),
    10_000,
    () =>
      `all 40 everywhere; have ${n
        .live()
        .map((peer) => `peer${peer.index}: ${shown(peer, "L").length}+${shown(peer, "R").length}`)
        .join(", ")}; one network: ${n.connected()}`,
  );
  const took = (performance.now() - healedAt) / 1000;
  console.log(
    `partition healed: every peer had all 40 messages ${took.toFixed(2)} s after the heal`,
  );
  // A moment more: nothing arrives twice.
  await Bun.sleep(500);
  for (const [side, half] of halves.entries()) {
    const own = side === 0 ? "L" : "R";
    const other = side === 0 ? "R" : "L";
    for (const peer of half) {
      const ids = [...shown(peer, "L"), ...shown(peer, "R")].map((m) => m.id);
      expect(new Set(ids).size).toBe(40);
      expect(ids.length).toBe(40);
      expect(shown(peer, other).every((m) => m.late === true)).toBe(true);
      expect(shown(peer, own).every((m) => !m.late)).toBe(true);
    }
  }
}, 90_000);
