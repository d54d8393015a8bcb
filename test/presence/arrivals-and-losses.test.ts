/**
 * Issue #14 (2, 5): who is here, as a newcomer learns it and as links are lost. A
 * newcomer is told who was already here; a neighbour that just linked is one hop away;
 * a neighbour whose last link was lost without a goodbye is not "here" unless it is
 * heard from another way within seconds.
 */
import { afterEach, expect, test } from "bun:test";
import type { Connection } from "../../src/link/connection.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import {
  ALIVE_INTERVAL_MS,
  type PresenceChange,
  PresenceTracker,
  SETTLE_AFTER_JOIN_MS,
  UNREACHABLE_AFTER_MS,
} from "../../src/presence/presence-tracker.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createLinkPair, type MemoryPairOptions } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

const nodes: PeerNode[] = [];
const trackers: PresenceTracker[] = [];
const connections: Connection[] = [];
afterEach(async () => {
  connections.length = 0;
  for (const t of trackers.splice(0)) t.stop();
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

function member(nick: string, clock: FakeClock) {
  const node = new PeerNode({ nick, listenPort: 0, logger: testLogger(3).logger, clock });
  nodes.push(node);
  const presence = new PresenceTracker(node, { clock, random: () => 0.5 });
  trackers.push(presence);
  const changes: PresenceChange[] = [];
  presence.events.on("change", (c) => changes.push(c));
  const here = () => presence.who().map((e) => e.nick);
  return { node, presence, changes, here };
}

/** Links two nodes; returns both ends (a's first). */
async function link(a: PeerNode, b: PeerNode, options: MemoryPairOptions = {}) {
  const [out, inb] = createLinkPair(options);
  connections.push(out, inb);
  a.addConnection(out);
  b.addConnection(inb);
  await quiet();
  return [out, inb] as const;
}

/** Waits until nothing is in flight on any link (messages take no fake time). */
async function quiet() {
  await waitFor(
    () => connections.every((c) => c.closed || c.pendingBytes === 0),
    5000,
    "quiet links",
  );
  await Bun.sleep(2);
}

async function advance(clock: FakeClock, ms: number) {
  for (let t = 0; t < ms; t += 500) {
    clock.advance(500);
    await quiet();
  }
}

const events = (changes: PresenceChange[], event: PresenceChange["event"]) =>
  changes.filter((c) => c.event === event);

test("a newcomer is told once who was already here, and hears of no one as 'joined' who did not join", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  await link(alice.node, bob.node);
  await advance(clock, 10_000);
  const carol = member("carol", clock);
  await link(carol.node, bob.node);
  await advance(clock, SETTLE_AFTER_JOIN_MS);
  expect(events(carol.changes, "join")).toEqual([]);
  const here = events(carol.changes, "here");
  expect(here).toEqual([
    {
      event: "here",
      nodeId: carol.node.nodeIdHex,
      nick: "carol",
      members: [
        { nodeId: alice.node.nodeIdHex, nick: "alice", hops: 2, already: true },
        { nodeId: bob.node.nodeIdHex, nick: "bob", hops: 1, already: true },
      ],
    },
  ]);
  // The others saw carol join, as before.
  expect(events(alice.changes, "join").map((c) => c.nick)).toEqual(["bob", "carol"]);
});

test("someone here we had not heard of, after our arrival was told, is a join with already: true", async () => {
  const clock = new FakeClock();
  // Two rooms that have never met: alice–bob, and erin–frank.
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  await link(alice.node, bob.node);
  const erin = member("erin", clock);
  const frank = member("frank", clock);
  await link(erin.node, frank.node);
  await advance(clock, SETTLE_AFTER_JOIN_MS + 1000);
  // They meet: nobody JOINs (all joined long ago); the next ALIVE round tells them.
  await link(alice.node, erin.node);
  await advance(clock, ALIVE_INTERVAL_MS);
  const joins = events(alice.changes, "join").filter((c) => c.nick !== "bob");
  expect(joins.map((c) => [c.nick, "hops" in c && c.hops, "already" in c && c.already])).toEqual([
    ["erin", 1, true],
    ["frank", 2, true],
  ]);
  expect(events(alice.changes, "here")).toEqual([]);
});

test("a neighbour's JOIN that came the long way round, once it is a neighbour, is one hop away", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  // bob → alice is slow: carol's JOIN, sent to bob alone, reaches alice after carol's own link.
  await link(bob.node, alice.node, { delayMs: 500 });
  await waitFor(() => events(alice.changes, "join").length === 1, 5000, "bob's join at alice");
  const carol = member("carol", clock);
  await link(carol.node, bob.node);
  await link(carol.node, alice.node);
  await waitFor(() => events(alice.changes, "join").some((c) => c.nick === "carol"));
  expect(alice.node.isNeighbour(carol.node.nodeIdHex)).toBe(true);
  expect(events(alice.changes, "join").find((c) => c.nick === "carol")).toMatchObject({
    hops: 1,
    already: false,
  });
});

test(`a neighbour lost without a goodbye is gone from who at once, and unreachable after ${UNREACHABLE_AFTER_MS / 1000} s`, async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  const carol = member("carol", clock);
  await link(alice.node, bob.node);
  await link(carol.node, alice.node);
  await advance(clock, 5000);
  expect(alice.here()).toEqual(["alice", "bob", "carol"]);
  bob.node.abort(); // kill -9
  await waitFor(() => !alice.node.isNeighbour(bob.node.nodeIdHex));
  expect(alice.here()).toEqual(["alice", "carol"]);
  await advance(clock, UNREACHABLE_AFTER_MS - 1000);
  expect(events(alice.changes, "unreachable")).toEqual([]);
  await advance(clock, 2000);
  expect(events(alice.changes, "unreachable")).toEqual([
    { event: "unreachable", nodeId: bob.node.nodeIdHex, nick: "bob", lastSeen: expect.any(Number) },
  ]);
  expect(events(alice.changes, "timeout")).toEqual([]);
  expect(alice.here()).toEqual(["alice", "carol"]);
  // carol was never linked to bob: nobody tells it, and bob times out there after 90 s.
  expect(carol.here()).toEqual(["carol", "alice", "bob"]);
});

test("a lost link to a neighbour still reachable another way: it says ALIVE, and stays here", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  const carol = member("carol", clock);
  const [aliceToBob] = await link(alice.node, bob.node);
  await link(bob.node, carol.node);
  await link(carol.node, alice.node);
  await advance(clock, 5000);
  aliceToBob.abort(); // the link alone fails (a reset): both ends see it go
  await waitFor(() => !bob.node.isNeighbour(alice.node.nodeIdHex));
  await advance(clock, 2 * UNREACHABLE_AFTER_MS);
  expect(events(alice.changes, "unreachable")).toEqual([]);
  expect(events(bob.changes, "unreachable")).toEqual([]);
  expect(alice.presence.who().map((e) => [e.nick, e.hops])).toEqual([
    ["alice", 0],
    ["bob", 2],
    ["carol", 1],
  ]);
});
