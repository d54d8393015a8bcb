import { describe, expect, test } from "bun:test";
import {
  FlowControl,
  type FlowLink,
  newFlow,
  type ReadingChange,
  STALL_MS,
} from "../../src/node/flow-control.ts";

interface TestLink extends FlowLink {
  readonly name: string;
  /** The kernel's progress on its queue, as `Connection.bytesSent` reports it. */
  sent: number;
}

const link = (name: string): TestLink => ({ name, sent: 0, flow: newFlow(0) });

/** Changes as `["b", "pause"]` pairs, in the order given. */
const shown = (changes: ReadingChange<TestLink>[]) =>
  changes.map((c) => [c.link.name, c.pause ? "pause" : "resume"]);

/** Which links are not being read from. */
const pausedOf = (all: TestLink[]) => all.filter((l) => l.flow.paused).map((l) => l.name);

function setup(names = ["a", "b", "c"]) {
  const all = names.map(link);
  const fc = new FlowControl<TestLink>();
  const byName = (name: string) => all.find((l) => l.name === name)!;
  const sentOf = (l: TestLink) => l.sent;
  return { all, fc, byName, sentOf };
}

describe("FlowControl", () => {
  test("one link congested: every other link is paused; the congested one keeps reading", () => {
    const { all, fc, byName } = setup();
    expect(shown(fc.congested(byName("a"), 0, 0, all))).toEqual([
      ["b", "pause"],
      ["c", "pause"],
    ]);
    expect(pausedOf(all)).toEqual(["b", "c"]);
    expect(fc.holdingCount).toBe(1);
  });

  test("cleared: every link resumes", () => {
    const { all, fc, byName } = setup();
    fc.congested(byName("a"), 0, 0, all);
    expect(shown(fc.cleared(byName("a"), all))).toEqual([
      ["b", "resume"],
      ["c", "resume"],
    ]);
    expect(pausedOf(all)).toEqual([]);
    expect(byName("a").flow.congested).toBe(false);
    expect(fc.holdingCount).toBe(0);
  });

  test("two congested links: all are paused, both of them too; each clears in turn", () => {
    const { all, fc, byName } = setup();
    fc.congested(byName("a"), 0, 0, all);
    expect(shown(fc.congested(byName("b"), 0, 0, all))).toEqual([["a", "pause"]]);
    expect(pausedOf(all)).toEqual(["a", "b", "c"]);
    // a drains: b alone holds the others now, and reads again.
    expect(shown(fc.cleared(byName("a"), all))).toEqual([["b", "resume"]]);
    expect(pausedOf(all)).toEqual(["a", "c"]);
    expect(shown(fc.cleared(byName("b"), all))).toEqual([
      ["a", "resume"],
      ["c", "resume"],
    ]);
  });

  test("a congested link that closes releases the others", () => {
    const { all, fc, byName } = setup();
    const a = byName("a");
    fc.congested(a, 0, 0, all);
    const rest = all.filter((l) => l !== a);
    expect(shown(fc.cleared(a, rest))).toEqual([
      ["b", "resume"],
      ["c", "resume"],
    ]);
  });

  test(`a congested link whose writes stall for ${STALL_MS} ms stops holding the others back, and holds them again once it moves`, () => {
    const { all, fc, byName, sentOf } = setup();
    const a = byName("a");
    a.sent = 5000;
    fc.congested(a, a.sent, 10_000, all);
    a.sent = 6000; // moving at 10.4 s
    expect(fc.tick(all, sentOf, 10_400)).toEqual([]);
    expect(fc.tick(all, sentOf, 10_400 + STALL_MS - 1)).toEqual([]);
    expect(shown(fc.tick(all, sentOf, 10_400 + STALL_MS))).toEqual([
      ["b", "resume"],
      ["c", "resume"],
    ]);
    expect(fc.holdingCount).toBe(0);
    expect(a.flow.congested).toBe(true); // still congested: left to the slow-consumer cap
    expect(fc.tick(all, sentOf, 20_000)).toEqual([]);
    a.sent = 6001;
    expect(shown(fc.tick(all, sentOf, 21_000))).toEqual([
      ["b", "pause"],
      ["c", "pause"],
    ]);
    expect(fc.holdingCount).toBe(1);
  });

  test("a stalled link that then drains changes nothing more: the others already read", () => {
    const { all, fc, byName, sentOf } = setup();
    const a = byName("a");
    fc.congested(a, 0, 0, all);
    fc.tick(all, sentOf, STALL_MS);
    expect(fc.cleared(a, all)).toEqual([]);
    expect(pausedOf(all)).toEqual([]);
    expect(a.flow.congested).toBe(false);
  });

  test("one stalled link does not release the others while another congested link moves", () => {
    const { all, fc, byName, sentOf } = setup(["a", "b", "c", "d"]);
    const [a, b] = [byName("a"), byName("b")];
    fc.congested(a, 0, 0, all);
    fc.congested(b, 0, 0, all);
    expect(pausedOf(all)).toEqual(["a", "b", "c", "d"]);
    b.sent = 100; // b moves, a does not
    expect(shown(fc.tick(all, sentOf, STALL_MS))).toEqual([["b", "resume"]]);
    expect(pausedOf(all)).toEqual(["a", "c", "d"]);
  });

  test.each([
    ["pauses a new link at once while one holds", true, [["d", "pause"]]],
    ["leaves a new link alone while none holds", false, []],
  ])("adding a link %s", (_name, holding, expected) => {
    const { all, fc, byName } = setup();
    if (holding) fc.congested(byName("a"), 0, 0, all);
    all.push(link("d"));
    expect(shown(fc.added(all))).toEqual(expected);
  });

  describe("reports each change once", () => {
    test("congested twice: the second time changes nothing", () => {
      const { all, fc, byName } = setup();
      fc.congested(byName("a"), 0, 0, all);
      expect(fc.congested(byName("a"), 0, 10, all)).toEqual([]);
      expect(fc.holdingCount).toBe(1);
    });

    test("ticks with nothing new change nothing", () => {
      const { all, fc, byName, sentOf } = setup();
      const a = byName("a");
      fc.congested(a, 0, 0, all);
      for (let now = 0; now < 10 * STALL_MS; now += 100) {
        a.sent += 10; // moving
        expect(fc.tick(all, sentOf, now)).toEqual([]);
      }
    });

    test("cleared for a link that was not congested changes nothing", () => {
      const { all, fc, byName } = setup();
      expect(fc.cleared(byName("a"), all)).toEqual([]);
      fc.congested(byName("a"), 0, 0, all);
      expect(fc.cleared(byName("b"), all)).toEqual([]);
      expect(pausedOf(all)).toEqual(["b", "c"]);
    });

    test("a link added twice while one holds is paused once", () => {
      const { all, fc, byName } = setup();
      fc.congested(byName("a"), 0, 0, all);
      all.push(link("d"));
      expect(fc.added(all)).toHaveLength(1);
      expect(fc.added(all)).toEqual([]);
    });
  });
});
