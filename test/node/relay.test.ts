import { describe, expect, test } from "bun:test";
import { sealDirect } from "../../src/direct/seal.ts";
import {
  DEFAULT_FLOOD_LIMITS,
  type FloodLimits,
  TokenBucket,
} from "../../src/node/flood-limits.ts";
import { type RateBudget, Relay, type RelayOutcome } from "../../src/node/relay.ts";
import { SeenCache } from "../../src/node/seen-cache.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, MAX_HOPS } from "../../src/protocol/constants.ts";
import {
  DirectType,
  MAX_DIRECT_BODY_BYTES,
  MIN_DIRECT_BODY_BYTES,
} from "../../src/protocol/direct.ts";
import {
  decodeFlood,
  encodeFlood,
  FLOOD_SIGNATURE_OFFSET,
  type Flood,
  signFloodFrame,
} from "../../src/protocol/flood.ts";
import { type Identity, identityFromSeed } from "../../src/secure/identity.ts";

const keyOf = (byte: number) => identityFromSeed(new Uint8Array(32).fill(byte));
const AUTHOR = keyOf(7);
const ORIGIN = AUTHOR.publicKey;
let nextId = 1;
const freshId = () => {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(0, nextId++);
  return b;
};

const relay = (keyByte = 1) => new Relay(keyOf(keyByte), new SeenCache());

/** Receives a payload held at an offset inside a larger buffer, as a chunk holds frames. */
function rx(r: Relay, p: Uint8Array, now: number): RelayOutcome {
  const bytes = new Uint8Array(p.length + 10);
  bytes.set(p, 7);
  return r.receive(bytes, 7, 7 + p.length, now);
}

/**
 * A FLOOD payload (no frame header) as a neighbour would send it, signed by `signer`
 * (the author by default) unless a signature is given.
 */
function payload(overrides: Partial<Flood> = {}, signer: Identity = AUTHOR): Uint8Array {
  const flood: Flood = {
    id: freshId(),
    origin: ORIGIN,
    seq: 1,
    sentAt: 1_000,
    hops: 0,
    kind: FloodKind.Chat,
    signature: new Uint8Array(64),
    body: encodeChatBody({ nick: "alice", text: "hello" }),
    ...overrides,
  };
  const frame = encodeFlood(flood);
  if (!overrides.signature) signFloodFrame(frame, (m) => signer.sign(m));
  return frame.subarray(5);
}

const chatFrame = (r: Relay, text: string) => {
  const body = encodeChatBody({ nick: "me", text });
  return r.originate(FloodKind.Chat, body.length, (w) => w.bytes(body), 5);
};

describe("Relay", () => {
  test("a new message is accepted and may be forwarded", () => {
    const outcome = rx(relay(), payload({ hops: 2 }), 0);
    expect(outcome).toEqual({ status: "accepted", presence: undefined, forward: true });
  });

  test("the same id again is a duplicate, however it comes back", () => {
    const r = relay();
    const p = payload();
    expect(rx(r, p, 0).status).toBe("accepted");
    expect(rx(r, p, 1).status).toBe("duplicate");
    const sameIdOtherHops = p.slice();
    sameIdOtherHops[60] = 5;
    expect(rx(r, sameIdOtherHops, 2).status).toBe("duplicate");
    expect(r.stats).toMatchObject({ accepted: 1, duplicates: 2 });
  });

  test("our own messages coming back round a cycle are duplicates", () => {
    const r = relay();
    const frame = chatFrame(r, "round we go");
    expect(rx(r, frame.subarray(5), 10).status).toBe("duplicate");
  });

  test("originated messages number from 1 and carry our id, the time and hops 0", () => {
    const r = relay(9);
    const a = decodeFlood(chatFrame(r, "one").subarray(5));
    const b = decodeFlood(chatFrame(r, "two").subarray(5));
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(a.origin).toEqual(keyOf(9).publicKey);
    expect(a).toMatchObject({ hops: 0, sentAt: 5, kind: FloodKind.Chat });
    expect(a.id).not.toEqual(b.id);
  });

  test("ids are random and unique across many messages", () => {
    const r = relay();
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++)
      ids.add(Buffer.from(decodeFlood(chatFrame(r, "x").subarray(5)).id).toString("hex"));
    expect(ids.size).toBe(5000);
  });

  describe("signatures", () => {
    const honest = () => payload({ id: freshId(), sentAt: 10_000 });
    const tamper = (p: Uint8Array, at: number) => {
      const copy = p.slice();
      copy[at] = (copy[at] as number) ^ 0x01;
      return copy;
    };
    test.each([
      ["altered text", (p: Uint8Array) => tamper(p, p.length - 1)],
      ["altered seq", (p: Uint8Array) => tamper(p, 16 + 32 + 3)],
      ["altered sentAt", (p: Uint8Array) => tamper(p, 16 + 32 + 4 + 7)],
      ["altered kind", (p: Uint8Array) => tamper(p, FLOOD_SIGNATURE_OFFSET - 1)],
      ["a flipped signature bit", (p: Uint8Array) => tamper(p, FLOOD_SIGNATURE_OFFSET + 10)],
      [
        "a swapped origin",
        (p: Uint8Array) => {
          const copy = p.slice();
          copy.set(keyOf(8).publicKey, 16);
          return copy;
        },
      ],
      [
        "no signature (zeros)",
        (p: Uint8Array) => {
          const copy = p.slice();
          copy.fill(0, FLOOD_SIGNATURE_OFFSET, FLOOD_SIGNATURE_OFFSET + 64);
          return copy;
        },
      ],
      [
        "another message's signature",
        (p: Uint8Array) => {
          const other = payload({
            id: p.slice(0, 16),
            sentAt: 10_000,
            body: encodeChatBody({ nick: "alice", text: "other" }),
          });
          const copy = p.slice();
          copy.set(
            other.subarray(FLOOD_SIGNATURE_OFFSET, FLOOD_SIGNATURE_OFFSET + 64),
            FLOOD_SIGNATURE_OFFSET,
          );
          return copy;
        },
      ],
      [
        "signed by someone else in the author's name",
        (p: Uint8Array) => payload({ id: p.slice(0, 16), sentAt: 10_000 }, keyOf(8)),
      ],
    ])(
      "%s: refused as forged and not remembered; the genuine message still passes",
      (_name, forge) => {
        const r = relay();
        const genuine = honest();
        expect(rx(r, forge(genuine), 10_000).status).toBe("forged");
        expect(rx(r, genuine, 10_001).status).toBe("accepted");
        expect(rx(r, genuine, 10_002).status).toBe("duplicate");
        expect(r.stats).toMatchObject({ forged: 1, accepted: 1, duplicates: 1, verified: 2 });
      },
    );

    test("each new id is verified once; duplicates cost no verification", () => {
      const r = relay();
      const p = honest();
      for (let i = 0; i < 10; i++) rx(r, p, 10_000 + i);
      expect(r.stats).toMatchObject({ verified: 1, accepted: 1, duplicates: 9 });
    });

    test("outside the seen-cache's window (either way) a message is stale: a replay", () => {
      const ttl = new SeenCache().ttlMs;
      const r = relay();
      const p = honest();
      expect(rx(r, p, 10_000 + ttl + 1).status).toBe("stale");
      expect(rx(r, p, 10_000 - ttl - 1).status).toBe("stale");
      expect(rx(r, p, 10_000 + ttl).status).toBe("accepted");
      expect(r.stats.stale).toBe(2);
    });
  });

  test("an invalid message is refused and not remembered, so an honest copy still passes", () => {
    const r = relay();
    const id = freshId();
    const forged = payload({ id, body: Uint8Array.of(0, 3, 0x62, 0x6f, 0x62, 0, 2, 0x1b, 0x5b) });
    const outcome = rx(r, forged, 0);
    expect(outcome.status).toBe("invalid");
    if (outcome.status === "invalid") expect(outcome.error.code).toBe("BAD_FIELD");
    expect(rx(r, payload({ id }), 1).status).toBe("accepted");
  });

  test.each([
    ["a truncated FLOOD", () => payload().subarray(0, 40), "TRUNCATED"],
    [
      "invalid UTF-8 in the text",
      () => payload({ body: Uint8Array.of(0, 1, 0x61, 0, 2, 0x68, 0xff) }),
      "BAD_UTF8",
    ],
    [
      "a body with trailing bytes",
      () => payload({ body: Uint8Array.of(0, 1, 0x61, 0, 1, 0x68, 0) }),
      "TRAILING_BYTES",
    ],
    ["an empty text", () => payload({ body: Uint8Array.of(0, 1, 0x61, 0, 0) }), "BAD_FIELD"],
    [
      "a 33-byte nick",
      () => payload({ body: encodeChatBody({ nick: "n".repeat(33), text: "hi" }) }),
      "BAD_FIELD",
    ],
    [
      "a text cut short",
      () => payload({ body: Uint8Array.of(0, 1, 0x61, 0, 9, 0x68) }),
      "TRUNCATED",
    ],
    [
      "a JOIN with a control character",
      () => payload({ kind: FloodKind.Join, body: Uint8Array.of(0, 2, 0x61, 0x07) }),
      "BAD_FIELD",
    ],
  ] as const)("%s is invalid", (_name, make, code) => {
    const outcome = rx(relay(), make(), 0);
    expect(outcome.status).toBe("invalid");
    if (outcome.status === "invalid") expect(outcome.error.code).toBe(code);
  });

  test(`hop limit: accepted but not forwarded once hops + 1 reaches ${MAX_HOPS}`, () => {
    const r = relay();
    expect(rx(r, payload({ hops: MAX_HOPS - 2 }), 0)).toMatchObject({
      status: "accepted",
      forward: true,
    });
    expect(rx(r, payload({ hops: MAX_HOPS - 1 }), 0)).toMatchObject({
      status: "accepted",
      forward: false,
    });
    expect(r.stats.hopLimited).toBe(1);
  });

  test("presence kinds are decoded; unknown kinds are relayed unread", () => {
    const r = relay();
    expect(
      rx(r, payload({ kind: FloodKind.Join, body: Uint8Array.of(0, 3, 0x62, 0x6f, 0x62) }), 0),
    ).toEqual({
      status: "accepted",
      presence: { kind: FloodKind.Join, nick: "bob" },
      forward: true,
    });
    expect(rx(r, payload({ kind: 0x99, body: Uint8Array.of(0xde, 0xad) }), 0)).toMatchObject({
      status: "accepted",
      forward: true,
    });
  });
});

describe("Relay: rate limits", () => {
  /** Receives `p` as `rx` does, with the sending neighbour's budget. */
  const rxWith = (r: Relay, p: Uint8Array, now: number, budget?: RateBudget) =>
    r.receive(p, 0, p.length, now, budget);

  const REFUSING: RateBudget = { take: () => false };

  test.each([
    ["a new message", () => payload({ sentAt: 1000 })],
    ["garbage", () => Uint8Array.of(1, 2, 3)],
    ["a stale message", () => payload({ sentAt: 1000 + 10 * new SeenCache().ttlMs })],
    ["a forgery", () => payload({ sentAt: 1000 }, keyOf(8))],
  ])("%s from a neighbour over its budget is throttled, nothing else looked at", (_name, make) => {
    const r = relay();
    expect(rxWith(r, make(), 1000, REFUSING)).toEqual({ status: "throttled" });
    expect(r.stats).toMatchObject({
      throttled: 1,
      invalid: 0,
      verified: 0,
      forged: 0,
      stale: 0,
      accepted: 0,
    });
  });

  test("a duplicate from a neighbour over its budget is throttled, not counted a duplicate", () => {
    const r = relay();
    const p = payload({ sentAt: 1000 });
    expect(rxWith(r, p, 1000).status).toBe("accepted");
    expect(rxWith(r, p, 1000, REFUSING).status).toBe("throttled");
    expect(r.stats).toMatchObject({ throttled: 1, duplicates: 0 });
  });

  test("a throttled message is not remembered: the same message within budget is accepted", () => {
    const r = relay();
    const p = payload({ sentAt: 1000 });
    expect(rxWith(r, p, 1000, REFUSING).status).toBe("throttled");
    expect(rxWith(r, p, 1001, { take: () => true }).status).toBe("accepted");
  });

  test("the budget is asked once per FLOOD, at the time of receipt", () => {
    const asked: number[] = [];
    const budget: RateBudget = {
      take: (now) => {
        asked.push(now);
        return asked.length <= 2;
      },
    };
    const r = relay();
    const outcomes = [1000, 1001, 1002].map(
      (now) => rxWith(r, payload({ sentAt: 1000 }), now, budget).status,
    );
    expect(outcomes).toEqual(["accepted", "accepted", "throttled"]);
    expect(asked).toEqual([1000, 1001, 1002]);
  });

  test("a neighbour's token bucket lets its burst through, then throttles", () => {
    const r = relay();
    const bucket = new TokenBucket(1, 3, 1000);
    const outcomes = [0, 1, 2, 3].map(
      () => rxWith(r, payload({ sentAt: 1000 }), 1000, bucket).status,
    );
    expect(outcomes).toEqual(["accepted", "accepted", "accepted", "throttled"]);
    expect(r.stats.throttled).toBe(1);
  });

  describe("per author", () => {
    const limits: FloodLimits = {
      ...DEFAULT_FLOOD_LIMITS,
      perOriginPerSecond: 1,
      perOriginBurst: 2,
    };
    const OTHER = keyOf(8);
    const limited = () => new Relay(keyOf(1), new SeenCache(), { limits });

    test("an author over its rate is origin-limited before its signature costs a verification, and counted", () => {
      const r = limited();
      const outcomes = [0, 1, 2].map(() => rxWith(r, payload({ sentAt: 1000 }), 1000).status);
      expect(outcomes).toEqual(["accepted", "accepted", "origin-limited"]);
      expect(r.stats).toMatchObject({ accepted: 2, originLimited: 1, verified: 2 });
    });

    test("an origin-limited message is not remembered (it was never verified): once the author has tokens again, it is accepted, once", () => {
      const r = limited();
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      const p = payload({ sentAt: 1000 });
      expect(rxWith(r, p, 1000).status).toBe("origin-limited");
      expect(rxWith(r, p, 2000).status).toBe("accepted");
      expect(rxWith(r, p, 2000).status).toBe("duplicate");
      expect(r.stats).toMatchObject({ originLimited: 1, duplicates: 1 });
    });

    test("a forgery naming an author past its rate is dropped unverified, and spends nothing of the author's", () => {
      const r = limited();
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      for (let i = 0; i < 5; i++)
        expect(rxWith(r, payload({ sentAt: 1000 }, OTHER), 1000).status).toBe("origin-limited");
      expect(r.stats).toMatchObject({ verified: 2, forged: 0 });
      // Refilled as if no forgery had come: one second, one message.
      expect(rxWith(r, payload({ sentAt: 2000 }), 2000).status).toBe("accepted");
    });

    test("another author is unaffected", () => {
      const r = limited();
      for (let i = 0; i < 3; i++) rxWith(r, payload({ sentAt: 1000 }), 1000);
      const other = payload({ sentAt: 1000, origin: OTHER.publicKey }, OTHER);
      expect(rxWith(r, other, 1000).status).toBe("accepted");
    });

    test("the author's rate refills: a second later one more passes", () => {
      const r = limited();
      for (let i = 0; i < 3; i++) rxWith(r, payload({ sentAt: 1000 }), 1000);
      expect(rxWith(r, payload({ sentAt: 2000 }), 2000).status).toBe("accepted");
      expect(rxWith(r, payload({ sentAt: 2000 }), 2000).status).toBe("origin-limited");
    });

    test("an author that keeps sending over its rate earns nothing until it slows to it", () => {
      const r = limited();
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      rxWith(r, payload({ sentAt: 1000 }), 1000);
      expect(rxWith(r, payload({ sentAt: 1500 }), 1500).status).toBe("origin-limited");
      // 0.7 s after that excess: not yet a whole message earned (1.2 s after the burst).
      expect(rxWith(r, payload({ sentAt: 2200 }), 2200).status).toBe("origin-limited");
      // A full second of quiet: one message, at its rate.
      expect(rxWith(r, payload({ sentAt: 3200 }), 3200).status).toBe("accepted");
    });

    test("direct messages, whose origins are one-time keys, spend their recipient's budget", () => {
      const r = limited();
      const sealedTo = (to: Identity) => {
        const content = { type: DirectType.Text, text: "psst" } as const;
        const sealed = sealDirect({ author: AUTHOR, nick: "a", to: to.publicKey, content }, 1000);
        return (sealed as { frame: Uint8Array }).frame.subarray(5);
      };
      const outcomes = [0, 1, 2].map(() => rxWith(r, sealedTo(OTHER), 1000).status);
      expect(outcomes).toEqual(["accepted", "accepted", "origin-limited"]);
      // Another recipient's budget is its own.
      expect(rxWith(r, sealedTo(AUTHOR), 1000).status).toBe("accepted");
    });

    test("a DIRECT body shorter or longer than a sealed message can be is invalid", () => {
      const r = limited();
      for (const bytes of [MIN_DIRECT_BODY_BYTES - 1, MAX_DIRECT_BODY_BYTES + 1]) {
        const p = payload({ kind: FloodKind.Direct, body: new Uint8Array(bytes) });
        expect(rxWith(r, p, 1000).status).toBe("invalid");
      }
      const fits = payload({ kind: FloodKind.Direct, body: new Uint8Array(MIN_DIRECT_BODY_BYTES) });
      expect(rxWith(r, fits, 1000).status).toBe("accepted");
    });

    test("a forger cannot spend an honest author's budget: forgeries are refused before the rate", () => {
      const r = limited();
      for (let i = 0; i < 5; i++)
        expect(rxWith(r, payload({ sentAt: 1000 }, OTHER), 1000).status).toBe("forged");
      expect(rxWith(r, payload({ sentAt: 1000 }), 1000).status).toBe("accepted");
      expect(r.stats.originLimited).toBe(0);
    });
  });
});
