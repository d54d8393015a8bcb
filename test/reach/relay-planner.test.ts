import { describe, expect, test } from "bun:test";
import {
  MAX_RELAYED_NEIGHBOURS,
  type PlannerView,
  RELAY_AFTER_MS,
  RELAY_RETRY_MS,
  RelayPlanner,
} from "../../src/reach/relay-planner.ts";

/** A view of a node `self` whose neighbours are `neighbours`. */
function view(self: string, neighbours: string[], extra: Partial<PlannerView> = {}): PlannerView {
  return {
    self,
    isNeighbour: (id) => neighbours.includes(id),
    relayedNeighbours: 0,
    wantsMore: true,
    ...extra,
  };
}

describe("the relay planner", () => {
  test("a peer listed by a neighbour, still not linked after a while, is opened through it", () => {
    const planner = new RelayPlanner();
    planner.listed("p", ["b"], 0);
    expect(planner.due(view("a", ["p"]), RELAY_AFTER_MS - 1)).toEqual([]);
    expect(planner.due(view("a", ["p"]), RELAY_AFTER_MS)).toEqual([{ target: "b", relay: "p" }]);
    // Under way: not asked for twice.
    expect(planner.due(view("a", ["p"]), RELAY_AFTER_MS + 1)).toEqual([]);
  });

  test("of the two ends, only the lower id opens", () => {
    const planner = new RelayPlanner();
    planner.listed("p", ["a"], 0);
    expect(planner.due(view("b", ["p"]), RELAY_AFTER_MS)).toEqual([]);
  });

  test("neighbours, ourselves, peers with no relay left, and a node that wants no more are skipped", () => {
    const planner = new RelayPlanner();
    planner.listed("p", ["b", "c", "a"], 0);
    expect(planner.due(view("a", ["p", "b"], { wantsMore: false }), RELAY_AFTER_MS)).toEqual([]);
    planner.lost("p", 0);
    expect(planner.due(view("a", ["b"]), RELAY_AFTER_MS)).toEqual([]);
    planner.listed("q", ["c"], 0);
    expect(planner.due(view("a", ["q", "b"]), RELAY_AFTER_MS)).toEqual([
      { target: "c", relay: "q" },
    ]);
  });

  test("a failed open backs off, doubling; a success resets it", () => {
    const planner = new RelayPlanner();
    planner.listed("p", ["b"], 0);
    const v = view("a", ["p"]);
    let now = RELAY_AFTER_MS;
    expect(planner.due(v, now)).toHaveLength(1);
    planner.opened("b", false, now);
    expect(planner.due(v, now + RELAY_RETRY_MS - 1)).toEqual([]);
    now += RELAY_RETRY_MS;
    expect(planner.due(v, now)).toHaveLength(1);
    planner.opened("b", false, now);
    expect(planner.due(v, now + RELAY_RETRY_MS)).toEqual([]);
    expect(planner.due(v, now + 2 * RELAY_RETRY_MS)).toHaveLength(1);
  });

  test("at most MAX_RELAYED_NEIGHBOURS relayed neighbours", () => {
    const planner = new RelayPlanner();
    const peers = Array.from({ length: 20 }, (_, i) => `b${String(i).padStart(2, "0")}`);
    planner.listed("p", peers, 0);
    const due = planner.due(view("a", ["p"], { relayedNeighbours: 3 }), RELAY_AFTER_MS);
    expect(due).toHaveLength(MAX_RELAYED_NEIGHBOURS - 3);
  });

  test("a relayed neighbour lost is opened again after the same wait", () => {
    const planner = new RelayPlanner();
    planner.listed("p", ["b"], 0);
    expect(planner.due(view("a", ["p"]), RELAY_AFTER_MS)).toHaveLength(1);
    planner.opened("b", true, RELAY_AFTER_MS);
    planner.lost("b", 10_000);
    expect(planner.due(view("a", ["p"]), 10_000 + RELAY_AFTER_MS - 1)).toEqual([]);
    expect(planner.due(view("a", ["p"]), 10_000 + RELAY_AFTER_MS)).toHaveLength(1);
  });
});
