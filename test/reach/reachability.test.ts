import { describe, expect, test } from "bun:test";
import type { Direction, Endpoint } from "../../src/protocol/endpoint.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodeReach, type ReachMessage, ReachOp } from "../../src/protocol/reach.ts";
import {
  DIALBACK_ANSWER_TIMEOUT_MS,
  DIALBACK_EVERY_MS,
  MAX_DIALBACKS_IN_FLIGHT,
  MAX_OBSERVED_ADDRESSES,
  REACH_MIN_RECHECK_MS,
  REACH_RECHECK_MS,
  type ReachAction,
  Reachability,
} from "../../src/reach/reachability.ts";

const LISTEN_PORT = 9000;
const T0 = 1_700_000_000_000;

function reachability(listenHost = "0.0.0.0", listenPort = LISTEN_PORT): Reachability {
  return new Reachability({ listenHost, listenPort });
}

interface Up {
  readonly direction?: Direction;
  readonly local?: Endpoint;
  readonly remote?: Endpoint;
  readonly relayed?: boolean;
}

function up(r: Reachability, nodeIdHex: string, at: number, link: Up = {}): ReachAction[] {
  return r.handle(
    {
      type: "up",
      nodeIdHex,
      direction: link.direction ?? "outbound",
      local: link.local ?? { host: "10.0.0.2", port: 40_000 },
      remote: link.remote ?? { host: "198.51.100.1", port: 9000 },
      relayed: link.relayed ?? false,
    },
    at,
  );
}

function frame(r: Reachability, from: string, message: ReachMessage, at: number) {
  return r.handle({ type: "frame", from, message }, at);
}

/** The REACH messages among `actions`, decoded, with their recipients. */
function sent(actions: readonly ReachAction[]): Array<{ to: string; message: ReachMessage }> {
  const out: Array<{ to: string; message: ReachMessage }> = [];
  for (const a of actions) {
    if (a.type !== "send") continue;
    const [f] = new FrameDecoder().push(a.frame);
    if (!f) throw new Error("no frame");
    out.push({ to: a.to, message: decodeReach(f.payload) });
  }
  return out;
}

const asked = (actions: readonly ReachAction[]) =>
  sent(actions)
    .filter((s) => s.message.op === ReachOp.DialBack)
    .map((s) => s.to);

const dialBack = (port = LISTEN_PORT) => ({ op: ReachOp.DialBack, port }) as const;
const result = (ok: boolean, port = LISTEN_PORT) =>
  ({ op: ReachOp.DialBackResult, port, ok }) as const;
const observed = (host: string, port: number) => ({ op: ReachOp.Observed, host, port }) as const;

describe("observed addresses", () => {
  test("reachability - tells a new neighbour the address its socket comes from, unmapped", () => {
    const r = reachability();
    const actions = up(r, "a", T0, { remote: { host: "::ffff:198.51.100.9", port: 51_000 } });
    expect(sent(actions)).toContainEqual({
      to: "a",
      message: { op: ReachOp.Observed, host: "198.51.100.9", port: 51_000 },
    });
  });

  test("reachability - learns the IPs it is seen at, most reported first", () => {
    const r = reachability();
    for (const [id, host] of [
      ["a", "203.0.113.5"],
      ["b", "192.168.1.20"],
      ["c", "203.0.113.5"],
    ] as const) {
      up(r, id, T0);
      frame(r, id, observed(host, 40_000), T0);
    }
    expect(r.observedHosts()).toEqual(["203.0.113.5", "192.168.1.20"]);
    expect(r.summary().observed.map((o) => [o.host, o.reports])).toEqual([
      ["203.0.113.5", 2],
      ["192.168.1.20", 1],
    ]);
  });

  test("reachability - loopback observations come last among the hosts to punch", () => {
    const r = reachability();
    up(r, "a", T0);
    frame(r, "a", observed("127.0.0.1", 40_000), T0);
    frame(r, "a", observed("127.0.0.1", 40_000), T0); // once per link: not counted
    up(r, "b", T0);
    frame(r, "b", observed("203.0.113.5", 40_000), T0);
    expect(r.observedHosts()).toEqual(["203.0.113.5", "127.0.0.1"]);
    expect(r.summary().observed.find((o) => o.host === "127.0.0.1")?.reports).toBe(1);
  });

  test("reachability - keeps at most 8 observed IPs, the most reported", () => {
    const r = reachability();
    up(r, "x", T0);
    up(r, "y", T0);
    frame(r, "x", observed("203.0.113.1", 1), T0);
    frame(r, "y", observed("203.0.113.1", 1), T0);
    for (let i = 0; i < 20; i++) {
      up(r, `n${i}`, T0 + i);
      frame(r, `n${i}`, observed(`198.51.100.${i + 1}`, 1), T0 + i);
    }
    const hosts = r.observedHosts();
    expect(hosts).toHaveLength(MAX_OBSERVED_ADDRESSES);
    expect(hosts[0]).toBe("203.0.113.1");
    expect(hosts).toContain("198.51.100.20"); // the newest stay, the oldest single reports go
    expect(hosts).not.toContain("198.51.100.1");
  });

  test("reachability - NAT kind from links we dialled: port-preserving", () => {
    const r = reachability();
    up(r, "a", T0, { direction: "outbound", local: { host: "10.0.0.2", port: 40_000 } });
    frame(r, "a", observed("203.0.113.5", 40_000), T0);
    expect(r.natKind()).toBe("port-preserving");
    expect(r.summary().observed[0]).toMatchObject({ preserving: 1, changing: 0 });
  });

  test("reachability - NAT kind from links we dialled: port-changing (symmetric)", () => {
    const r = reachability();
    up(r, "a", T0, { direction: "outbound", local: { host: "10.0.0.2", port: 40_000 } });
    frame(r, "a", observed("203.0.113.5", 61_234), T0);
    up(r, "b", T0, { direction: "outbound", local: { host: "10.0.0.2", port: 40_001 } });
    frame(r, "b", observed("203.0.113.5", 61_300), T0);
    expect(r.natKind()).toBe("port-changing");
    expect(r.summary().observed[0]).toMatchObject({ preserving: 0, changing: 2 });
  });

  test("reachability - NAT kind: inbound links do not count; our own IP means no NAT", () => {
    const r = reachability();
    up(r, "a", T0, { direction: "inbound", local: { host: "10.0.0.2", port: 9000 } });
    frame(r, "a", observed("203.0.113.5", 61_234), T0);
    expect(r.natKind()).toBe("unknown");
    up(r, "b", T0, { direction: "outbound", local: { host: "10.0.0.2", port: 40_000 } });
    frame(r, "b", observed("10.0.0.2", 40_000), T0);
    expect(r.natKind()).toBe("none");
  });
});

describe("reachability checks", () => {
  test("reachability - unknown until asked neighbours answer; any dial-back that connects: public", () => {
    const r = reachability();
    expect(r.status).toBe("unknown");
    expect(asked(up(r, "a", T0, { direction: "inbound" }))).toEqual(["a"]);
    expect(asked(up(r, "b", T0 + 10))).toEqual(["b"]);
    expect(asked(up(r, "c", T0 + 20))).toEqual([]); // two asked: enough
    expect(r.status).toBe("unknown");
    frame(r, "a", result(false), T0 + 100);
    expect(r.status).toBe("unknown"); // b has not answered
    frame(r, "b", result(true), T0 + 200);
    expect(r.status).toBe("public");
  });

  test("reachability - every answer a failure: private", () => {
    const r = reachability();
    up(r, "a", T0);
    up(r, "b", T0);
    frame(r, "a", result(false), T0 + 100);
    frame(r, "b", result(false), T0 + 100);
    expect(r.status).toBe("private");
  });

  test("reachability - an unanswered ask times out; a failure and a silence: private", () => {
    const r = reachability();
    up(r, "a", T0);
    up(r, "b", T0);
    frame(r, "a", result(false), T0 + 100);
    expect(r.handle({ type: "tick" }, T0 + DIALBACK_ANSWER_TIMEOUT_MS - 1)).toEqual([]);
    r.handle({ type: "tick" }, T0 + DIALBACK_ANSWER_TIMEOUT_MS);
    expect(r.status).toBe("private");
  });

  test("reachability - a check prefers links we dialled, oldest first", () => {
    const r = reachability();
    up(r, "in-old", T0, { direction: "inbound" });
    frame(r, "in-old", result(true), T0 + 1);
    up(r, "out-1", T0 + 10, { direction: "outbound" });
    up(r, "out-2", T0 + 20, { direction: "outbound" });
    up(r, "in-new", T0 + 30, { direction: "inbound" });
    const again = r.handle({ type: "tick" }, T0 + REACH_RECHECK_MS);
    expect(asked(again)).toEqual(["out-1", "out-2"]);
  });

  test("reachability - checks again every 10 minutes, keeping the last result meanwhile", () => {
    const r = reachability();
    up(r, "a", T0);
    frame(r, "a", result(true), T0 + 1);
    expect(asked(r.handle({ type: "tick" }, T0 + REACH_RECHECK_MS - 1))).toEqual([]);
    expect(asked(r.handle({ type: "tick" }, T0 + REACH_RECHECK_MS))).toEqual(["a"]);
    expect(r.status).toBe("public");
    frame(r, "a", result(false), T0 + REACH_RECHECK_MS + 1);
    expect(r.status).toBe("private");
  });

  test("reachability - seen at a new IP: checks again, at most once a minute", () => {
    const r = reachability();
    up(r, "a", T0);
    frame(r, "a", observed("203.0.113.5", 1), T0);
    frame(r, "a", result(false), T0 + 1);
    up(r, "b", T0 + 1000);
    frame(r, "b", result(false), T0 + 1001);
    up(r, "c", T0 + 2000);
    // A new IP within the minute: no ask yet...
    expect(asked(frame(r, "c", observed("198.51.100.7", 1), T0 + 2000))).toEqual([]);
    // ...but once the minute has passed.
    expect(asked(r.handle({ type: "tick" }, T0 + REACH_MIN_RECHECK_MS))).toHaveLength(2);
    up(r, "d", T0 + 2 * REACH_MIN_RECHECK_MS);
    const fresh = frame(r, "d", observed("192.0.2.44", 1), T0 + 2 * REACH_MIN_RECHECK_MS);
    expect(asked(fresh)).toHaveLength(2);
  });

  test("reachability - an asked neighbour that leaves is replaced by another", () => {
    const r = reachability();
    up(r, "a", T0);
    up(r, "b", T0);
    up(r, "c", T0);
    expect(asked(r.handle({ type: "down", nodeIdHex: "a" }, T0 + 5))).toEqual(["c"]);
  });

  test("reachability - answers nobody asked for, or for another port, are ignored", () => {
    const r = reachability();
    up(r, "a", T0);
    up(r, "b", T0);
    up(r, "c", T0);
    frame(r, "c", result(true), T0 + 1); // c was not asked
    frame(r, "a", result(true, 9001), T0 + 1); // not our port
    expect(r.status).toBe("unknown");
    frame(r, "a", result(false), T0 + 2);
    frame(r, "a", result(true), T0 + 3); // answered already
    frame(r, "b", result(false), T0 + 4);
    expect(r.status).toBe("private");
  });

  test.each(["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"])(
    "reachability - listening on loopback %s: local, nothing asked",
    (host) => {
      const r = reachability(host);
      expect(r.status).toBe("local");
      const actions = up(r, "a", T0, { remote: { host: "127.0.0.1", port: 50_000 } });
      expect(asked(actions)).toEqual([]);
      // Still tells the neighbour where it sees it: that is for the neighbour.
      expect(sent(actions).map((s) => s.message.op)).toEqual([ReachOp.Observed]);
      expect(asked(r.handle({ type: "tick" }, T0 + REACH_RECHECK_MS))).toEqual([]);
      expect(r.status).toBe("local");
    },
  );

  test("reachability - not listening: private, nothing asked", () => {
    const r = reachability("0.0.0.0", 0);
    expect(r.status).toBe("private");
    expect(asked(up(r, "a", T0))).toEqual([]);
  });
});

describe("relayed links", () => {
  test("reachability - a relayed neighbour is not told, not asked, not believed, not dialled", () => {
    const r = reachability();
    const actions = up(r, "v", T0, {
      relayed: true,
      remote: { host: "203.0.113.99", port: 9000 }, // the relay
    });
    expect(actions).toEqual([]);
    frame(r, "v", observed("192.0.2.1", 5), T0 + 1);
    expect(r.observedHosts()).toEqual([]);
    expect(frame(r, "v", dialBack(), T0 + 2)).toEqual([
      { type: "refused", nodeIdHex: "v", reason: expect.stringContaining("relay") },
    ]);
  });
});

describe("answering dial-backs", () => {
  test("reachability - dials the asker's own IP on the asked port, nothing else", () => {
    const r = reachability();
    up(r, "a", T0, { remote: { host: "::ffff:198.51.100.9", port: 51_000 } });
    expect(frame(r, "a", dialBack(7777), T0 + 1)).toEqual([
      { type: "dial-back", nodeIdHex: "a", endpoint: { host: "198.51.100.9", port: 7777 } },
    ]);
  });

  test("reachability - reflection refused: the dial target is always the link's remote IP", () => {
    const r = reachability();
    // The asker claims (by OBSERVED, by its HELLO, by anything) other addresses: ignored.
    up(r, "a", T0, { remote: { host: "198.51.100.9", port: 51_000 } });
    frame(r, "a", observed("192.0.2.200", 80), T0);
    const actions = frame(r, "a", dialBack(80), T0 + 1);
    const dials = actions.filter((x) => x.type === "dial-back");
    expect(dials).toHaveLength(1);
    expect(dials[0]).toMatchObject({ endpoint: { host: "198.51.100.9", port: 80 } });
  });

  test("reachability - a DIALBACK from a node that is not a neighbour does nothing", () => {
    const r = reachability();
    expect(frame(r, "stranger", dialBack(), T0)).toEqual([]);
  });

  test("reachability - at most one dial-back per neighbour per 30 s", () => {
    const r = reachability();
    up(r, "a", T0);
    expect(frame(r, "a", dialBack(), T0)[0]?.type).toBe("dial-back");
    r.handle({ type: "dial-back-done", nodeIdHex: "a", port: LISTEN_PORT, ok: true }, T0 + 10);
    expect(frame(r, "a", dialBack(), T0 + DIALBACK_EVERY_MS - 1)[0]?.type).toBe("refused");
    // Leaving and coming back does not reset it.
    r.handle({ type: "down", nodeIdHex: "a" }, T0 + 100);
    up(r, "a", T0 + 200);
    expect(frame(r, "a", dialBack(), T0 + 300)[0]?.type).toBe("refused");
    r.handle({ type: "tick" }, T0 + DIALBACK_EVERY_MS);
    expect(frame(r, "a", dialBack(), T0 + DIALBACK_EVERY_MS)[0]?.type).toBe("dial-back");
  });

  test("reachability - at most 4 dial-backs in flight", () => {
    const r = reachability();
    const ids = ["a", "b", "c", "d", "e"];
    for (const id of ids) up(r, id, T0);
    const kinds = ids.map((id) => frame(r, id, dialBack(), T0 + 1)[0]?.type);
    expect(kinds).toEqual([...Array(MAX_DIALBACKS_IN_FLIGHT).fill("dial-back"), "refused"]);
    r.handle({ type: "dial-back-done", nodeIdHex: "a", port: LISTEN_PORT, ok: false }, T0 + 5);
    // e was refused without being served: it may ask again at once.
    expect(frame(r, "e", dialBack(), T0 + 6)[0]?.type).toBe("dial-back");
  });

  test("reachability - a finished dial-back is answered to the asker, if still linked", () => {
    const r = reachability();
    up(r, "a", T0);
    up(r, "b", T0);
    frame(r, "a", dialBack(4444), T0);
    frame(r, "b", dialBack(5555), T0);
    const done = r.handle({ type: "dial-back-done", nodeIdHex: "a", port: 4444, ok: true }, T0);
    expect(sent(done)).toEqual([
      { to: "a", message: { op: ReachOp.DialBackResult, port: 4444, ok: true } },
    ]);
    r.handle({ type: "down", nodeIdHex: "b" }, T0);
    expect(r.handle({ type: "dial-back-done", nodeIdHex: "b", port: 5555, ok: false }, T0)).toEqual(
      [],
    );
  });
});
