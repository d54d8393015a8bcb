/**
 * Issue #14 (5): "one screen showed `connected to localhost:19001` twice". Of a duplicate
 * pair, the remote may close the old link before the new one's HELLO reaches us: the
 * neighbour must not seem to leave and connect again.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ConnectionClosed, FrameConnection } from "../../src/link/connection.ts";
import { type ClosedLink, holdsPeerDown } from "../../src/node/close-report.ts";
import { LinkHandover } from "../../src/node/link-handover.ts";
import type { NeighbourInfo, PeerDown } from "../../src/node/node-events.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import { WireErrorCode } from "../../src/protocol/constants.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { hex } from "../../src/protocol/hex.ts";
import type { ByteStream } from "../../src/transport/byte-stream.ts";
import { testLogger } from "../helpers/logger.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

const nodes: PeerNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

function setup() {
  const node = new PeerNode({ nick: "carol", listenPort: 9002, logger: testLogger(3).logger });
  nodes.push(node);
  const ups: NeighbourInfo[] = [];
  const downs: PeerDown[] = [];
  node.events.on("peer-up", (p) => ups.push(p));
  node.events.on("peer-down", (p) => downs.push(p));
  return { node, ups, downs };
}

/** The remote end of a link the test drives by hand: it reads nothing, writes what it is told. */
function remoteEnd(stream: ByteStream): ByteStream {
  stream.start({ data() {}, close() {} });
  return stream;
}

const bob = new Uint8Array(32).fill(0xb0);
const bobHello = encodeHello({ nodeId: bob, listenPort: 9001, nick: "bob" });

test("the remote closes the old link of a duplicate pair before the new link's HELLO: no peer-down, no second peer-up", async () => {
  const { node, ups, downs } = setup();
  // Link 1: bob dialled us (its mesh), and it is up.
  const [bobOut, ourIn] = createMemoryPair();
  const old = remoteEnd(bobOut);
  node.addConnection(new FrameConnection(ourIn));
  old.write(bobHello);
  await waitFor(() => node.isNeighbour(hex(bob)));
  // Link 2: we dial bob (a pinned redial); our HELLO is out, bob's not yet in.
  const [ourOut, bobIn] = createMemoryPair();
  const fresh = remoteEnd(bobIn);
  node.addConnection(new FrameConnection(ourOut));
  await Bun.sleep(5);
  // Bob keeps link 2 (the rule's choice) and closes link 1 first; its HELLO on link 2 follows.
  old.end();
  await waitFor(() => !node.isNeighbour(hex(bob)) || node.connectionCount === 1);
  fresh.write(bobHello);
  await waitFor(() => node.isNeighbour(hex(bob)) && node.connectionCount === 1);
  await Bun.sleep(20);
  expect(downs).toEqual([]);
  expect(ups).toHaveLength(1);
  // The neighbour is on the new link, with the age of the old one.
  const [now] = node.neighbours();
  expect(now?.direction).toBe("outbound");
  expect(now?.since).toBe(ups[0]?.since as number);
});

test("a link closed while a handshake from the same host fails is reported once that handshake is over", async () => {
  const { node, downs } = setup();
  const [bobOut, ourIn] = createMemoryPair();
  const old = remoteEnd(bobOut);
  node.addConnection(new FrameConnection(ourIn));
  old.write(bobHello);
  await waitFor(() => node.isNeighbour(hex(bob)));
  const [ourOut, bobIn] = createMemoryPair();
  const fresh = remoteEnd(bobIn);
  node.addConnection(new FrameConnection(ourOut));
  await Bun.sleep(5);
  old.end();
  await waitFor(() => !node.isNeighbour(hex(bob)));
  expect(downs).toEqual([]); // held: the new link may yet be bob's
  fresh.end(); // it was not: the dial fails before any HELLO
  await waitFor(() => downs.length === 1);
  expect(downs[0]).toMatchObject({ nick: "bob", by: "remote", graceful: false, reason: "closed" });
});

test("a link closed while another node's handshake from the same host completes is reported when it does", async () => {
  const { node, ups, downs } = setup();
  const [bobOut, ourIn] = createMemoryPair();
  const old = remoteEnd(bobOut);
  node.addConnection(new FrameConnection(ourIn));
  old.write(bobHello);
  await waitFor(() => node.isNeighbour(hex(bob)));
  const [daveOut, ourIn2] = createMemoryPair();
  const dave = remoteEnd(daveOut);
  node.addConnection(new FrameConnection(ourIn2));
  await Bun.sleep(5);
  old.end();
  await waitFor(() => !node.isNeighbour(hex(bob)));
  dave.write(
    encodeHello({ nodeId: new Uint8Array(32).fill(0xda), listenPort: 9003, nick: "dave" }),
  );
  await waitFor(() => downs.length === 1);
  expect(downs[0]?.nick).toBe("bob");
  expect(ups.map((u) => u.nick)).toEqual(["bob", "dave"]);
});

test("a link closed with no handshake under way is reported at once", async () => {
  const { node, downs } = setup();
  const [bobOut, ourIn] = createMemoryPair();
  const old = remoteEnd(bobOut);
  node.addConnection(new FrameConnection(ourIn));
  old.write(bobHello);
  await waitFor(() => node.isNeighbour(hex(bob)));
  old.destroy();
  await waitFor(() => downs.length === 1);
  expect(downs[0]).toMatchObject({ nick: "bob", by: "remote", graceful: false });
});

describe("holdsPeerDown", () => {
  const link = (overrides: Partial<ClosedLink> = {}): ClosedLink => ({
    established: true,
    superseded: false,
    neighbour: {
      nodeId: "b0".repeat(32),
      nick: "bob",
      address: { host: "10.0.0.2", port: 9001 },
      direction: "inbound",
      since: 0,
      listenPort: 9001,
      pendingBytes: 0,
      rttMs: undefined,
    },
    nick: "bob",
    graceful: false,
    remoteReason: undefined,
    ...overrides,
  });
  const fin: ConnectionClosed = { by: "remote", reason: "closed" };
  test.each<[string, ClosedLink, ConnectionClosed, number, boolean]>([
    [
      "held: closed by the remote without a word, a handshake from its host under way",
      link(),
      fin,
      1,
      true,
    ],
    ["held: the same, by a reset", link(), { by: "remote", reason: "connection reset" }, 2, true],
    ["at once: no handshake from its host", link(), fin, 0, false],
    ["at once: it said BYE", link({ remoteReason: "quit", graceful: true }), fin, 1, false],
    ["at once: it sent an ERROR", link({ remoteReason: "slow consumer" }), fin, 1, false],
    [
      "at once: silent for 30 s",
      link({ remoteReason: "timed out: no frame for 30 s" }),
      fin,
      1,
      false,
    ],
    ["at once: we closed it", link(), { by: "local", reason: "quit" }, 1, false],
    [
      "at once: we closed it for a violation",
      link(),
      { by: "local", reason: "x", code: WireErrorCode.BadFrame },
      1,
      false,
    ],
    [
      "never: not the neighbour's link (a duplicate, a handshake)",
      link({ established: false }),
      fin,
      1,
      false,
    ],
  ])("%s", (_name, closed, info, handshakes, held) => {
    expect(holdsPeerDown(closed, info, handshakes)).toBe(held);
  });
});

describe("LinkHandover", () => {
  const down = (nodeId: string, host: string): PeerDown => ({
    nodeId,
    nick: "bob",
    address: { host, port: 9001 },
    direction: "inbound",
    since: 5,
    listenPort: 9001,
    pendingBytes: 0,
    rttMs: undefined,
    reason: "connection reset",
    by: "remote",
    graceful: false,
  });
  const closed: ClosedLink = {
    established: true,
    superseded: false,
    neighbour: down("b0".repeat(32), "10.0.0.2"),
    nick: "bob",
    graceful: false,
    remoteReason: undefined,
  };
  const fin: ConnectionClosed = { by: "remote", reason: "closed" };

  test("held while a handshake from its host is under way; taken over if the same node comes up", () => {
    const h = new LinkHandover();
    const bob = down("b0".repeat(32), "10.0.0.2");
    expect(h.closed(closed, fin, bob, 1)).toBeUndefined();
    expect(h.released(() => 1)).toEqual([]);
    expect(h.resumed(bob.nodeId)).toBe(bob);
    // Taken over: nothing left to report.
    expect(h.released(() => 0)).toEqual([]);
  });

  test("released when its host has no handshake left; reported at once with none under way", () => {
    const h = new LinkHandover();
    const bob = down("b0".repeat(32), "10.0.0.2");
    const carol = down("c0".repeat(32), "10.0.0.3");
    expect(h.closed(closed, fin, bob, 1)).toBeUndefined();
    expect(h.closed(closed, fin, carol, 1)).toBeUndefined();
    expect(h.released((host) => (host === "10.0.0.2" ? 0 : 1))).toEqual([bob]);
    expect(h.released(() => 0)).toEqual([carol]);
    expect(h.closed(closed, fin, bob, 0)).toBe(bob);
    expect(h.resumed(bob.nodeId)).toBeUndefined();
  });

  test("clear forgets everything held (the node is closing)", () => {
    const h = new LinkHandover();
    expect(h.closed(closed, fin, down("b0".repeat(32), "10.0.0.2"), 1)).toBeUndefined();
    h.clear();
    expect(h.released(() => 0)).toEqual([]);
  });
});
