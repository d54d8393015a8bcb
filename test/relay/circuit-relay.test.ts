import { describe, expect, test } from "bun:test";
import {
  CircuitCloseCode,
  type CircuitMessage,
  CircuitOp,
  decodeCircuit,
} from "../../src/protocol/circuit.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { hex } from "../../src/protocol/hex.ts";
import {
  CIRCUIT_MAX_DURATION_MS,
  CIRCUIT_OPEN_TIMEOUT_MS,
  CircuitIds,
  type CircuitLimits,
  CircuitRelay,
  type CircuitRelayAction,
  MAX_CIRCUITS_PER_PEER,
  REFUSAL_REPORT_INTERVAL_MS,
} from "../../src/relay/circuit-relay.ts";

// The relay's id sorts below every peer's: on each of its links it names circuits with
// even ids and its neighbours with odd ones.
const SELF = "11".repeat(32);
const A = "aa".repeat(32);
const B = "bb".repeat(32);
const C = "cc".repeat(32);
const D = "dd".repeat(32);
const T0 = 1_700_000_000_000;

interface Sent {
  readonly to: string;
  readonly message: CircuitMessage;
}

/** A relay whose neighbours are `neighbours`, with the actions of each event decoded. */
function relay(
  options: {
    neighbours?: string[];
    relaying?: () => boolean;
    limits?: Partial<CircuitLimits>;
  } = {},
) {
  const neighbours = new Set(options.neighbours ?? [A, B, C, D]);
  const r = new CircuitRelay({
    ids: new CircuitIds(SELF),
    relaying: options.relaying ?? (() => true),
    isNeighbour: (id) => neighbours.has(id),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  let actions: CircuitRelayAction[] = [];
  const sent = () =>
    actions.flatMap((a): Sent[] => {
      if (a.type !== "send") return [];
      expect(a.frame[4]).toBe(FrameType.Circuit);
      return [{ to: a.to, message: decodeCircuit(a.frame.subarray(5)) }];
    });
  const run = (event: Parameters<CircuitRelay["handle"]>[0], now = T0) => {
    actions = r.handle(event, now);
    return sent();
  };
  /** Opens `from`→`to` with `id` and has the target accept: the target's leg id. */
  const connect = (from: string, id: number, to: string, now = T0): number => {
    const [incoming] = run({ type: "open", from, circuit: id, target: to }, now);
    expect(incoming?.to).toBe(to);
    expect(incoming?.message.op).toBe(CircuitOp.Incoming);
    const leg = incoming?.message.circuit as number;
    expect(run({ type: "accept", from: to, circuit: leg }, now)).toEqual([
      { to: from, message: { op: CircuitOp.Accept, circuit: id } },
    ]);
    return leg;
  };
  return { r, run, connect, actions: () => actions, neighbours };
}

const close = (to: string, circuit: number, code: CircuitCloseCode) => ({
  to,
  message: expect.objectContaining({ op: CircuitOp.Close, circuit, code }),
});

describe("circuit relay - forwarding", () => {
  test("translates ids both ways and forwards DATA unread", () => {
    const { r, run } = relay();
    const [incoming] = run({ type: "open", from: A, circuit: 1, target: B });
    expect(incoming?.to).toBe(B);
    const m = incoming?.message;
    if (m?.op !== CircuitOp.Incoming) throw new Error("expected INCOMING");
    expect(hex(m.from)).toBe(A);
    expect(m.circuit % 2).toBe(0); // the relay's id on its link to B
    const leg = m.circuit;
    expect(run({ type: "accept", from: B, circuit: leg })).toEqual([
      { to: A, message: { op: CircuitOp.Accept, circuit: 1 } },
    ]);
    const there = run({ type: "data", from: A, circuit: 1, data: Uint8Array.of(1, 2, 3) });
    expect(there).toEqual([
      { to: B, message: { op: CircuitOp.Data, circuit: leg, data: Uint8Array.of(1, 2, 3) } },
    ]);
    const back = run({ type: "data", from: B, circuit: leg, data: Uint8Array.of(9) });
    expect(back).toEqual([
      { to: A, message: { op: CircuitOp.Data, circuit: 1, data: Uint8Array.of(9) } },
    ]);
    expect(r.stats).toMatchObject({ accepted: 1, bytesRelayed: 4 });
    expect(r.size).toBe(1);
    expect(r.circuitsOf(A)).toBe(1);
    expect(r.circuitsOf(B)).toBe(1);
  });

  test("a CLOSE from one leg goes to the other, with its code and reason", () => {
    const { r, run, connect } = relay();
    const leg = connect(A, 1, B);
    expect(
      run({ type: "close", from: B, circuit: leg, code: CircuitCloseCode.Closed, reason: "bye" }),
    ).toEqual([
      {
        to: A,
        message: { op: CircuitOp.Close, circuit: 1, code: CircuitCloseCode.Closed, reason: "bye" },
      },
    ]);
    expect(r.size).toBe(0);
    expect(r.circuitsOf(A)).toBe(0);
    // DATA a moment after the close is dropped, and counted.
    expect(run({ type: "data", from: A, circuit: 1, data: Uint8Array.of(1) })).toEqual([]);
    expect(r.stats.unknownData).toBe(1);
  });

  test("the target refusing reaches the initiator", () => {
    const { r, run } = relay();
    const [incoming] = run({ type: "open", from: A, circuit: 3, target: B });
    const leg = incoming?.message.circuit as number;
    const refused = run({
      type: "close",
      from: B,
      circuit: leg,
      code: CircuitCloseCode.TargetRefused,
      reason: "no",
    });
    expect(refused).toEqual([close(A, 3, CircuitCloseCode.TargetRefused)]);
    expect(r.size).toBe(0);
  });

  test("DATA on an unknown id is ignored but counted; ACCEPT and CLOSE on one are ignored", () => {
    const { r, run } = relay();
    expect(run({ type: "data", from: A, circuit: 5, data: Uint8Array.of(1) })).toEqual([]);
    expect(run({ type: "accept", from: A, circuit: 5 })).toEqual([]);
    expect(
      run({ type: "close", from: A, circuit: 5, code: CircuitCloseCode.Closed, reason: "" }),
    ).toEqual([]);
    expect(r.stats.unknownData).toBe(1);
  });

  test("each OPEN gets its own id on the target's link", () => {
    const { run } = relay();
    const legs = [1, 3, 5].map(
      (id) => run({ type: "open", from: A, circuit: id, target: B })[0]?.message.circuit,
    );
    expect(new Set(legs).size).toBe(3);
  });
});

describe("circuit relay - rules of the legs", () => {
  test("DATA before ACCEPT closes both legs (Protocol)", () => {
    const { r, run } = relay();
    const leg = run({ type: "open", from: A, circuit: 1, target: B })[0]?.message.circuit as number;
    expect(run({ type: "data", from: A, circuit: 1, data: Uint8Array.of(1) })).toEqual([
      close(A, 1, CircuitCloseCode.Protocol),
      close(B, leg, CircuitCloseCode.Protocol),
    ]);
    expect(r.size).toBe(0);
  });

  test("ACCEPT from the initiator, or twice, closes both legs (Protocol)", () => {
    const { run, connect } = relay();
    const leg = run({ type: "open", from: A, circuit: 1, target: B })[0]?.message.circuit as number;
    expect(run({ type: "accept", from: A, circuit: 1 })).toEqual([
      close(A, 1, CircuitCloseCode.Protocol),
      close(B, leg, CircuitCloseCode.Protocol),
    ]);
    const leg2 = connect(A, 3, B);
    expect(run({ type: "accept", from: B, circuit: leg2 })).toEqual([
      close(A, 3, CircuitCloseCode.Protocol),
      close(B, leg2, CircuitCloseCode.Protocol),
    ]);
  });

  test("an OPEN reusing a live id closes that circuit (Protocol)", () => {
    const { r, run, connect } = relay();
    const leg = connect(A, 1, B);
    expect(run({ type: "open", from: A, circuit: 1, target: C })).toEqual([
      close(A, 1, CircuitCloseCode.Protocol),
      close(B, leg, CircuitCloseCode.Protocol),
    ]);
    expect(r.size).toBe(0);
  });

  test("an OPEN with an id of the relay's parity is answered CLOSE Protocol, nothing opened", () => {
    const { r, run } = relay();
    expect(run({ type: "open", from: A, circuit: 2, target: B })).toEqual([
      close(A, 2, CircuitCloseCode.Protocol),
    ]);
    expect(r.size).toBe(0);
  });
});

describe("circuit relay - limits", () => {
  test("relaying off: NoRoute", () => {
    let on = false;
    const { r, run } = relay({ relaying: () => on });
    expect(run({ type: "open", from: A, circuit: 1, target: B })).toEqual([
      close(A, 1, CircuitCloseCode.NoRoute),
    ]);
    on = true;
    expect(run({ type: "open", from: A, circuit: 3, target: B })[0]?.to).toBe(B);
    expect(r.stats.refused).toBe(1);
  });

  test("a target that is not a neighbour, or the initiator itself: NoRoute", () => {
    const { run } = relay({ neighbours: [A, B] });
    expect(run({ type: "open", from: A, circuit: 1, target: C })).toEqual([
      close(A, 1, CircuitCloseCode.NoRoute),
    ]);
    expect(run({ type: "open", from: A, circuit: 3, target: A })).toEqual([
      close(A, 3, CircuitCloseCode.NoRoute),
    ]);
    expect(run({ type: "open", from: A, circuit: 5, target: SELF })).toEqual([
      close(A, 5, CircuitCloseCode.NoRoute),
    ]);
  });

  test(`a peer may be an end of ${MAX_CIRCUITS_PER_PEER} circuits at one relay; the next is Refused`, () => {
    const { r, run, connect } = relay();
    for (let i = 0; i < MAX_CIRCUITS_PER_PEER; i++) connect(A, 2 * i + 1, B);
    expect(r.circuitsOf(A)).toBe(MAX_CIRCUITS_PER_PEER);
    expect(run({ type: "open", from: A, circuit: 101, target: C })).toEqual([
      close(A, 101, CircuitCloseCode.Refused),
    ]);
    // B is full too, as a target: C cannot reach it, but can reach D.
    expect(run({ type: "open", from: C, circuit: 1, target: B })).toEqual([
      close(C, 1, CircuitCloseCode.Refused),
    ]);
    expect(run({ type: "open", from: C, circuit: 3, target: D })[0]?.to).toBe(D);
    expect(r.stats.refused).toBe(2);
  });

  test("the relay is full at maxCircuits", () => {
    const { r, run } = relay({ limits: { maxCircuits: 2 } });
    run({ type: "open", from: A, circuit: 1, target: B });
    run({ type: "open", from: C, circuit: 1, target: D });
    expect(r.size).toBe(2);
    expect(run({ type: "open", from: A, circuit: 3, target: D })).toEqual([
      close(A, 3, CircuitCloseCode.Refused),
    ]);
  });

  test("bytes, both directions summed: past the limit both legs get ByteLimit", () => {
    const { r, run, connect } = relay({ limits: { maxBytes: 100 } });
    const leg = connect(A, 1, B);
    expect(run({ type: "data", from: A, circuit: 1, data: new Uint8Array(60) })).toHaveLength(1);
    expect(run({ type: "data", from: B, circuit: leg, data: new Uint8Array(40) })).toHaveLength(1);
    expect(run({ type: "data", from: A, circuit: 1, data: new Uint8Array(1) })).toEqual([
      close(A, 1, CircuitCloseCode.ByteLimit),
      close(B, leg, CircuitCloseCode.ByteLimit),
    ]);
    expect(r.stats).toMatchObject({ bytesRelayed: 100, limited: 1 });
    expect(r.size).toBe(0);
  });

  test("duration: closed with DurationLimit once open that long", () => {
    const { r, run, connect } = relay();
    const leg = connect(A, 1, B);
    expect(run({ type: "tick" }, T0 + CIRCUIT_MAX_DURATION_MS - 1)).toEqual([]);
    expect(run({ type: "tick" }, T0 + CIRCUIT_MAX_DURATION_MS)).toEqual([
      close(A, 1, CircuitCloseCode.DurationLimit),
      close(B, leg, CircuitCloseCode.DurationLimit),
    ]);
    expect(r.size).toBe(0);
  });

  test("an OPEN not accepted within 10 s is closed on both legs; a late ACCEPT is ignored", () => {
    const { r, run } = relay();
    const leg = run({ type: "open", from: A, circuit: 1, target: B })[0]?.message.circuit as number;
    expect(run({ type: "tick" }, T0 + CIRCUIT_OPEN_TIMEOUT_MS - 1)).toEqual([]);
    expect(run({ type: "tick" }, T0 + CIRCUIT_OPEN_TIMEOUT_MS)).toEqual([
      close(A, 1, CircuitCloseCode.TargetRefused),
      close(B, leg, CircuitCloseCode.TargetRefused),
    ]);
    expect(run({ type: "accept", from: B, circuit: leg })).toEqual([]);
    expect(r.size).toBe(0);
  });

  test("limits are overridable", () => {
    const { r } = relay({ limits: { maxBytes: 5, openTimeoutMs: 1 } });
    expect(r.limits).toMatchObject({ maxBytes: 5, openTimeoutMs: 1, maxCircuits: 64 });
  });
});

describe("circuit relay - neighbours lost", () => {
  test("losing one end closes the other leg (LinkLost), not the lost one", () => {
    const { r, run, connect } = relay();
    connect(A, 1, B);
    const leg2 = connect(C, 1, B);
    connect(C, 3, D);
    expect(run({ type: "lost", nodeId: B })).toEqual([
      close(A, 1, CircuitCloseCode.LinkLost),
      close(C, 1, CircuitCloseCode.LinkLost),
    ]);
    expect(r.size).toBe(1);
    expect(r.circuitsOf(B)).toBe(0);
    expect(leg2 % 2).toBe(0);
  });

  test("losing the initiator of an opening circuit closes the target's leg", () => {
    const { r, run } = relay();
    const leg = run({ type: "open", from: A, circuit: 1, target: B })[0]?.message.circuit as number;
    expect(run({ type: "lost", nodeId: A })).toEqual([close(B, leg, CircuitCloseCode.LinkLost)]);
    expect(r.size).toBe(0);
  });

  test("shutdown closes every circuit on both legs", () => {
    const { r, run, connect } = relay();
    const leg = connect(A, 1, B);
    expect(run({ type: "shutdown" })).toEqual([
      close(A, 1, CircuitCloseCode.Closed),
      close(B, leg, CircuitCloseCode.Closed),
    ]);
    expect(r.size).toBe(0);
  });
});

describe("circuit relay - refusals are reported once a minute per peer", () => {
  test("first reported, the rest counted, and the count told with the next report", () => {
    const { run, actions } = relay({ relaying: () => false });
    const refusal = () => actions().find((a) => a.type === "refused");
    run({ type: "open", from: A, circuit: 1, target: B });
    expect(refusal()).toMatchObject({
      from: A,
      code: CircuitCloseCode.NoRoute,
      report: true,
      more: 0,
    });
    run({ type: "open", from: A, circuit: 3, target: B }, T0 + 1000);
    expect(refusal()).toMatchObject({ report: false });
    run({ type: "open", from: C, circuit: 1, target: B }, T0 + 2000);
    expect(refusal()).toMatchObject({ from: C, report: true });
    run({ type: "open", from: A, circuit: 5, target: B }, T0 + REFUSAL_REPORT_INTERVAL_MS);
    expect(refusal()).toMatchObject({ from: A, report: true, more: 1 });
  });
});

describe("circuit ids", () => {
  test("the lower node id of a link uses even ids, the other odd ones", () => {
    const low = new CircuitIds(A);
    const high = new CircuitIds(B);
    const mine = [low.next(B), low.next(B), low.next(C)];
    expect(mine.every((id) => id % 2 === 0)).toBe(true);
    expect(new Set(mine).size).toBe(3);
    expect(high.next(A) % 2).toBe(1);
    expect(high.next(C) % 2).toBe(0);
    expect(low.ours(B, 4)).toBe(true);
    expect(low.ours(B, 5)).toBe(false);
    expect(high.ours(A, 5)).toBe(true);
  });
});
