import { expect, test } from "bun:test";
import { RETAINED_BYTES, WriteBuffer } from "../../src/transport/write-buffer.ts";
import { randomBytes, randomInt, seededRandom } from "../helpers/random.ts";

test("bytes come out in order whatever the mix of appends and partial consumes (seeded)", () => {
  const random = seededRandom(42);
  const buffer = new WriteBuffer();
  const expected: number[] = [];
  const got: number[] = [];
  for (let round = 0; round < 5000; round++) {
    if (random() < 0.6) {
      const bytes = randomBytes(random, randomInt(random, 3000));
      buffer.append(bytes);
      expected.push(...bytes);
    } else {
      const n = randomInt(random, buffer.length + 1);
      got.push(...buffer.store.subarray(buffer.offset, buffer.offset + n));
      buffer.consume(n);
    }
    expect(buffer.length).toBe(expected.length - got.length);
  }
  got.push(...buffer.store.subarray(buffer.offset, buffer.offset + buffer.length));
  expect(got).toEqual(expected);
});

test("an emptied buffer gives back a large backing store", () => {
  const buffer = new WriteBuffer();
  buffer.append(new Uint8Array(1024 * 1024));
  expect(buffer.store.length).toBeGreaterThanOrEqual(1024 * 1024);
  buffer.consume(1024 * 1024);
  expect(buffer.store.length).toBeLessThanOrEqual(RETAINED_BYTES);
});
