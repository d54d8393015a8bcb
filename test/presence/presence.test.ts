import { afterEach, expect, test } from "bun:test";
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
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

function member(nick: string, clock: FakeClock) {
  const node = new PeerNode({ nick, listenPort: 0, logger: testLogger(3).logger, clock });
  nodes.push(node);
  const presence = new PresenceTracker(node, { clock });
  const changes: PresenceChange[] = [];
  presence.events.on("change", (c) => changes.push(c));
  return { node, presence, changes };
}

function link(a: PeerNode, b: PeerNode) {
  const [out, inb] = createLinkPair();
  a.addConnection(out);
  b.addConnection(inb);
}

/** Moves the shared clock in 1 s steps, letting messages travel between steps. */
async function advance(clock: FakeClock, ms: number) {
  for (let t = 0; t < ms; t += 1000) {
    clock.advance(1000);
    await Bun.sleep(1);
  }
  await Bun.sleep(5);
}

test("joins, renames and leaves are seen across the network, with hops", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  const carol = member("carol", clock);
  link(alice.node, bob.node);
  link(bob.node, carol.node); // alice and carol are 2 hops apart
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
  link(alice.node, bob.node);
  link(bob.node, dave.node);
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
  link(alice.node, bob.node);
  await waitFor(() => alice.presence.who().length === 2);
  await advance(clock, 10_000);
  const carol = member("carol", clock);
  link(carol.node, bob.node);
  await waitFor(() => carol.node.neighbourCount === 1);
  await advance(clock, WELCOME_MAX_DELAY_MS + 1000); // sent within 2 s, then a moment to arrive
  expect(carol.presence.who().map((e) => e.nick)).toEqual(["carol", "alice", "bob"]);
});

test("two newcomers in quick succession are both welcomed", async () => {
  const clock = new FakeClock();
  const alice = member("alice", clock);
  const bob = member("bob", clock);
  link(alice.node, bob.node);
  await advance(clock, 3000); // alice has welcomed bob
  const carol = member("carol", clock);
  link(carol.node, alice.node);
  await advance(clock, WELCOME_MAX_DELAY_MS);
  const dave = member("dave", clock);
  link(dave.node, alice.node);
  await advance(clock, WELCOME_MAX_DELAY_MS + 1000); // sent within 2 s, then a moment to arrive
  expect(dave.presence.who().map((e) => e.nick)).toEqual(["dave", "alice", "bob", "carol"]);
  expect(carol.presence.who().map((e) => e.nick)).toEqual(["carol", "alice", "bob", "dave"]);
});
