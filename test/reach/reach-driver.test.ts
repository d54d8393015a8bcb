import { afterEach, describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { Emitter } from "../../src/node/emitter.ts";
import type { LinkSockets, NeighbourInfo, NodeEvents } from "../../src/node/node-events.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import type { Direction, Endpoint } from "../../src/protocol/endpoint.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import {
  decodeReach,
  encodeReachDialBack,
  encodeReachDialBackResult,
  encodeReachObserved,
  type ReachMessage,
  ReachOp,
} from "../../src/protocol/reach.ts";
import {
  type PunchDial,
  Reach,
  type ReachNode,
  tcpDialBack,
} from "../../src/reach/reach-driver.ts";
import type { ByteStream } from "../../src/transport/byte-stream.ts";
import { listenTcp, type TcpListener } from "../../src/transport/tcp.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";

/** A node as the driver sees it, with links made by hand; two can be wired together. */
class FakeNode implements ReachNode {
  readonly events = new Emitter<NodeEvents>();
  readonly sent: Array<{ to: string; frame: Uint8Array }> = [];
  private readonly handlers = new Map<number, (from: string, frame: Frame) => void>();
  private readonly links = new Map<string, { info: NeighbourInfo; sockets: LinkSockets }>();
  /** Other fake nodes by id: frames sent to them are delivered (a microtask later). */
  readonly wired = new Map<string, FakeNode>();

  constructor(readonly nodeIdHex: string) {}

  handle(type: number, handler: (from: string, frame: Frame) => void): void {
    this.handlers.set(type, handler);
  }

  sendTo(to: string, frame: Uint8Array): boolean {
    if (!this.links.has(to)) return false;
    this.sent.push({ to, frame });
    const other = this.wired.get(to);
    if (other) queueMicrotask(() => other.receive(this.nodeIdHex, frame));
    return true;
  }

  neighbours(): NeighbourInfo[] {
    return [...this.links.values()].map((l) => l.info);
  }

  linkSockets(nodeIdHex: string): LinkSockets | undefined {
    return this.links.get(nodeIdHex)?.sockets;
  }

  link(nodeIdHex: string, direction: Direction, local: Endpoint, remote: Endpoint, via = false) {
    const relay = { relayNodeId: "relay", relayAddress: remote };
    const sockets: LinkSockets = { direction, local, remote, ...(via ? { via: relay } : {}) };
    const info: NeighbourInfo = {
      nodeId: nodeIdHex,
      nick: nodeIdHex,
      address: remote,
      direction,
      since: 0,
      listenPort: remote.port,
      pendingBytes: 0,
      rttMs: undefined,
      ...(via ? { via: relay } : {}),
    };
    this.links.set(nodeIdHex, { info, sockets });
    this.events.emit("peer-up", info);
  }

  unlink(nodeIdHex: string): void {
    const link = this.links.get(nodeIdHex);
    if (!link) return;
    this.links.delete(nodeIdHex);
    this.events.emit("peer-down", { ...link.info, reason: "gone", by: "remote", graceful: false });
  }

  receive(from: string, bytes: Uint8Array): void {
    for (const frame of new FrameDecoder().push(bytes))
      this.handlers.get(frame.type)?.(from, frame);
  }

  /** REACH messages sent to `to`, decoded. */
  reachTo(to: string): ReachMessage[] {
    const out: ReachMessage[] = [];
    for (const s of this.sent) {
      if (s.to !== to) continue;
      const [f] = new FrameDecoder().push(s.frame);
      if (f?.type === FrameType.Reach) out.push(decodeReach(f.payload));
    }
    return out;
  }
}

/** Lets promise callbacks (dials, reservations, deliveries) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Moves the fake clock by `ms` in steps, letting promises settle between. */
async function advance(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await settle();
  }
}

const reaches: Reach[] = [];
afterEach(() => {
  for (const r of reaches.splice(0)) r.close();
});

function reach(
  node: FakeNode,
  clock: FakeClock,
  extra: Partial<ConstructorParameters<typeof Reach>[0]> = {},
) {
  const r = new Reach({
    node,
    listenHost: "0.0.0.0",
    listenPort: 9000,
    clock,
    logger: testLogger().logger,
    dialBack: async () => false,
    ...extra,
  });
  reaches.push(r);
  return r;
}

const fakeStream = () => {
  let destroyed = false;
  const stream = {
    destroy() {
      destroyed = true;
    },
  } as unknown as ByteStream;
  return { stream, destroyed: () => destroyed };
};

describe("reach driver", () => {
  test("reach driver - tells a new neighbour where it sees it, and asks it for a dial-back", () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    reach(node, clock);
    node.link(
      "a",
      "outbound",
      { host: "10.0.0.2", port: 40_000 },
      { host: "198.51.100.1", port: 9000 },
    );
    expect(node.reachTo("a")).toEqual([
      { op: ReachOp.Observed, host: "198.51.100.1", port: 9000 },
      { op: ReachOp.DialBack, port: 9000 },
    ]);
  });

  test("reach driver - neighbours already linked when it starts are counted", () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    node.link(
      "a",
      "inbound",
      { host: "10.0.0.2", port: 9000 },
      { host: "198.51.100.1", port: 51_000 },
    );
    reach(node, clock);
    expect(node.reachTo("a").map((m) => m.op)).toEqual([ReachOp.Observed, ReachOp.DialBack]);
  });

  test("reach driver - dials back the asker's own IP and answers with the outcome", async () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    const dialled: Endpoint[] = [];
    reach(node, clock, {
      dialBack: async (endpoint) => {
        dialled.push(endpoint);
        return true;
      },
    });
    node.link(
      "a",
      "inbound",
      { host: "10.0.0.2", port: 9000 },
      { host: "::ffff:198.51.100.1", port: 51_000 },
    );
    node.receive("a", encodeReachDialBack(7000));
    await settle();
    expect(dialled).toEqual([{ host: "198.51.100.1", port: 7000 }]);
    expect(node.reachTo("a").at(-1)).toEqual({ op: ReachOp.DialBackResult, port: 7000, ok: true });
  });

  test("reach driver - status: public once a dial-back connects; observed IP and NAT kind", () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    const r = reach(node, clock);
    expect(r.status.reachability).toBe("unknown");
    node.link(
      "a",
      "outbound",
      { host: "10.0.0.2", port: 40_000 },
      { host: "198.51.100.1", port: 9000 },
    );
    node.receive("a", encodeReachObserved({ host: "203.0.113.5", port: 40_000 }));
    node.receive("a", encodeReachDialBackResult(9000, true));
    expect(r.status.reachability).toBe("public");
    expect(r.status.natKind).toBe("port-preserving");
    expect(r.status.observed.map((o) => o.host)).toEqual(["203.0.113.5"]);
  });

  test("reach driver - a malformed REACH frame is a protocol error (the node closes the link)", () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    reach(node, clock);
    node.link(
      "a",
      "outbound",
      { host: "10.0.0.2", port: 40_000 },
      { host: "198.51.100.1", port: 9000 },
    );
    const bad = Uint8Array.of(0, 0, 0, 4, FrameType.Reach, 2, 0, 0); // DIALBACK port 0
    expect(() => node.receive("a", bad)).toThrow(ProtocolError);
  });

  test("reach driver - no punch for a direct neighbour, nor without a way to punch", () => {
    const clock = new FakeClock();
    const node = new FakeNode("me");
    const withoutDial = reach(node, clock);
    node.link(
      "v",
      "outbound",
      { host: "10.0.0.2", port: 1 },
      { host: "203.0.113.9", port: 9000 },
      true,
    );
    expect(withoutDial.startPunch("v")).toBeUndefined();
    const able = reach(node, clock, {
      reservePort: () => 50_000,
      punchDial: async () => ({ ok: false, error: new Error("no") }),
    });
    node.link("d", "outbound", { host: "10.0.0.2", port: 2 }, { host: "198.51.100.3", port: 9000 });
    expect(able.startPunch("d")).toBeUndefined();
    expect(able.startPunch("v")).toMatchObject({ role: "initiator" });
  });
});

describe("reach driver punching", () => {
  /**
   * A and B, each linked directly to a public peer P that tells them where it sees
   * them, and to each other through a relay (A opened the circuit).
   */
  function pair(punchDial: (side: "a" | "b") => PunchDial) {
    const clock = new FakeClock();
    const a = new FakeNode("aa");
    const b = new FakeNode("bb");
    a.wired.set("bb", b);
    b.wired.set("aa", a);
    const punched: Array<{ side: string; nodeIdHex: string; role: string }> = [];
    let port = 50_000;
    const make = (node: FakeNode, side: "a" | "b") =>
      reach(node, clock, {
        reservePort: async () => port++,
        punchDial: punchDial(side),
        onPunched: (_stream, info) => punched.push({ side, ...info }),
      });
    const ra = make(a, "a");
    const rb = make(b, "b");
    a.link("p", "outbound", { host: "10.0.1.2", port: 40_000 }, { host: "192.0.2.1", port: 9000 });
    a.receive("p", encodeReachObserved({ host: "203.0.113.1", port: 40_000 }));
    b.link("p", "outbound", { host: "10.0.2.2", port: 40_000 }, { host: "192.0.2.1", port: 9000 });
    b.receive("p", encodeReachObserved({ host: "198.51.100.2", port: 40_000 }));
    const relay = { host: "192.0.2.1", port: 9000 };
    a.link("bb", "outbound", { host: "10.0.1.2", port: 40_001 }, relay, true);
    b.link("aa", "inbound", { host: "10.0.2.2", port: 40_001 }, relay, true);
    return { clock, a, b, ra, rb, punched };
  }

  test("reach driver - two relayed peers punch: the opener as initiator, streams handed up", async () => {
    const dials: Array<{ side: string; remote: Endpoint; localPort: number }> = [];
    const { ra, rb, punched } = pair((side) => async ({ remote, localPort }) => {
      dials.push({ side, remote, localPort });
      return { ok: true, stream: fakeStream().stream };
    });
    expect(ra.startPunch("bb")).toMatchObject({ role: "initiator", phase: "reserving" });
    expect(rb.startPunch("aa")).toMatchObject({ role: "responder", phase: "idle" });
    await settle();
    // Both dial the other's predicted address (in the fake, RTT is 0: at once).
    expect(dials.map((d) => [d.side, d.remote.host]).sort()).toEqual([
      ["a", "198.51.100.2"],
      ["b", "203.0.113.1"],
    ]);
    expect(punched.sort((x, y) => x.side.localeCompare(y.side))).toEqual([
      { side: "a", nodeIdHex: "bb", role: "initiator" },
      { side: "b", nodeIdHex: "aa", role: "responder" },
    ]);
    expect(ra.punchState("bb")).toBe("direct");
    expect(rb.punchState("aa")).toBe("direct");
  });

  test("reach driver - the responder answers a CONNECT even before its own startPunch", async () => {
    const { ra, rb, punched } = pair(() => async () => ({ ok: true, stream: fakeStream().stream }));
    ra.startPunch("bb");
    await settle();
    expect(punched.map((p) => p.role).sort()).toEqual(["initiator", "responder"]);
    expect(rb.startPunch("aa")).toMatchObject({ phase: "direct" });
  });

  test("reach driver - every dial failing: 3 attempts, then stays relayed", async () => {
    let attempts = 0;
    const { clock, ra, rb, punched } = pair((side) => async () => {
      if (side === "a") attempts++;
      return { ok: false, error: new Error("timed out") };
    });
    ra.startPunch("bb");
    rb.startPunch("aa");
    await settle();
    expect(ra.punchState("bb")).toBe("punching, attempt 1");
    await advance(clock, 5_000);
    expect(attempts).toBe(3);
    expect(punched).toEqual([]);
    expect(ra.punchState("bb")).toBe("relayed: punch failed after 3 attempts");
    expect(rb.punchState("aa")).toBe("relayed: punch failed after 3 attempts");
  });

  test("reach driver - only one connected dial is handed up; a second is closed", async () => {
    const streams: Array<{ side: string } & ReturnType<typeof fakeStream>> = [];
    const { b, ra, punched } = pair((side) => async () => {
      const s = { side, ...fakeStream() };
      streams.push(s);
      return { ok: true, stream: s.stream };
    });
    // B is seen at a second IP too: A dials both of its addresses, and both connect.
    b.link("q", "outbound", { host: "10.0.2.2", port: 40_002 }, { host: "192.0.2.7", port: 9000 });
    b.receive("q", encodeReachObserved({ host: "198.51.100.99", port: 40_002 }));
    ra.startPunch("bb");
    await settle();
    expect(punched).toHaveLength(2);
    const ofA = streams.filter((s) => s.side === "a");
    expect(ofA).toHaveLength(2);
    expect(ofA.map((s) => s.destroyed())).toEqual([false, true]);
  });

  test("reach driver - a dial that connects after the relayed link is gone is closed", async () => {
    let release: (() => void) | undefined;
    const late = fakeStream();
    const { a, ra, punched } = pair((side) => async () => {
      if (side === "a") {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return { ok: true, stream: late.stream };
      }
      return { ok: false, error: new Error("refused") };
    });
    ra.startPunch("bb");
    await settle();
    a.unlink("bb");
    release?.();
    await settle();
    expect(late.destroyed()).toBe(true);
    expect(punched.filter((p) => p.side === "a")).toEqual([]);
    expect(ra.punchState("bb")).toBeUndefined();
  });
});

describe("tcpDialBack", () => {
  let listener: TcpListener | undefined;
  afterEach(() => listener?.close());

  test("reach driver - the TCP dial-back connects to an open port and not to a closed one", async () => {
    const accepted: ByteStream[] = [];
    listener = listenTcp({
      host: "127.0.0.1",
      port: 0,
      onStream: (stream) => {
        accepted.push(stream);
        stream.start({ data() {}, close() {} });
      },
    });
    expect(await tcpDialBack({ host: "127.0.0.1", port: listener.port })).toBe(true);
    const closedPort = listener.port;
    listener.close();
    listener = undefined;
    for (const s of accepted) s.destroy();
    expect(await tcpDialBack({ host: "127.0.0.1", port: closedPort })).toBe(false);
  });
});
