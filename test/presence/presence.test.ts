import { afterEach, expect, test } from "bun:test";
import type { Connection } from "../../src/link/connection.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import {
  ALIVE_INTERVAL_MS,
  PRESENCE_TIMEOUT_MS,
  type PresenceChange,
  PresenceTracker,
  WELCOME_MAX_DELAY_MS,
} from "../../src/presence/presence-tracker.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createLinkPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

const nodes: PeerNode[] = [];
/** Both ends of every in-memory link, to tell when nothing is in flight. */
const connections: Connection[] = [];
afterEach(async () => {
  connections.length = 0;
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

function member(nick: string, clock: FakeClock, random?: () => number) {
  const node = new PeerNode({ nick, listenPort: 0, logger: testLogger(3).logger, clock });
  nodes.push(node);
  const presence = new PresenceTracker(node, { clock, ...(random ? { random } : {}) });
  const changes: PresenceChange[] = [];
  presence.events.on("change", (c) => changes.push(c));
  return { node, presence, changes };
}

/** Links two nodes and waits until the handshake and the JOINs it causes have settled. */
async function link(a: PeerNode, b: PeerNode) {
  const [out, inb] = createLinkPair();
  connections.push(out, inb);
  a.addConnection(out);
  b.addConnection(inb);
  await quiet();
}

/**
 * Waits until no frame is in flight. A memory link delivers a batch in the same turn
 * that takes it off the sender's queue, and every reply is queued synchronously, so
 * empty queues on every link mean the network has nothing more to say until a timer
 * fires. Messages so take no time on the fake clock, however slow the machine.
 */
async function quiet() {
  await waitFor(
    () => connections.every((c) => c.pendingBytes === 0),
    5000,
    () => `quiet links (pending: ${connections.map((c) => c.pendingBytes).join(", ")})`,
  );
}

/** Moves the shared clock in 1 s steps, letting every message arrive between steps. */
async function advance(clock: FakeClock, ms: number) {
  for (let t = 0; t < ms; t += 1000) {
    clock.advance(1000);
    await quiet();
  }
}

test("joins, renames and leaves are seen across the network, with hops", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  const carol = member("carol", clock);
  await link(alice.node, bob.node);
  await link(bob.node, carol.node); // alice and carol are 2 hops apart
  await waitFor(() => alice.changes.some((c) => c.event === "join" && c.nick === "carol"));
  expect(alice.changes.find((c) => c.nick === "carol")).toMatchObject({ event: "join", hops: 2 });
  expect(alice.changes.find((c) => c.nick === "bob")).toMatchObject({ event: "join", hops: 1 });

  expect(carol.presence.rename("caroline")).toEqual({ ok: true });
  await waitFor(() => alice.changes.some((c) => c.event === "nick"));
  expect(alice.changes.find((c) => c.event === "nick")).toMatchObject({
    nick: "caroline",
    previousNick: "carol",
    hops: 2,
  });

  const who = alice.presence.who();
  expect(who.map((e) => [e.nick, e.hops, e.self])).toEqual([
    ["alice", 0, true],
    ["bob", 1, false],
    ["caroline", 2, false],
  ]);

  carol.presence.leave("gone home");
  await waitFor(() => alice.changes.some((c) => c.event === "leave"));
  expect(alice.changes.find((c) => c.event === "leave")).toMatchObject({
    nick: "caroline",
    reason: "gone home",
  });
  expect(alice.presence.who().map((e) => e.nick)).toEqual(["alice", "bob"]);
});

test(`ALIVE every ${ALIVE_INTERVAL_MS / 1000} s keeps a quiet peer present; silence for ${PRESENCE_TIMEOUT_MS / 1000} s times it out`, async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  const dave = member("dave", clock);
  await link(alice.node, bob.node);
  await link(bob.node, dave.node);
  await waitFor(() => alice.presence.who().length === 3);
  await advance(clock, 2 * PRESENCE_TIMEOUT_MS); // nobody says a word, but ALIVE flows
  expect(alice.changes.filter((c) => c.event === "timeout")).toEqual([]);
  expect(alice.presence.who().map((e) => e.nick)).toEqual(["alice", "bob", "dave"]);

  // dave freezes: no LEAVE, and bob keeps the link (its frames are the test's to drop).
  dave.presence.stop();
  const silentFrom = clock.now();
  await advance(clock, PRESENCE_TIMEOUT_MS + ALIVE_INTERVAL_MS);
  const timeout = alice.changes.find((c) => c.event === "timeout");
  expect(timeout).toMatchObject({ event: "timeout", nick: "dave" });
  expect(timeout && "lastSeen" in timeout && timeout.lastSeen).toBeLessThanOrEqual(silentFrom);
  expect(alice.presence.who().map((e) => e.nick)).toEqual(["alice", "bob"]);
});

test(`a newcomer learns who is here within ${WELCOME_MAX_DELAY_MS / 1000} s, not at the next ${ALIVE_INTERVAL_MS / 1000} s round`, async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  await link(alice.node, bob.node);
  await waitFor(() => alice.presence.who().length === 2);
  await advance(clock, 10_000);
  const carol = member("carol", clock);
  await link(carol.node, bob.node);
  await waitFor(() => carol.node.neighbourCount === 1);
  await advance(clock, WELCOME_MAX_DELAY_MS); // on the wire, messages take no fake time
  expect(carol.presence.who().map((e) => e.nick)).toEqual(["carol", "alice", "bob"]);
});

test("two newcomers in quick succession are both welcomed", async () => {
  const clock = new FakeClock();
  // Every welcome waits 3/4 of the maximum, so dave arrives while those for carol are
  // still pending and must be answered by the same (shared) ALIVE.
  const late = () => 0.75;
  const alice = member("alice", clock, late);
  const bob = member("bob", clock, late);
  await link(alice.node, bob.node);
  await advance(clock, 3000); // alice has welcomed bob
  const carol = member("carol", clock, late);
  await link(carol.node, alice.node);
  await advance(clock, 1000);
  expect(carol.presence.who().map((e) => e.nick)).toEqual(["carol"]); // no welcome yet
  const dave = member("dave", clock, late);
  await link(dave.node, alice.node);
  await advance(clock, WELCOME_MAX_DELAY_MS);
  expect(dave.presence.who().map((e) => e.nick)).toEqual(["dave", "alice", "bob", "carol"]);
  expect(carol.presence.who().map((e) => e.nick)).toEqual(["carol", "alice", "bob", "dave"]);
});
