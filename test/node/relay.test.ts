import { describe, expect, test } from "bun:test";
import { Relay } from "../../src/node/relay.ts";
import { SeenCache } from "../../src/node/seen-cache.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, MAX_HOPS } from "../../src/protocol/constants.ts";
import { decodeFlood, encodeFlood, type Flood } from "../../src/protocol/flood.ts";

const ORIGIN = new Uint8Array(32).fill(7);
let nextId = 1;
const freshId = () => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(0, nextId++);
  return b;
};

function relay(nodeIdByte = 1) {
  const now = () => 1_000;
  return new Relay(new Uint8Array(32).fill(nodeIdByte), new SeenCache(now), now, freshId);
}

/** A FLOOD payload (no frame header) as a neighbour would send it. */
function payload(overrides: Partial<Flood> = {}): Uint8Array {
  const flood: Flood = {
    id: freshId(),
    origin: ORIGIN,
    seq: 1,
    sentAt: 1_000,
    hops: 0,
    kind: FloodKind.Chat,
    body: encodeChatBody({ nick: "alice", text: "hello" }),
    ...overrides,
  };
  return encodeFlood(flood).subarray(5);
}

describe("Relay", () => {
  test("a new message is accepted, decoded and forwarded with hops + 1", () => {
    const r = relay();
    const outcome = r.receive(payload({ hops: 2 }));
    expect(outcome.status).toBe("accepted");
    if (outcome.status !== "accepted") return;
    expect(outcome.chat).toEqual({ nick: "alice", text: "hello" });
    expect(outcome.forward).toBeDefined();
    expect(decodeFlood((outcome.forward as Uint8Array).subarray(5)).hops).toBe(3);
  });

  test("the same id again is a duplicate, however it comes back", () => {
    const r = relay();
    const p = payload();
    expect(r.receive(p).status).toBe("accepted");
    expect(r.receive(p).status).toBe("duplicate");
    const sameIdOtherHops = p.slice();
    sameIdOtherHops[60] = 5;
    expect(r.receive(sameIdOtherHops).status).toBe("duplicate");
    expect(r.stats).toMatchObject({ accepted: 1, duplicates: 2 });
  });

  test("our own messages coming back round a cycle are duplicates", () => {
    const r = relay();
    const { frame } = r.originateChat({ nick: "me", text: "round we go" });
    expect(r.receive(frame.subarray(5)).status).toBe("duplicate");
  });

  test("originated messages number from 1 and carry our id and hops 0", () => {
    const r = relay(9);
    const a = r.originateChat({ nick: "me", text: "one" }).flood;
    const b = r.originateChat({ nick: "me", text: "two" }).flood;
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(a.origin).toEqual(new Uint8Array(32).fill(9));
    expect(a.hops).toBe(0);
    expect(a.id).not.toEqual(b.id);
  });

  test("an invalid message is refused and not remembered, so an honest copy still passes", () => {
    const r = relay();
    const id = freshId();
    const forged = payload({ id, body: Uint8Array.of(0, 3, 0x62, 0x6f, 0x62, 0, 2, 0x1b, 0x5b) });
    const outcome = r.receive(forged);
    expect(outcome.status).toBe("invalid");
    if (outcome.status === "invalid") expect(outcome.error.code).toBe("BAD_FIELD");
    expect(r.receive(payload({ id })).status).toBe("accepted");
  });

  test("a truncated FLOOD is invalid", () => {
    const outcome = relay().receive(payload().subarray(0, 40));
    expect(outcome.status).toBe("invalid");
  });

  test(`hop limit: accepted but not forwarded once hops + 1 reaches ${MAX_HOPS}`, () => {
    const r = relay();
    const last = r.receive(payload({ hops: MAX_HOPS - 2 }));
    expect(last.status === "accepted" && last.forward !== undefined).toBe(true);
    const over = r.receive(payload({ hops: MAX_HOPS - 1 }));
    expect(over.status).toBe("accepted");
    if (over.status === "accepted") expect(over.forward).toBeUndefined();
    expect(r.stats.hopLimited).toBe(1);
  });

  test("unknown kinds are relayed unread", () => {
    const body = Uint8Array.of(0xde, 0xad);
    const outcome = relay().receive(payload({ kind: 0x99, body }));
    expect(outcome.status).toBe("accepted");
    if (outcome.status !== "accepted") return;
    expect(outcome.chat).toBeUndefined();
    const forwarded = decodeFlood((outcome.forward as Uint8Array).subarray(5));
    expect(forwarded.kind).toBe(0x99);
    expect([...forwarded.body]).toEqual([0xde, 0xad]);
  });
});
