/**
 * Issue #14 (6), "retries that never stop": a pinned address that is this peer itself,
 * or a peer of another room, stops being dialled; `disconnect` unpins. Real peers over
 * TCP on 127.0.0.1 (and, for the counting of refusals, a node that answers from a
 * script); the pins' timers run on a fake clock, so "never again" is an hour of clock
 * time, not a sleep.
 */

import { afterEach, expect, test } from "bun:test";
import { PinnedPeers } from "../../src/mesh/pinned-peers.ts";
import { Emitter } from "../../src/node/emitter.ts";
import type { ConnectOutcome, NodeEvents, PeerDown } from "../../src/node/node-events.ts";
import type { PeerNode } from "../../src/node/peer-node.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { HANDSHAKE_REFUSED_REASON } from "../../src/secure/constants.ts";
import {
  DISCONNECT_REASON,
  type PeerConfig,
  type RunningPeer,
  startPeer,
} from "../../src/start-peer.ts";
import { dialTcp } from "../../src/transport/tcp.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { type TestLogger, testLogger } from "../helpers/logger.ts";
import { waitFor } from "../helpers/wait-for.ts";

const HOUR_MS = 3_600_000;
const running: RunningPeer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.close()));
});

interface Started {
  readonly peer: RunningPeer;
  readonly log: TestLogger;
  readonly clock: FakeClock;
  /** Every address this peer opened a TCP connection to, in order. */
  readonly dials: string[];
}

function start(options: Partial<PeerConfig> = {}): Started {
  const log = testLogger(4);
  const clock = new FakeClock(Date.now());
  const dials: string[] = [];
  const peer = startPeer({
    host: "127.0.0.1",
    port: 0,
    degree: 0,
    logger: log.logger,
    clock,
    dial: (endpoint) => {
      dials.push(`${endpoint.host}:${endpoint.port}`);
      return dialTcp(endpoint);
    },
    ...options,
  });
  running.push(peer);
  return { peer, log, clock, dials };
}

/** What a pinned dial ends in: a retry, a give-up, "itself", or a link. */
const OUTCOME = /could not (join|reach)|gave up on|is this peer itself|linked to/;

function outcomes(s: Started): number {
  return s.log.entries.filter((e) => OUTCOME.test(s.log.text(e))).length;
}

/** Moves the fake clock on by `ms` in steps, waiting for each dial a step starts to end. */
async function advance(s: Started, ms: number, stepMs = 500): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    const dials = s.dials.length;
    const ended = outcomes(s);
    s.clock.advance(stepMs);
    const started = s.dials.length - dials;
    if (started > 0)
      await waitFor(() => outcomes(s) >= ended + started, 5000, "the dials started to end");
  }
}

test("a pin that is this peer itself is dialled once, whichever way its address is written", async () => {
  const me = start({ host: "0.0.0.0" });
  const port = me.peer.listen.port;
  const addresses: Endpoint[] = [
    { host: "127.0.0.1", port },
    { host: "localhost", port },
  ];
  for (const address of addresses) {
    const outcome = await me.peer.connect(address);
    expect(outcome.status).toBe("self");
  }
  expect(me.dials).toHaveLength(2);
  await advance(me, HOUR_MS, 60_000);
  expect(me.dials).toHaveLength(2);
  // Asked again: answered at once, without a dial.
  expect((await me.peer.connect({ host: "127.0.0.1", port })).status).toBe("self");
  expect(me.dials).toHaveLength(2);
  expect(me.log.find("is this peer itself").map((e) => e.type)).toEqual(["info", "info"]);
});

test("a pin of another room: given up after three refusals, said once; /connect tries again", async () => {
  const owner = start({ room: "alpha" });
  const outsider = start({ room: "beta" });
  const address = owner.peer.listen;
  const where = `127.0.0.1:${address.port}`;
  const first = await outsider.peer.connect(address);
  expect(first.status).toBe("failed");
  expect(outsider.log.find(`gave up on ${where}`)).toHaveLength(0);
  await advance(outsider, 60_000);
  const gaveUp = outsider.log.find(`gave up on ${where}`);
  expect(gaveUp.map((e) => [e.type, outsider.log.text(e)])).toEqual([
    [
      "warn",
      `gave up on ${where}: it is a peer of another room (or not a peerchat peer): 3 handshakes refused in a row`,
    ],
  ]);
  expect(outsider.dials).toHaveLength(3);
  await advance(outsider, 10 * 60_000, 10_000);
  expect(outsider.dials).toHaveLength(3);

  // The owner said so once, however many times it was knocked on.
  await waitFor(() => owner.log.find("closed before the handshake").length >= 3);
  expect(
    owner.log.find("closed before the handshake").filter((e) => e.type === "info"),
  ).toHaveLength(1);

  // The user asks again: tried again, with the count of refusals from zero.
  expect((await outsider.peer.connect(address)).status).toBe("failed");
  expect(outsider.dials).toHaveLength(4);
});

test("a refusal that is not another room (the peer is full) is retried, not given up", async () => {
  const owner = start({ maxPeers: 1 });
  const friend = start();
  expect((await friend.peer.connect(owner.peer.listen)).status).toBe("connected");
  const late = start();
  const outcome = await late.peer.connect(owner.peer.listen);
  expect(outcome).toMatchObject({ status: "failed", reason: "refused: too many peers (limit 1)" });
  await advance(late, 60_000);
  expect(late.dials.length).toBeGreaterThan(3);
  expect(late.log.find("gave up on")).toHaveLength(0);
});

test("disconnect closes the link with a BYE and stops the redials; an unknown address is said so", async () => {
  const alice = start({ nick: "alice" });
  // Degree 4: the mesh, too, would dial alice's address again (it is in its book).
  const bob = start({ nick: "bob", degree: 4 });
  const downs: PeerDown[] = [];
  alice.peer.node.events.on("peer-down", (down) => downs.push(down));
  expect((await bob.peer.connect(alice.peer.listen)).status).toBe("connected");
  const result = bob.peer.disconnect(alice.peer.listen);
  expect(result).toMatchObject({
    status: "disconnected",
    peers: [{ nick: "alice" }],
    unpinned: true,
  });
  await waitFor(() => downs.length > 0, 5000, "alice sees bob go");
  expect(downs[0]).toMatchObject({ nick: "bob", graceful: true, reason: DISCONNECT_REASON });
  const dialsBefore = bob.dials.length;
  await advance(bob, 5 * 60_000, 5000);
  expect(bob.dials.length).toBe(dialsBefore);
  expect(bob.peer.node.neighbourCount).toBe(0);

  expect(bob.peer.disconnect({ host: "127.0.0.1", port: 9 })).toEqual({
    status: "not-connected",
    unpinned: false,
  });
});

test("disconnect of a pin that is not linked stops its redials and says it was not connected", async () => {
  const bob = start();
  const nobody = { host: "127.0.0.1", port: 9 };
  expect((await bob.peer.connect(nobody)).status).toBe("failed");
  expect(bob.peer.disconnect(nobody)).toEqual({
    status: "not-connected",
    unpinned: true,
  });
  const before = bob.dials.length;
  await advance(bob, 5 * 60_000, 5000);
  expect(bob.dials.length).toBe(before);
});

test("only refusals in a row count: a busy peer's or an unreachable address's failure starts the count again", async () => {
  const clock = new FakeClock();
  const log = testLogger(4);
  const refused: ConnectOutcome = {
    status: "failed",
    stage: "handshake",
    reason: HANDSHAKE_REFUSED_REASON,
  };
  const busy: ConnectOutcome = {
    status: "failed",
    stage: "handshake",
    reason: "closed without an answer: the peer is busy or shutting down",
  };
  const unreachable: ConnectOutcome = { status: "failed", reason: "connection refused" };
  const script = [refused, refused, busy, refused, unreachable, refused, refused, refused];
  const dialled: ConnectOutcome[] = [];
  // The node as the pins see it: outcomes in turn, nobody ever linked.
  const node = {
    events: new Emitter<NodeEvents>(),
    isNeighbour: () => false,
    connect: async () => {
      const next = script[dialled.length] ?? refused;
      dialled.push(next);
      return next;
    },
  } as unknown as PeerNode;
  const pinned = new PinnedPeers(node, log.logger, { clock, random: () => 0 });
  await pinned.add({ host: "elsewhere", port: 9000 });
  for (let i = 0; i < 20 && log.find("gave up on").length === 0; i++) {
    clock.advance(30_000);
    await waitFor(() => dialled.length === i + 2 || log.find("gave up on").length > 0);
  }
  expect(dialled).toEqual(script);
  expect(log.find("gave up on elsewhere:9000").map((e) => e.type)).toEqual(["warn"]);
  clock.advance(3_600_000);
  expect(dialled).toHaveLength(script.length);
  pinned.close();
});
