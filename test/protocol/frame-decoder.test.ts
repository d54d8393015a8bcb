import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/errors.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { MAX_FRAME_BYTES } from "../../src/protocol/constants.ts";
import { type Frame, FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

interface Plain {
  type: number;
  payload: number[];
}

const plain = (frames: Frame[]): Plain[] =>
  frames.map((f) => ({ type: f.type, payload: [...f.payload] }));

function frame(type: number, payload: Uint8Array): Uint8Array {
  return ByteWriter.frame(type, payload.length).bytes(payload).done();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Feeds `stream` cut at `cuts` (sorted offsets) and collects every frame. */
function feed(stream: Uint8Array, cuts: number[]): Plain[] {
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    out.push(...decoder.push(stream.subarray(start, cut)));
    start = cut;
  }
  expect(decoder.error).toBeUndefined();
  expect(decoder.bufferedBytes).toBe(0);
  return plain(out);
}

function randomStream(random: () => number, maxFrames: number, maxPayload: number) {
  const frames: Plain[] = [];
  const parts: Uint8Array[] = [];
  const count = 1 + randomInt(random, maxFrames);
  for (let i = 0; i < count; i++) {
    const type = randomInt(random, 256);
    // Bias towards the edges: empty payloads and payloads right at the limit.
    const r = random();
    const size = r < 0.1 ? 0 : r < 0.15 ? maxPayload : randomInt(random, maxPayload + 1);
    const payload = randomBytes(random, size);
    frames.push({ type, payload: [...payload] });
    parts.push(frame(type, payload));
  }
  return { frames, stream: concat(parts) };
}

describe("FrameDecoder", () => {
  test("decodes streams identically whole, byte by byte and at random cut points (seeded, 3,000 streams)", () => {
    const seed = testSeed(0x5eed_f00d);
    const random = seededRandom(seed);
    for (let round = 0; round < 3000; round++) {
      const { frames, stream } = randomStream(random, 12, round % 10 === 0 ? 2000 : 64);
      const context = `seed ${seed}, round ${round}`;
      expect(feed(stream, []), context).toEqual(frames);
      const cuts = Array.from({ length: randomInt(random, 12) }, () =>
        randomInt(random, stream.length + 1),
      ).sort((a, b) => a - b);
      expect(feed(stream, cuts), context).toEqual(frames);
      if (stream.length <= 4000) {
        expect(
          feed(
            stream,
            Array.from({ length: stream.length }, (_, i) => i),
          ),
          context,
        ).toEqual(frames);
      }
    }
  });

  test("a maximum-size frame arrives byte by byte and at once", () => {
    const payload = randomBytes(seededRandom(7), MAX_FRAME_BYTES - 1);
    const stream = concat([frame(0x02, payload), frame(0x04, new Uint8Array(8))]);
    const expected = [
      { type: 0x02, payload: [...payload] },
      { type: 0x04, payload: [0, 0, 0, 0, 0, 0, 0, 0] },
    ];
    expect(feed(stream, [])).toEqual(expected);
    expect(
      feed(
        stream,
        Array.from({ length: stream.length }, (_, i) => i),
      ),
    ).toEqual(expected);
  });

  test("whole frames inside a chunk are views, not copies", () => {
    const stream = concat([frame(1, Uint8Array.of(9, 9)), frame(2, Uint8Array.of(7))]);
    const frames = new FrameDecoder().push(stream);
    expect(frames[0]?.payload.buffer).toBe(stream.buffer);
    expect(frames[1]?.payload.buffer).toBe(stream.buffer);
  });

  test("a length prefix split across chunks, and two frames across a boundary", () => {
    const stream = concat([frame(1, Uint8Array.of(1, 2, 3)), frame(2, Uint8Array.of(4, 5))]);
    for (const cuts of [[1], [2], [3], [4], [5], [8], [9], [10], [11], [2, 10], [3, 9, 12]]) {
      expect(feed(stream, cuts)).toEqual([
        { type: 1, payload: [1, 2, 3] },
        { type: 2, payload: [4, 5] },
      ]);
    }
  });

  test.each([
    ["zero", [0, 0, 0, 0], "FRAME_EMPTY"],
    ["65,537", [0, 1, 0, 1], "FRAME_TOO_LARGE"],
    ["0xFFFFFFFF", [0xff, 0xff, 0xff, 0xff], "FRAME_TOO_LARGE"],
  ] as const)(
    "a %s length is rejected as soon as its four bytes are in, before any allocation",
    (_name, header, code) => {
      for (const cuts of [[], [1], [2], [3], [1, 2, 3]]) {
        const decoder = new FrameDecoder();
        const bytes = Uint8Array.from(header);
        let start = 0;
        for (const cut of cuts) {
          expect(decoder.push(bytes.subarray(start, cut))).toEqual([]);
          expect(decoder.error).toBeUndefined();
          start = cut;
        }
        expect(decoder.push(bytes.subarray(start))).toEqual([]);
        expect(decoder.error).toBeInstanceOf(ProtocolError);
        expect(decoder.error?.code).toBe(code);
        // Nothing was kept for the announced body.
        expect(decoder.bufferedBytes).toBe(0);
      }
    },
  );

  test("frames before a bad header are returned; the decoder then stays failed", () => {
    const decoder = new FrameDecoder();
    const good = frame(6, Uint8Array.of(0, 2, 104, 105));
    const frames = decoder.push(concat([good, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3)]));
    expect(plain(frames)).toEqual([{ type: 6, payload: [0, 2, 104, 105] }]);
    expect(decoder.error?.code).toBe("FRAME_TOO_LARGE");
    expect(() => decoder.push(good)).toThrow(ProtocolError);
  });

  test("the largest legal length is accepted", () => {
    const decoder = new FrameDecoder();
    const header = Uint8Array.of(0, 1, 0, 0); // 65,536 = type byte + 65,535 payload bytes
    expect(decoder.push(header)).toEqual([]);
    expect(decoder.error).toBeUndefined();
    expect(decoder.bufferedBytes).toBe(0);
    const body = new Uint8Array(MAX_FRAME_BYTES);
    body[0] = 0x42;
    const frames = decoder.push(body);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.type).toBe(0x42);
    expect(frames[0]?.payload.length).toBe(MAX_FRAME_BYTES - 1);
  });
});
