import { describe, expect, test } from "bun:test";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodePunch, type PunchMessage, PunchOp } from "../../src/protocol/reach.ts";
import {
  MAX_PUNCH_ATTEMPTS,
  PUNCH_ANSWER_TIMEOUT_MS,
  PUNCH_RETRY_MS,
  type PunchAction,
  PunchCoordinator,
  type PunchEvent,
  type PunchRole,
} from "../../src/reach/punch-coordinator.ts";

const A_HOST = "203.0.113.1";
const B_HOST = "198.51.100.2";

function decoded(frame: Uint8Array): PunchMessage {
  const [f] = new FrameDecoder().push(frame);
  if (!f) throw new Error("no frame");
  return decodePunch(f.payload);
}

/** What happened, in order: who did what when. */
interface Entry {
  readonly at: number;
  readonly who: PunchRole;
  readonly action: PunchAction;
}

interface SimOptions {
  /** One-way delay of the relayed link, ms. */
  readonly latencyMs?: number;
  /** Whether a dial of this attempt connects. */
  readonly connects?: (attempt: number, role: PunchRole) => boolean;
  /** How long a dial takes to resolve, ms. */
  readonly dialMs?: number;
  /** Frames from this side are lost. */
  readonly drop?: PunchRole;
  readonly aHosts?: readonly string[];
  readonly bHosts?: readonly string[];
}

/**
 * Two coordinators joined by a simulated relayed link: frames arrive after
 * `latencyMs`, ports are reserved at once, dials resolve after `dialMs`, wake-ups fire
 * when due. Time only moves by events: no timers, no sockets.
 */
class Sim {
  now = 0;
  readonly log: Entry[] = [];
  readonly a: PunchCoordinator;
  readonly b: PunchCoordinator;
  private queue: Array<{ at: number; seq: number; who: PunchRole; event: PunchEvent }> = [];
  private seq = 0;
  private nextPort = 40_000;

  constructor(readonly options: SimOptions = {}) {
    const aHosts = options.aHosts ?? [A_HOST];
    const bHosts = options.bHosts ?? [B_HOST];
    this.a = new PunchCoordinator("initiator", () => aHosts);
    this.b = new PunchCoordinator("responder", () => bHosts);
  }

  start(): void {
    this.apply("responder", { type: "start" });
    this.apply("initiator", { type: "start" });
  }

  /** Runs events until none are left (or `until`). */
  run(until = Number.POSITIVE_INFINITY): void {
    for (;;) {
      this.queue.sort((x, y) => x.at - y.at || x.seq - y.seq);
      const next = this.queue[0];
      if (!next || next.at > until) break;
      this.queue.shift();
      this.now = next.at;
      this.apply(next.who, next.event);
    }
  }

  actions(who: PunchRole, type: PunchAction["type"]): Entry[] {
    return this.log.filter((e) => e.who === who && e.action.type === type);
  }

  frames(who: PunchRole): Array<{ at: number; message: PunchMessage }> {
    return this.actions(who, "send").map((e) => ({
      at: e.at,
      message: decoded((e.action as Extract<PunchAction, { type: "send" }>).frame),
    }));
  }

  private apply(who: PunchRole, event: PunchEvent): void {
    const self = who === "initiator" ? this.a : this.b;
    for (const action of self.handle(event, this.now)) {
      this.log.push({ at: this.now, who, action });
      this.perform(who, action);
    }
  }

  private push(at: number, who: PunchRole, event: PunchEvent): void {
    this.queue.push({ at, seq: this.seq++, who, event });
  }

  private perform(who: PunchRole, action: PunchAction): void {
    const other: PunchRole = who === "initiator" ? "responder" : "initiator";
    const { latencyMs = 40, dialMs = 30, connects = () => true } = this.options;
    switch (action.type) {
      case "send":
        if (this.options.drop !== who) {
          const message = decoded(action.frame);
          this.push(this.now + latencyMs, other, { type: "frame", message });
        }
        return;
      case "reserve":
        this.push(this.now, who, {
          type: "reserved",
          attempt: action.attempt,
          port: this.nextPort++,
        });
        return;
      case "dial":
        this.push(this.now + dialMs, who, {
          type: "dial-result",
          attempt: action.attempt,
          remote: action.remote,
          ok: connects(action.attempt, who),
        });
        return;
      case "wake":
        this.push(action.at, who, { type: "wake" });
        return;
      default:
        return;
    }
  }
}

describe("punch coordinator", () => {
  test("punch - happy path: CONNECT both ways, SYNC, both dial at the same moment", () => {
    const sim = new Sim({ latencyMs: 40 });
    sim.start();
    sim.run();

    const aFrames = sim.frames("initiator").map((f) => [f.at, f.message.op]);
    const bFrames = sim.frames("responder").map((f) => [f.at, f.message.op]);
    expect(aFrames).toEqual([
      [0, PunchOp.Connect],
      [80, PunchOp.Sync], // the responder's CONNECT came back after one round trip
    ]);
    expect(bFrames).toEqual([[40, PunchOp.Connect]]);

    // The initiator measured RTT 80 ms and dials RTT/2 after SYNC: when SYNC reaches B.
    const aDials = sim.actions("initiator", "dial");
    const bDials = sim.actions("responder", "dial");
    expect(aDials.map((d) => d.at)).toEqual([120]);
    expect(bDials.map((d) => d.at)).toEqual([120]);

    // Each dials the other's predicted address from its own reserved port.
    const portOf = (who: PunchRole) => {
      const message = sim.frames(who)[0]?.message;
      if (message?.op !== PunchOp.Connect) throw new Error("no CONNECT");
      return message.addresses[0]?.port;
    };
    const aPort = portOf("initiator");
    const bPort = portOf("responder");
    expect(aDials[0]?.action).toEqual({
      type: "dial",
      remote: { host: B_HOST, port: bPort as number },
      localPort: aPort as number,
      role: "initiator",
      attempt: 1,
    });
    expect(bDials[0]?.action).toEqual({
      type: "dial",
      remote: { host: A_HOST, port: aPort as number },
      localPort: bPort as number,
      role: "responder",
      attempt: 1,
    });

    expect(sim.actions("initiator", "direct")).toHaveLength(1);
    expect(sim.actions("responder", "direct")).toHaveLength(1);
    expect(sim.a.state).toEqual({ role: "initiator", phase: "direct", attempt: 1 });
    expect(sim.a.describe()).toBe("direct");
    expect(sim.b.describe()).toBe("direct");
  });

  test("punch - shows the attempt while punching", () => {
    const sim = new Sim({ latencyMs: 40 });
    expect(sim.b.describe()).toBe("relayed");
    sim.start();
    sim.run(100);
    expect(sim.a.describe()).toBe("punching, attempt 1");
    expect(sim.b.describe()).toBe("punching, attempt 1");
  });

  test("punch - dials every predicted address of the other side", () => {
    const sim = new Sim({ bHosts: [B_HOST, "192.0.2.9", "10.0.0.5"], connects: () => false });
    sim.start();
    sim.run(200);
    const firstRound = sim.actions("initiator", "dial").filter((d) => d.at < 200);
    expect(firstRound.map((d) => (d.action as { remote: Endpoint }).remote.host)).toEqual([
      B_HOST,
      "192.0.2.9",
      "10.0.0.5",
    ]);
  });

  test("punch - a failed attempt is retried after 1 s; success on the second", () => {
    const sim = new Sim({ connects: (attempt) => attempt === 2 });
    sim.start();
    sim.run();
    const reserves = sim.actions("initiator", "reserve");
    expect(reserves.map((r) => (r.action as { attempt: number }).attempt)).toEqual([1, 2]);
    // Dials leave at 120 ms and fail at 150 ms (dialMs 30): the next attempt 1 s later.
    expect(reserves.map((r) => r.at)).toEqual([0, 150 + PUNCH_RETRY_MS]);
    expect(sim.a.state.phase).toBe("direct");
    expect(sim.b.state).toMatchObject({ phase: "direct", attempt: 2 });
  });

  test("punch - at most 3 attempts, then both stay relayed", () => {
    const sim = new Sim({ connects: () => false });
    sim.start();
    sim.run();
    const attempts = sim
      .actions("initiator", "dial")
      .map((d) => (d.action as { attempt: number }).attempt);
    expect(attempts).toEqual([1, 2, 3]);
    expect(sim.actions("responder", "dial")).toHaveLength(MAX_PUNCH_ATTEMPTS);
    expect(sim.frames("initiator").at(-1)?.message).toEqual({
      op: PunchOp.GiveUp,
      attempt: 3,
    });
    expect(sim.a.state).toEqual({
      role: "initiator",
      phase: "failed",
      attempt: 3,
      reason: "punch failed after 3 attempts",
    });
    expect(sim.a.describe()).toBe("relayed: punch failed after 3 attempts");
    expect(sim.b.describe()).toBe("relayed: punch failed after 3 attempts");
    expect(sim.actions("initiator", "gave-up")).toHaveLength(1);
    expect(sim.actions("responder", "gave-up")).toHaveLength(1);
  });

  test("punch - no answer to CONNECT: each attempt times out, then gives up", () => {
    const sim = new Sim({ drop: "responder" });
    sim.start();
    sim.run();
    const connects = sim.frames("initiator").filter((f) => f.message.op === PunchOp.Connect);
    expect(connects.map((c) => c.at)).toEqual([
      0,
      PUNCH_ANSWER_TIMEOUT_MS + PUNCH_RETRY_MS,
      2 * (PUNCH_ANSWER_TIMEOUT_MS + PUNCH_RETRY_MS),
    ]);
    expect(sim.actions("initiator", "dial")).toHaveLength(0);
    expect(sim.a.describe()).toBe("relayed: punch failed after 3 attempts");
  });

  test("punch - initiator without an observed address does not punch", () => {
    const sim = new Sim({ aHosts: [] });
    sim.start();
    sim.run();
    expect(sim.log.filter((e) => e.action.type !== "gave-up")).toEqual([]);
    expect(sim.a.state.phase).toBe("skipped");
    expect(sim.a.describe()).toBe("relayed: no observed address of ours");
  });

  test("punch - responder without an observed address answers GIVE_UP", () => {
    const sim = new Sim({ bHosts: [] });
    sim.start();
    sim.run();
    expect(sim.frames("responder").map((f) => f.message)).toEqual([
      { op: PunchOp.GiveUp, attempt: 1 },
    ]);
    expect(sim.actions("initiator", "dial")).toHaveLength(0);
    expect(sim.actions("responder", "dial")).toHaveLength(0);
    expect(sim.a.describe()).toBe("relayed: the peer gave up");
    expect(sim.b.describe()).toBe("relayed: no observed address of ours");
  });

  test("punch - only the first dial that connects is used", () => {
    const c = new PunchCoordinator("responder", () => [B_HOST]);
    const two = [
      { host: A_HOST, port: 1000 },
      { host: "192.0.2.1", port: 1000 },
    ];
    c.handle({ type: "frame", message: { op: PunchOp.Connect, attempt: 1, addresses: two } }, 0);
    c.handle({ type: "reserved", attempt: 1, port: 2000 }, 0);
    const dials = c.handle({ type: "frame", message: { op: PunchOp.Sync, attempt: 1 } }, 10);
    expect(dials.filter((d) => d.type === "dial")).toHaveLength(2);
    const first = c.handle({ type: "dial-result", attempt: 1, remote: two[1]!, ok: true }, 20);
    expect(first).toEqual([{ type: "direct", remote: two[1]!, attempt: 1 }]);
    expect(c.handle({ type: "dial-result", attempt: 1, remote: two[0]!, ok: true }, 21)).toEqual(
      [],
    );
  });

  test("punch - stale and out-of-place frames are ignored", () => {
    const c = new PunchCoordinator("responder", () => [B_HOST]);
    const addr = [{ host: A_HOST, port: 1000 }];
    // SYNC before any CONNECT, and a CONNECT past the attempt limit.
    expect(c.handle({ type: "frame", message: { op: PunchOp.Sync, attempt: 1 } }, 0)).toEqual([]);
    const tooMany = { op: PunchOp.Connect, attempt: MAX_PUNCH_ATTEMPTS + 1, addresses: addr };
    expect(c.handle({ type: "frame", message: tooMany } as PunchEvent, 0)).toEqual([]);
    c.handle({ type: "frame", message: { op: PunchOp.Connect, attempt: 2, addresses: addr } }, 0);
    // A replayed (older) CONNECT, a SYNC of another attempt, a stale reservation.
    const old = { op: PunchOp.Connect, attempt: 1, addresses: addr } as const;
    expect(c.handle({ type: "frame", message: old }, 1)).toEqual([]);
    expect(c.handle({ type: "reserved", attempt: 1, port: 5 }, 1)).toEqual([]);
    c.handle({ type: "reserved", attempt: 2, port: 2000 }, 1);
    expect(c.handle({ type: "frame", message: { op: PunchOp.Sync, attempt: 1 } }, 2)).toEqual([]);
    expect(c.state).toMatchObject({ phase: "awaiting-sync", attempt: 2 });
    // An early wake-up (one since replaced, or a timer a millisecond early) changes
    // nothing: it only sleeps again until the deadline, so the punch cannot hang.
    expect(c.handle({ type: "wake" }, 3)).toEqual([{ type: "wake", at: 10_001 }]);
    expect(c.state).toMatchObject({ phase: "awaiting-sync", attempt: 2 });
  });

  test("punch - the initiator ignores a second start and a SYNC", () => {
    const c = new PunchCoordinator("initiator", () => [A_HOST]);
    expect(c.handle({ type: "start" }, 0)).toEqual([{ type: "reserve", attempt: 1 }]);
    expect(c.handle({ type: "start" }, 0)).toEqual([]);
    c.handle({ type: "reserved", attempt: 1, port: 1234 }, 0);
    expect(c.handle({ type: "frame", message: { op: PunchOp.Sync, attempt: 1 } }, 1)).toEqual([]);
    expect(c.state.phase).toBe("awaiting-connect");
  });

  test("punch - a port that cannot be reserved fails the attempt; the next one is tried", () => {
    const c = new PunchCoordinator("initiator", () => [A_HOST]);
    c.handle({ type: "start" }, 0);
    expect(c.handle({ type: "reserve-failed", attempt: 1 }, 0)).toEqual([
      { type: "wake", at: PUNCH_RETRY_MS },
    ]);
    expect(c.handle({ type: "wake" }, PUNCH_RETRY_MS)).toEqual([{ type: "reserve", attempt: 2 }]);
  });

  test("punch - a wait that would exceed the cap is capped", () => {
    const c = new PunchCoordinator("initiator", () => [A_HOST]);
    c.handle({ type: "start" }, 0);
    c.handle({ type: "reserved", attempt: 1, port: 1234 }, 0);
    const connect = {
      op: PunchOp.Connect,
      attempt: 1,
      addresses: [{ host: B_HOST, port: 1 }],
    } as const;
    const actions = c.handle({ type: "frame", message: connect }, 9_000);
    expect(actions.find((a) => a.type === "wake")).toEqual({ type: "wake", at: 9_000 + 2_500 });
  });
});
