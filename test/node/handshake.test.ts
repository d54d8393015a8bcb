import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import type { Bar } from "../../src/node/abuse-guard.ts";
import {
  type Admission,
  type AdmissionVerdict,
  admit,
  dialRefusal,
  type HandshakeContext,
  handshakeStep,
  type LinkEnd,
  survivor,
} from "../../src/node/handshake.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { FrameType, PROTOCOL_VERSION, WireErrorCode } from "../../src/protocol/constants.ts";
import { encodeError, encodePing } from "../../src/protocol/control.ts";
import type { Direction } from "../../src/protocol/endpoint.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { hex } from "../../src/protocol/hex.ts";

/** The one frame in `bytes`, as the connection hands it to the node. */
function frameOf(bytes: Uint8Array): Frame {
  const frames = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

const id = (byte: number) => new Uint8Array(32).fill(byte);
const SELF = id(0x10);
const LOWER = id(0x01);
const HIGHER = id(0x20);

const hello = (nodeId: Uint8Array, extra: { version?: number } = {}) =>
  frameOf(encodeHello({ nodeId, listenPort: 9000, nick: "bob", ...extra }));

const INBOUND: LinkEnd = { direction: "inbound", dialerPort: 40_000, relayed: false };

/** A context for SELF with no neighbours and no bars, overridden per test. */
function context(overrides: Partial<HandshakeContext> = {}): HandshakeContext {
  return {
    selfId: SELF,
    link: INBOUND,
    existing: () => undefined,
    barOf: () => undefined,
    ...overrides,
  };
}

describe("admit", () => {
  const base: Admission = {
    direction: "inbound",
    closing: false,
    links: 3,
    pendingInbound: 1,
    pendingFromSource: 0,
    pendingFromHeaviest: 1,
    maxPeers: 8,
    maxPendingHandshakes: 4,
  };
  /** Every handshake place taken: 4 pending, as many from the heaviest source as given. */
  const full = (fromSource: number, heaviest: number) => ({
    links: 5,
    pendingInbound: 4,
    pendingFromSource: fromSource,
    pendingFromHeaviest: heaviest,
  });

  test.each([
    ["an inbound connection below both caps", {}],
    ["an outbound connection below the cap", { direction: "outbound" as Direction }],
    [
      "an outbound connection during an inbound storm (the storm cap is for inbound only)",
      { direction: "outbound" as Direction, pendingInbound: 4 },
    ],
    ["the last place under the cap", { links: 7 }],
    ["the last handshake place, from the heaviest source", { ...full(3, 3), pendingInbound: 3 }],
  ])("accepts %s", (_name, overrides) => {
    expect(admit({ ...base, ...overrides })).toEqual({ action: "accept" });
  });

  const evict: AdmissionVerdict = {
    action: "evict",
    close: { kind: "quiet", reason: "its address holds more pending handshakes than its share" },
    reason: "its address holds more pending handshakes than its share",
  };

  test.each([
    ["a newcomer while one flooding address holds every place", full(0, 4)],
    ["a newcomer while each of two flooding addresses holds two", full(0, 2)],
    ["a second connection from an address holding 1, while another holds 3", full(1, 3)],
    [
      "a newcomer at the connection cap: the place it takes frees a connection",
      { ...full(0, 4), links: 8 },
    ],
  ])("takes the place of the heaviest source's oldest handshake: %s", (_name, overrides) => {
    expect(admit({ ...base, ...overrides })).toEqual(evict);
  });

  test.each([
    [
      "a storm of pending inbound handshakes: refused quietly before anything is spent on it",
      { pendingInbound: 4 },
      { kind: "quiet", reason: "too many pending handshakes" },
      "4 handshakes pending",
      false,
    ],
    [
      "a newcomer from an address holding 1 while the heaviest holds 2: it would only swap them",
      full(1, 2),
      { kind: "quiet", reason: "too many pending handshakes" },
      "4 handshakes pending",
      false,
    ],
    [
      "one address more while 4 addresses hold one place each",
      full(0, 1),
      { kind: "quiet", reason: "too many pending handshakes" },
      "4 handshakes pending",
      false,
    ],
    [
      "more from the flooding address itself",
      full(4, 4),
      { kind: "quiet", reason: "too many pending handshakes" },
      "4 handshakes pending",
      false,
    ],
    [
      "a newcomer at the cap even with a place taken from a flood: still at the cap",
      { ...full(0, 4), links: 9 },
      { kind: "error", code: WireErrorCode.TooManyPeers, message: "too many peers (limit 8)" },
      "at the connection cap (8)",
      true,
    ],
    [
      "a full listener: refused with ERROR 6 TOO_MANY_PEERS, the one refusal said on the wire",
      { links: 8 },
      { kind: "error", code: WireErrorCode.TooManyPeers, message: "too many peers (limit 8)" },
      "at the connection cap (8)",
      true,
    ],
    [
      "a dial at the cap: refused quietly",
      { direction: "outbound" as Direction, links: 8 },
      { kind: "quiet", reason: "at the connection cap (8)" },
      "at the connection cap (8)",
      false,
    ],
    [
      "any connection while closing",
      { closing: true },
      { kind: "quiet", reason: "peer is shutting down" },
      "peer is shutting down",
      false,
    ],
    [
      "an inbound storm while closing: closing is the reason given",
      { closing: true, pendingInbound: 4, links: 8 },
      { kind: "quiet", reason: "peer is shutting down" },
      "peer is shutting down",
      false,
    ],
  ] as const)("refuses %s", (_name, overrides, close, reason, notable) => {
    expect(admit({ ...base, ...overrides })).toEqual({ action: "refuse", close, reason, notable });
  });
});

describe("handshakeStep", () => {
  test("an ERROR first is a refusal with its reason, closed without a reply", () => {
    const frame = frameOf(
      encodeError({ code: WireErrorCode.TooManyPeers, message: "too many peers (limit 2)" }),
    );
    const reason = "refused: too many peers (limit 2)";
    expect(handshakeStep(frame, context())).toEqual({
      action: "refused",
      reason,
      close: { kind: "quiet", reason },
    });
  });

  test.each([
    [
      "a FLOOD",
      () =>
        frameOf(
          ByteWriter.frame(FrameType.Flood, 3)
            .bytes(Uint8Array.of(1, 2, 3))
            .done(),
        ),
      "got FLOOD",
    ],
    ["a PING", () => frameOf(encodePing(7n)), "got frame type 4"],
  ])("%s first is a BAD_HANDSHAKE violation", (_name, make, says) => {
    const step = handshakeStep(make(), context());
    expect(step.action).toBe("violation");
    if (step.action !== "violation" || step.close.kind !== "violation") throw new Error("no");
    expect(step.close.error).toBeInstanceOf(ProtocolError);
    expect(step.close.error.code).toBe("BAD_HANDSHAKE");
    expect(step.close.error.message).toContain(says);
  });

  test("a HELLO of another version is a VERSION_MISMATCH violation naming both versions", () => {
    const step = handshakeStep(hello(HIGHER, { version: 9 }), context());
    if (step.action !== "violation" || step.close.kind !== "violation")
      throw new Error(`expected a violation, got ${step.action}`);
    expect(step.close.error.code).toBe("VERSION_MISMATCH");
    expect(step.close.error.message).toContain("version 9");
    expect(step.close.error.message).toContain(`version ${PROTOCOL_VERSION}`);
  });

  test("a version-9 HELLO of six bytes is judged on its version, not its short layout", () => {
    const frame = frameOf(
      ByteWriter.frame(FrameType.Hello, 6)
        .bytes(Uint8Array.of(0x50, 0x43, 0x48, 0x54, 9, 0))
        .done(),
    );
    const step = handshakeStep(frame, context());
    expect(step.action === "violation" && step.close).toMatchObject({
      error: { code: "VERSION_MISMATCH" },
    });
  });

  test("a HELLO with bad magic is a BAD_HANDSHAKE violation", () => {
    const bytes = encodeHello({ nodeId: HIGHER, listenPort: 9000, nick: "bob" });
    bytes.set([0x48, 0x54, 0x54, 0x50], 5); // "HTTP" where "PCHT" belongs
    const step = handshakeStep(frameOf(bytes), context());
    expect(step.action === "violation" && step.close).toMatchObject({
      kind: "violation",
      error: { code: "BAD_HANDSHAKE" },
    });
  });

  test("a HELLO carrying our own id is a self-dial", () => {
    const step = handshakeStep(hello(SELF), context());
    expect(step).toMatchObject({ action: "self", key: hex(SELF), hello: { nodeId: SELF } });
  });

  test.each([
    [WireErrorCode.BadSignature, 60_000, 60],
    [WireErrorCode.RateLimited, 60_000, 60],
    [WireErrorCode.RateLimited, 59_001, 60],
    [WireErrorCode.BadSignature, 1001, 2],
    [WireErrorCode.BadSignature, 1000, 1],
    [WireErrorCode.RateLimited, 1, 1],
  ])(
    "a barred id (code %d, %d ms left) is closed with the bar's code and %d s to go",
    (code, remainingMs, seconds) => {
      const asked: string[] = [];
      const barOf = (key: string): Bar | undefined => {
        asked.push(key);
        return { code, remainingMs };
      };
      const step = handshakeStep(hello(HIGHER), context({ barOf }));
      expect(step).toMatchObject({
        action: "barred",
        key: hex(HIGHER),
        close: { kind: "error", code, message: `barred for abuse for another ${seconds} s` },
      });
      expect(asked).toEqual([hex(HIGHER)]);
    },
  );

  test("a barred id is refused even when a link to it exists", () => {
    const step = handshakeStep(
      hello(HIGHER),
      context({
        existing: () => ({ direction: "outbound", dialerPort: 1, relayed: false }),
        barOf: () => ({ code: WireErrorCode.RateLimited, remainingMs: 5000 }),
      }),
    );
    expect(step.action).toBe("barred");
  });

  test("a known id is a duplicate, naming the link that survives", () => {
    const existing: LinkEnd = { direction: "outbound", dialerPort: 50_000, relayed: false };
    const asked: string[] = [];
    const step = handshakeStep(
      hello(HIGHER),
      context({
        // SELF < HIGHER: the link SELF dialled (the existing outbound one) survives.
        link: INBOUND,
        existing: (key) => {
          asked.push(key);
          return existing;
        },
      }),
    );
    expect(step).toMatchObject({ action: "duplicate", key: hex(HIGHER), keep: "existing" });
    expect(asked).toEqual([hex(HIGHER)]);
  });

  test("a new id is established, with its HELLO decoded", () => {
    const step = handshakeStep(hello(LOWER), context());
    expect(step).toEqual({
      action: "establish",
      key: hex(LOWER),
      hello: { version: PROTOCOL_VERSION, nodeId: LOWER, listenPort: 9000, nick: "bob" },
    });
  });
});

describe("the duplicate-link rule", () => {
  /** A physical link between the nodes A and B: who dialled it, from which source port. */
  interface Wire {
    readonly name: string;
    readonly dialler: "A" | "B";
    readonly port: number;
    /** Carried by a relay's circuit. */
    readonly relayed?: boolean;
  }

  /** How node `at` sees a wire. */
  const endAt = (at: "A" | "B", wire: Wire): LinkEnd & { wire: string } => ({
    direction: wire.dialler === at ? "outbound" : "inbound",
    dialerPort: wire.port,
    relayed: wire.relayed === true,
    wire: wire.name,
  });

  // Alike but for the last byte: the whole id is compared, not a prefix.
  const A_ID = id(0x33);
  A_ID[31] = 0x01;
  const B_ID = id(0x33);
  B_ID[31] = 0x02;

  const cases: Array<[string, Wire, Wire, string]> = [
    [
      "each dialled once: the lower id's dial survives",
      { name: "A→B", dialler: "A", port: 50_000 },
      { name: "B→A", dialler: "B", port: 40_000 },
      "A→B",
    ],
    [
      "each dialled once, the higher id from the lower port: the id still decides",
      { name: "B→A", dialler: "B", port: 1024 },
      { name: "A→B", dialler: "A", port: 65_000 },
      "A→B",
    ],
    [
      "the lower id dialled twice: the lower source port survives",
      { name: "A:40001", dialler: "A", port: 40_001 },
      { name: "A:40000", dialler: "A", port: 40_000 },
      "A:40000",
    ],
    [
      "the higher id dialled twice: the lower source port survives",
      { name: "B:40000", dialler: "B", port: 40_000 },
      { name: "B:40001", dialler: "B", port: 40_001 },
      "B:40000",
    ],
    [
      "a direct link beats a relayed one, even when the relayed one wins on ids",
      { name: "A→B relayed", dialler: "A", port: 40_000, relayed: true },
      { name: "B→A direct", dialler: "B", port: 50_000 },
      "B→A direct",
    ],
    [
      "a direct link beats a relayed one dialled the same way from a lower port",
      { name: "A relayed", dialler: "A", port: 1_000, relayed: true },
      { name: "A direct", dialler: "A", port: 60_000 },
      "A direct",
    ],
  ];

  describe.each(cases)("%s", (_name, first, second, expected) => {
    test.each([["A"], ["B"]] as const)(
      "survivor() at %s picks the same wire in either order",
      (at) => {
        const weAreLower = at === "A";
        const x = endAt(at, first);
        const y = endAt(at, second);
        expect(survivor(x, y, weAreLower).wire).toBe(expected);
        expect(survivor(y, x, weAreLower).wire).toBe(expected);
      },
    );

    // Each end may have established either wire first: whichever it saw first is
    // `existing`, the other `fresh`; all four views must keep the same wire.
    test.each([
      ["A", "first"],
      ["A", "second"],
      ["B", "first"],
      ["B", "second"],
    ] as const)(
      "handshakeStep at %s, the %s wire established, keeps it only if it wins",
      (at, established) => {
        const [old, fresh] = established === "first" ? [first, second] : [second, first];
        const [selfId, remoteId] = at === "A" ? [A_ID, B_ID] : [B_ID, A_ID];
        const step = handshakeStep(hello(remoteId), {
          selfId,
          link: endAt(at, fresh),
          existing: (key) => (key === hex(remoteId) ? endAt(at, old) : undefined),
          barOf: () => undefined,
        });
        if (step.action !== "duplicate") throw new Error(`expected duplicate, got ${step.action}`);
        expect((step.keep === "existing" ? old : fresh).name).toBe(expected);
      },
    );
  });
});

describe("dialRefusal", () => {
  const dial = async () => ({ ok: false as const });
  test.each([
    ["can dial", false, 3, { dial, maxPeers: 8 }, undefined],
    ["no dialler (a node in a test)", false, 0, { maxPeers: 8 }, "this node cannot dial"],
    ["shutting down", true, 0, { dial, maxPeers: 8 }, "peer is shutting down"],
    ["at the cap", false, 8, { dial, maxPeers: 8 }, "at the connection cap (8)"],
  ] as const)("%s", (_name, closing, links, config, expected) => {
    expect(dialRefusal(closing, links, config)).toBe(expected);
  });
});
