/**
 * Issue #14 (3): "A peer cut off from everyone doesn't know it." A link we have sent to
 * is probed with a PING; a neighbour that answers nothing for 8 s is not answering; when
 * none answers, the node says so once (`cut-off`), while its links still count.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { FrameConnection } from "../../src/link/connection.ts";
import {
  type CutOffState,
  check,
  controlSent,
  cutOff,
  DEAD_AFTER_IDLE_MS,
  HEARTBEAT_INTERVAL_MS,
  type LivenessState,
  livenessFrom,
  newLiveness,
  PING_AFTER_IDLE_MS,
  PROBE_AFTER_MS,
  pinged,
  ponged,
  survey,
  UNANSWERED_AFTER_MS,
  unanswered,
} from "../../src/node/liveness.ts";
import type { CutOff } from "../../src/node/node-events.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { decodeNonce, encodePong } from "../../src/protocol/control.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** A link established at `at`: one frame in (its HELLO), one out (ours). */
function established(at = 0): LivenessState {
  const state = newLiveness(at);
  livenessFrom(state, 1, at, 1);
  return state;
}

/** A PING goes out on a link whose counters the test keeps: returns the new frames-out count. */
function ping(state: LivenessState, nonce: bigint, now: number, framesOut: number): number {
  pinged(state, nonce, now);
  controlSent(state);
  return framesOut + 1;
}

describe("liveness: probes and unanswered links", () => {
  test("a link we sent to and heard nothing from is probed after 2 s, and unanswered from 8 s", () => {
    const state = established();
    // A message goes out at 0.5 s: the check at 1 s sees it.
    let out = 2;
    expect(check(state, 1, false, 1000, out).action).toBe("none");
    expect(state.waitingSince).toBe(1000);
    expect(check(state, 1, false, 1000 + PROBE_AFTER_MS - 1, out).action).toBe("none");
    expect(check(state, 1, false, 1000 + PROBE_AFTER_MS, out).action).toBe("ping");
    out = ping(state, 1n, 1000 + PROBE_AFTER_MS, out);
    // Still waiting since 1 s, and no second PING while the probe is out.
    expect(check(state, 1, false, 4000, out).action).toBe("none");
    expect(state.waitingSince).toBe(1000);
    expect(unanswered(state, 1000 + UNANSWERED_AFTER_MS - 1)).toBe(false);
    expect(unanswered(state, 1000 + UNANSWERED_AFTER_MS)).toBe(true);
  });

  test("any frame back ends the wait, a PONG or anything else; our PING and PONG are no traffic", () => {
    const state = established();
    let out = 2;
    check(state, 1, false, 1000, out);
    expect(check(state, 1, false, 3000, out).action).toBe("ping");
    out = ping(state, 7n, 3000, out);
    ponged(state, 7n, 3020);
    check(state, 2, false, 4000, out); // the PONG was frame 2
    expect(state.waitingSince).toBeUndefined();
    // It pings us; our PONG is an answer, not a question.
    controlSent(state);
    out++;
    check(state, 3, false, 5000, out);
    expect(state.waitingSince).toBeUndefined();
    expect(unanswered(state, 20_000)).toBe(false);
    // Sent again, answered by a FLOOD this time (no PONG needed).
    check(state, 3, false, 6000, ++out);
    expect(state.waitingSince).toBe(6000);
    check(state, 4, false, 7000, out);
    expect(unanswered(state, 7000 + UNANSWERED_AFTER_MS)).toBe(false);
  });

  test("sent and heard within the same second: the wait starts at that check, not before", () => {
    const state = established();
    check(state, 2, false, 1000, 2);
    expect(state.waitingSince).toBe(1000);
    // Nothing more either way: probed at 3 s, unanswered at 9 s.
    expect(check(state, 2, false, 3000, 2).action).toBe("ping");
    expect(unanswered(state, 1000 + UNANSWERED_AFTER_MS)).toBe(true);
  });

  test("a link with frames both ways every second is never probed nor waited on for long", () => {
    const state = established();
    let out = 1;
    for (let now = 1000; now <= 60_000; now += HEARTBEAT_INTERVAL_MS) {
      const action = check(state, now, false, now, ++out);
      if (action.action === "ping") out = ping(state, BigInt(now), now, out);
      expect(unanswered(state, now)).toBe(false);
      expect(now - (state.waitingSince ?? now)).toBeLessThan(PROBE_AFTER_MS);
    }
  });

  test("an idle link's own PING starts the wait: a dead idle link is unanswered 8 s after it", () => {
    const state = established();
    let out = 1;
    let firstUnanswered: number | undefined;
    for (let now = 1000; now < DEAD_AFTER_IDLE_MS; now += HEARTBEAT_INTERVAL_MS) {
      if (check(state, 1, false, now, out).action === "ping")
        out = ping(state, BigInt(now), now, out);
      if (firstUnanswered === undefined && unanswered(state, now)) firstUnanswered = now;
    }
    // The idle PING at 10 s: unanswered from 18 s, where the link is given up only at 30 s.
    expect(firstUnanswered).toBe(PING_AFTER_IDLE_MS + UNANSWERED_AFTER_MS);
  });

  test("idle links that ping each other never wait for long: a PING and its PONG are the whole talk", () => {
    const us = established();
    let out = 1;
    let inn = 1;
    for (let now = 1000; now <= 120_000; now += HEARTBEAT_INTERVAL_MS) {
      // The other end's idle PING comes every 10 s and we answer it at once.
      if (now % PING_AFTER_IDLE_MS === 5000) {
        inn++;
        controlSent(us);
        out++;
      }
      if (check(us, inn, false, now, out).action === "ping") {
        out = ping(us, BigInt(now), now, out);
        inn++; // its PONG
      }
      expect(unanswered(us, now)).toBe(false);
    }
    expect(out).toBeLessThan(30); // no probe storm: about one PONG per 10 s
  });

  test("a paused link is not waited on: we are not reading its answers", () => {
    const state = established();
    check(state, 1, false, 1000, 2);
    check(state, 1, true, 2000, 3);
    expect(state.waitingSince).toBeUndefined();
    expect(unanswered(state, 30_000)).toBe(false);
  });

  test.each([
    ["no neighbours: not cut off", 0, 0, false],
    ["one of two answering: not cut off", 2, 1, false],
    ["none of two answering: cut off", 2, 2, true],
  ] as const)("cutOff with %s", (_name, neighbours, silent, expected) => {
    const state: CutOffState = { reported: false };
    expect(cutOff(state, neighbours, silent)).toBe(expected);
  });

  test("cutOff says it once, and again only after a neighbour has answered in between", () => {
    const state: CutOffState = { reported: false };
    expect([cutOff(state, 1, 1), cutOff(state, 1, 1), cutOff(state, 1, 1)]).toEqual([
      true,
      false,
      false,
    ]);
    expect(cutOff(state, 2, 1)).toBe(false); // a new neighbour that answers
    expect(cutOff(state, 2, 2)).toBe(true);
  });
});

const nodes: PeerNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

/** A node on a fake clock, with one hand-driven neighbour that has done its HELLO. */
async function withNeighbour() {
  const clock = new FakeClock();
  const node = new PeerNode({ nick: "me", listenPort: 0, logger: testLogger(3).logger, clock });
  nodes.push(node);
  const cutOffs: Array<CutOff & { at: number }> = [];
  node.events.on("cut-off", (c) => cutOffs.push({ ...c, at: clock.now() }));
  const [out, inb] = createMemoryPair();
  node.addConnection(new FrameConnection(inb));
  const decoder = new FrameDecoder();
  const frames: Array<{ type: number; payload: Uint8Array }> = [];
  out.start({
    data: (chunk) => {
      for (const f of decoder.push(chunk))
        frames.push({ type: f.type, payload: f.payload.slice() });
    },
    close() {},
  });
  out.write(encodeHello({ nodeId: new Uint8Array(32).fill(9), listenPort: 4000, nick: "far" }));
  await waitFor(() => node.neighbourCount === 1);
  const pings = () => frames.filter((f) => f.type === FrameType.Ping);
  await waitFor(() => pings().length === 1); // the first PING, for the round trip
  /** Advances the clock a second at a time, as the heartbeat ticks, letting frames cross. */
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(1000);
      await Bun.sleep(2);
    }
  };
  /** The neighbour answers every PING it has been sent so far. */
  const answered = new Set<number>();
  const answer = () => {
    for (const [i, f] of frames.entries()) {
      if (f.type !== FrameType.Ping || answered.has(i)) continue;
      answered.add(i);
      out.write(encodePong(decodeNonce(f.payload, "PING")));
    }
  };
  return { clock, node, cutOffs, pings, advance, answer };
}

test("a node whose only neighbour stops answering while a message is pending is told within 9 s", async () => {
  const { clock, node, cutOffs, pings, advance, answer } = await withNeighbour();
  answer();
  await advance(2000);
  expect(cutOffs).toEqual([]);
  // The neighbour goes silent (frozen, or across a partition); we say something.
  const sentAt = clock.now();
  expect(node.sendChat("anyone?").status).toBe("sent");
  await advance(PROBE_AFTER_MS + 1000);
  expect(pings().length).toBe(2); // the probe went out at once, not at 10 s of silence
  await advance(UNANSWERED_AFTER_MS);
  expect(cutOffs).toHaveLength(1);
  const [first] = cutOffs;
  expect(first?.neighbours).toBe(1);
  expect(first?.silentMs).toBeGreaterThanOrEqual(UNANSWERED_AFTER_MS);
  expect(first?.silentMs).toBeLessThan(UNANSWERED_AFTER_MS + 1000);
  expect((first?.at ?? 0) - sentAt).toBeLessThanOrEqual(UNANSWERED_AFTER_MS + 1000);
  // Once only, though the silence goes on; the link still counts until 30 s of it.
  await advance(5000);
  expect(cutOffs).toHaveLength(1);
  expect(node.neighbourCount).toBe(1);
});

test("a neighbour that answers its probes is never taken for a cut-off, however much is sent", async () => {
  const { node, cutOffs, advance, answer } = await withNeighbour();
  for (let s = 0; s < 40; s++) {
    node.sendChat(`line ${s}`);
    await advance(1000);
    answer();
    await Bun.sleep(2);
  }
  expect(cutOffs).toEqual([]);
  expect(node.neighbourCount).toBe(1);
});

describe("survey: one heartbeat over the neighbours' links", () => {
  /** A link as the heartbeat sees it, established at 0 with one frame each way. */
  const watched = () => {
    const liveness = newLiveness(0);
    livenessFrom(liveness, 1, 0, 1);
    return { liveness, conn: { stats: { framesIn: 1, framesOut: 1 } }, flow: { paused: false } };
  };

  test("idle past the PING mark: pinged; silent past the dead mark: dead, and not a neighbour", () => {
    const idle = watched();
    const gone = watched();
    gone.liveness.lastFrameAt = -DEAD_AFTER_IDLE_MS;
    const result = survey([idle, gone], { reported: false }, PING_AFTER_IDLE_MS);
    expect(result.ping).toEqual([idle]);
    expect(result.dead).toEqual([{ link: gone, reason: "timed out: no frame for 40 s" }]);
    expect(result.cutOff).toBeUndefined();
  });

  test("every neighbour still linked unanswered: cut off, said once, with the shortest silence", () => {
    const a = watched();
    const b = watched();
    const state = { reported: false };
    // We send to both at 1 s; a answers nothing from then, b nothing from 3 s.
    a.conn.stats.framesOut = 2;
    survey([a], state, 1000);
    b.conn.stats.framesOut = 2;
    survey([b], state, 3000);
    const at = 3000 + UNANSWERED_AFTER_MS;
    const first = survey([a, b], state, at);
    expect(first.cutOff).toEqual({ neighbours: 2, silentMs: UNANSWERED_AFTER_MS });
    expect(survey([a, b], state, at + HEARTBEAT_INTERVAL_MS).cutOff).toBeUndefined();
    // One answers: not cut off; silent again later: said again.
    b.conn.stats.framesIn = 2;
    expect(survey([a, b], state, at + 2 * HEARTBEAT_INTERVAL_MS).cutOff).toBeUndefined();
    expect(state.reported).toBe(false);
  });

  test("one neighbour answering is enough: not cut off", () => {
    const quiet = watched();
    const talking = watched();
    const state = { reported: false };
    quiet.conn.stats.framesOut = 2;
    survey([quiet, talking], state, 1000);
    talking.conn.stats.framesIn = 5;
    const result = survey([quiet, talking], state, 1000 + UNANSWERED_AFTER_MS);
    expect(result.cutOff).toBeUndefined();
  });
});
