import { describe, expect, test } from "bun:test";
import { Heartbeat } from "../../src/node/heartbeat.ts";
import {
  check,
  DEAD_AFTER_IDLE_MS,
  HEARTBEAT_INTERVAL_MS,
  type LivenessAction,
  type LivenessState,
  livenessFrom,
  newLiveness,
  PING_AFTER_IDLE_MS,
  pinged,
  ponged,
  RTT_REFRESH_MS,
  resumed,
} from "../../src/node/liveness.ts";
import { FakeClock } from "../helpers/fake-clock.ts";

/** A link established at `at` with one frame (its HELLO) in. */
function established(at = 0): LivenessState {
  const state = newLiveness(at);
  livenessFrom(state, 1, at);
  return state;
}

/** Checks a link that has received `frames` so far, once a second from `from` to `to` (inclusive); returns the non-"none" actions by time. */
function run(
  state: LivenessState,
  from: number,
  to: number,
  frames: (now: number) => number,
  onPing?: (now: number) => void,
): Array<[number, LivenessAction]> {
  const seen: Array<[number, LivenessAction]> = [];
  for (let now = from; now <= to; now += HEARTBEAT_INTERVAL_MS) {
    const action = check(state, frames(now), false, now);
    if (action.action === "none") continue;
    seen.push([now, action]);
    if (action.action === "ping") onPing?.(now);
    if (action.action === "dead") break;
  }
  return seen;
}

describe("liveness", () => {
  test.each([
    [PING_AFTER_IDLE_MS - 1, "none"],
    [PING_AFTER_IDLE_MS, "ping"],
    [DEAD_AFTER_IDLE_MS - 1, "ping"],
    [DEAD_AFTER_IDLE_MS, "dead"],
    [DEAD_AFTER_IDLE_MS + 5000, "dead"],
  ] as const)("a link silent for %d ms: %s", (idle, action) => {
    expect(check(established(), 1, false, idle).action).toBe(action);
  });

  test.each([
    [DEAD_AFTER_IDLE_MS, "timed out: no frame for 30 s"],
    [DEAD_AFTER_IDLE_MS + 400, "timed out: no frame for 30 s"],
    [DEAD_AFTER_IDLE_MS + 1600, "timed out: no frame for 32 s"],
  ])("a link silent for %d ms is dead with the reason %p", (idle, reason) => {
    expect(check(established(), 1, false, idle)).toEqual({ action: "dead", reason });
  });

  test("a silent link is pinged at 10 s, pinged again when that PING is given up, dead at 30 s", () => {
    const state = established();
    let nonce = 0n;
    const actions = run(
      state,
      1000,
      60_000,
      () => 1,
      (now) => pinged(state, ++nonce, now),
    );
    expect(actions.map(([at, a]) => [at, a.action])).toEqual([
      [10_000, "ping"],
      [20_000, "ping"],
      [30_000, "dead"],
    ]);
  });

  test("any new frame resets idleness", () => {
    const state = established();
    expect(check(state, 1, false, 9000).action).toBe("none");
    expect(check(state, 2, false, 9500).action).toBe("none"); // a frame came in
    expect(check(state, 2, false, 19_499).action).toBe("none");
    expect(check(state, 2, false, 19_500).action).toBe("ping");
    expect(check(state, 2, false, 39_499).action).not.toBe("dead");
    expect(check(state, 2, false, 39_500).action).toBe("dead");
  });

  test("a busy link is pinged every 30 s for a fresh round trip, and never judged dead", () => {
    const state = established();
    let nonce = 0n;
    const actions = run(
      state,
      1000,
      100_000,
      (now) => now, // a frame every millisecond
      (now) => {
        pinged(state, ++nonce, now);
        ponged(state, nonce, now + 20);
      },
    );
    // The refresh counts from the last PONG: 30 s after 30.02 s is due at the 61 s tick.
    expect(actions.map(([at, a]) => [at, a.action])).toEqual([
      [RTT_REFRESH_MS, "ping"],
      [2 * RTT_REFRESH_MS + 1000, "ping"],
      [3 * RTT_REFRESH_MS + 2000, "ping"],
    ]);
    expect(state.rttMs).toBe(20);
  });

  test.each([
    ["the right nonce sets the round trip and ends the PING", 42n, 35, undefined],
    ["a wrong nonce does nothing", 41n, undefined, { nonce: 42n, sentAt: 10_000 }],
  ])("a PONG with %s", (_name, nonce, rttMs, ping) => {
    const state = established();
    pinged(state, 42n, 10_000);
    ponged(state, nonce, 10_035);
    expect(state.rttMs).toBe(rttMs);
    expect(state.ping).toEqual(ping);
    expect(state.lastRttAt).toBe(rttMs === undefined ? 0 : 10_035);
  });

  test("a PONG with no PING outstanding does nothing", () => {
    const state = established();
    ponged(state, 0n, 5000);
    expect(state).toEqual(established());
  });

  test("a PING unanswered for 10 s is given up so a new one can go; its late PONG is ignored", () => {
    const state = established();
    const busy = (now: number) => now;
    expect(check(state, busy(RTT_REFRESH_MS), false, RTT_REFRESH_MS).action).toBe("ping");
    pinged(state, 1n, RTT_REFRESH_MS);
    // Due, but one PING is out: no second one.
    expect(check(state, busy(35_000), false, 35_000).action).toBe("none");
    expect(check(state, busy(39_999), false, 39_999).action).toBe("none");
    expect(check(state, busy(40_000), false, 40_000).action).toBe("ping");
    expect(state.ping).toBeUndefined();
    pinged(state, 2n, 40_000);
    ponged(state, 1n, 40_100);
    expect(state.rttMs).toBeUndefined();
    ponged(state, 2n, 40_050);
    expect(state.rttMs).toBe(50);
  });

  test("a paused link's silence does not count, however long", () => {
    const state = established();
    for (let now = 1000; now <= 100_000; now += 1000)
      expect(check(state, 1, true, now).action).toBe("none");
    // Reading again at 100 s: the overdue round trip is measured at once, then the
    // silence counts from the end of the pause: dead at 130 s, not at once.
    const actions = run(
      state,
      101_000,
      200_000,
      () => 1,
      (now) => pinged(state, BigInt(now), now),
    );
    expect(actions.map(([at, a]) => [at, a.action])).toEqual([
      [101_000, "ping"],
      [111_000, "ping"],
      [121_000, "ping"],
      [100_000 + DEAD_AFTER_IDLE_MS, "dead"],
    ]);
  });

  test("resuming reading restarts the count of silence", () => {
    const state = established();
    resumed(state, 25_000);
    const actions = run(
      state,
      26_000,
      100_000,
      () => 1,
      (now) => pinged(state, BigInt(now), now),
    );
    expect(actions.at(-1)).toEqual([
      25_000 + DEAD_AFTER_IDLE_MS,
      { action: "dead", reason: "timed out: no frame for 30 s" },
    ]);
  });

  test("livenessFrom counts silence from the handshake, not from the next check", () => {
    // The connection opened at 0; its HELLO (frame 1) came at 4 s; checks every second
    // from 4.5 s. Counting from the first check would ping at 14.5 s, not 14 s.
    const state = newLiveness(0);
    livenessFrom(state, 1, 4000);
    const actions: number[] = [];
    for (let now = 4500; now <= 14_500; now += 500)
      if (check(state, 1, false, now).action === "ping") actions.push(now);
    expect(actions[0]).toBe(14_000);
    expect(check(state, 1, false, 4000 + DEAD_AFTER_IDLE_MS).action).toBe("dead");
  });

  test("livenessFrom takes the frames of the handshake as already seen", () => {
    // Three frames arrived during the handshake (HELLO and two early ones), all before 4 s.
    const state = newLiveness(0);
    livenessFrom(state, 3, 4000);
    expect(state).toMatchObject({ framesSeen: 3, lastFrameAt: 4000 });
    expect(check(state, 3, false, 14_000).action).toBe("ping");
  });
});

describe("Heartbeat", () => {
  function setup(intervalMs = 1000) {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    let onTick = () => {};
    const heartbeat = new Heartbeat(clock, intervalMs, () => {
      ticks.push(clock.now());
      onTick();
    });
    return { clock, ticks, heartbeat, setOnTick: (f: () => void) => (onTick = f) };
  }

  test("ticks once every interval while running", () => {
    const { clock, ticks, heartbeat } = setup(1000);
    heartbeat.start();
    expect(heartbeat.running).toBe(true);
    clock.advance(999);
    expect(ticks).toEqual([]);
    clock.advance(1);
    expect(ticks).toEqual([1000]);
    clock.advance(4000);
    expect(ticks).toEqual([1000, 2000, 3000, 4000, 5000]);
    expect(clock.pending).toBe(1);
  });

  test("nothing ticks before start", () => {
    const { clock, ticks } = setup();
    clock.advance(10_000);
    expect(ticks).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  test("start() twice never runs two timers", () => {
    const { clock, ticks, heartbeat } = setup(1000);
    heartbeat.start();
    clock.advance(500);
    heartbeat.start(); // restarts the interval from now
    expect(clock.pending).toBe(1);
    clock.advance(3000);
    expect(ticks).toEqual([1500, 2500, 3500]);
    expect(clock.pending).toBe(1);
  });

  test("stop() stops it; start() again resumes it", () => {
    const { clock, ticks, heartbeat } = setup(1000);
    heartbeat.start();
    clock.advance(2000);
    heartbeat.stop();
    expect(heartbeat.running).toBe(false);
    expect(clock.pending).toBe(0);
    clock.advance(5000);
    expect(ticks).toEqual([1000, 2000]);
    heartbeat.start();
    clock.advance(1000);
    expect(ticks).toEqual([1000, 2000, 8000]);
  });

  test("stop() inside the tick stops it for good", () => {
    const { clock, ticks, heartbeat, setOnTick } = setup(1000);
    setOnTick(() => {
      if (ticks.length === 3) heartbeat.stop();
    });
    heartbeat.start();
    clock.advance(10_000);
    expect(ticks).toEqual([1000, 2000, 3000]);
    expect(heartbeat.running).toBe(false);
    expect(clock.pending).toBe(0);
  });

  test("start() from inside the tick leaves exactly one timer", () => {
    const { clock, ticks, heartbeat, setOnTick } = setup();
    setOnTick(() => {
      if (ticks.length === 2) heartbeat.start();
    });
    heartbeat.start();
    clock.advance(4000);
    expect(ticks).toEqual([1000, 2000, 3000, 4000]);
    expect(clock.pending).toBe(1);
  });
});
