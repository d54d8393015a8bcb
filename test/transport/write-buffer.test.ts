import { expect, test } from "bun:test";
import { BLOCK_BYTES, WriteBuffer } from "../../src/transport/write-buffer.ts";
import { randomBytes, randomInt, seededRandom } from "../helpers/random.ts";

/** Takes up to `n` bytes from the head, segment by segment, as a flush does. */
function take(buffer: WriteBuffer, n: number): number[] {
  const out: number[] = [];
  while (out.length < n && buffer.length > 0) {
    const k = Math.min(buffer.segment, n - out.length);
    out.push(...buffer.store.subarray(buffer.offset, buffer.offset + k));
    buffer.consume(k);
  }
  return out;
}

test("bytes come out in order whatever the mix of appends and partial consumes (seeded)", () => {
  const random = seededRandom(42);
  const buffer = new WriteBuffer();
  const expected: number[] = [];
  const got: number[] = [];
  for (let round = 0; round < 3000; round++) {
    if (random() < 0.6) {
      // Sizes straddle block boundaries, up to the largest frame.
      const bytes = randomBytes(random, random() < 0.05 ? 65_540 : randomInt(random, 3000));
      buffer.append(bytes);
      expected.push(...bytes);
    } else {
      got.push(...take(buffer, randomInt(random, buffer.length + 1)));
    }
    expect(buffer.length).toBe(expected.length - got.length);
  }
  got.push(...take(buffer, buffer.length));
  expect(got.length).toBe(expected.length);
  expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
});

test("a segment never crosses a block, and an emptied buffer keeps at most one block", () => {
  const buffer = new WriteBuffer();
  buffer.append(new Uint8Array(BLOCK_BYTES * 3 + 10));
  expect(buffer.segment).toBe(BLOCK_BYTES);
  take(buffer, buffer.length);
  expect(buffer.length).toBe(0);
  expect(buffer.segment).toBe(0);
  buffer.append(Uint8Array.of(1, 2, 3));
  expect(buffer.segment).toBe(3);
  expect([...buffer.store.subarray(buffer.offset, buffer.offset + 3)]).toEqual([1, 2, 3]);
});
