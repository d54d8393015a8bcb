/**
 * Issue #14 (3), in one process over real TCP: a peer whose every link crosses a
 * partition (black-holed: the connections stay open, nothing gets through) notices within
 * seconds, not at the 30 s time-out, and links to a peer on its own side.
 */
import { afterEach, expect, test } from "bun:test";
import { UNANSWERED_AFTER_MS } from "../../src/node/liveness.ts";
import type { CutOff } from "../../src/node/node-events.ts";
import { TestNetwork } from "../helpers/network.ts";
import { PartitionProxy } from "../helpers/partition-proxy.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
let proxy: PartitionProxy | undefined;
afterEach(async () => {
  proxy?.heal();
  await net?.close();
  net = undefined;
  proxy?.close();
  proxy = undefined;
});

test("a peer whose only link crosses a black-holed partition is told within 10 s and links to its own side", async () => {
  const p = new PartitionProxy();
  proxy = p;
  const n = new TestNetwork();
  net = n;
  // x and l on the left, r on the right; both of the left's links cross to r. Degree 1:
  // x knows l only from r's PEERS, and has no reason to dial it while r counts.
  const x = n.add({ degree: 1, dial: p.dialer("left") });
  const l = n.add({ degree: 1, dial: p.dialer("left") });
  const r = n.add({ degree: 1, dial: p.dialer("right") });
  p.assign(x.peer.listen.port, "left");
  p.assign(l.peer.listen.port, "left");
  p.assign(r.peer.listen.port, "right");
  await n.link([
    [l.index, r.index],
    [x.index, r.index],
  ]);
  await waitFor(
    () => x.peer.mesh.book.get(l.peer.listen) !== undefined,
    5000,
    "x has heard of l from r",
  );
  expect(n.linked(x.index, l.index)).toBe(false);
  const cutOffs: CutOff[] = [];
  x.peer.node.events.on("cut-off", (c) => cutOffs.push(c));

  p.blackhole();
  const from = performance.now();
  const m = n.send(x.index, "into the void?");
  await waitFor(() => cutOffs.length > 0, 12_000, "x told it may be cut off");
  const told = performance.now() - from;
  await waitFor(() => n.linked(x.index, l.index), 5000, "x linked to l");
  const linked = performance.now() - from;
  // The message sent into the void reaches l all the same (sync, once the link is up).
  await n.waitDelivered([m.id], [l], 5000);
  console.log(
    `cut off told after ${(told / 1000).toFixed(1)} s, linked to its own side after ${(linked / 1000).toFixed(1)} s`,
  );
  expect(cutOffs[0]?.neighbours).toBe(1);
  expect(cutOffs[0]?.silentMs).toBeGreaterThanOrEqual(UNANSWERED_AFTER_MS);
  expect(told).toBeLessThan(UNANSWERED_AFTER_MS + 3000);
  // Well before r is given up for its silence (30 s): r still counts as x's neighbour.
  expect(x.peer.node.isNeighbour(r.peer.node.nodeIdHex)).toBe(true);
}, 30_000);
