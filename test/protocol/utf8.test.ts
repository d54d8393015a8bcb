import { expect, test } from "bun:test";
import { type Utf8Problem, utf8TextProblem } from "../../src/protocol/utf8.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The reference: what the strict decoder plus the control-character rule say. */
function reference(bytes: Uint8Array): Utf8Problem {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return "invalid UTF-8";
  }
  return CONTROL.test(text) ? "control characters" : undefined;
}

test("agrees with TextDecoder(fatal) + the control-character rule on 200,000 seeded inputs", () => {
  const seed = testSeed(0x0f8);
  const random = seededRandom(seed);
  const pieces = [
    [0x41],
    [0x7e],
    [0x7f],
    [0x00],
    [0x1f],
    [0x20],
    [0xc2, 0x80],
    [0xc2, 0x9f],
    [0xc2, 0xa0],
    [0xc3, 0xa9],
    [0xc0, 0x80],
    [0xc1, 0xbf],
    [0xdf, 0xbf],
    [0xe0, 0x80, 0x80],
    [0xe0, 0xa0, 0x80],
    [0xed, 0x9f, 0xbf],
    [0xed, 0xa0, 0x80],
    [0xef, 0xbf, 0xbf],
    [0xf0, 0x8f, 0xbf, 0xbf],
    [0xf0, 0x90, 0x80, 0x80],
    [0xf4, 0x8f, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xf5, 0x80, 0x80, 0x80],
    [0x80],
    [0xbf],
    [0xfe],
    [0xff],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x8e],
  ];
  let valid = 0;
  for (let i = 0; i < 200_000; i++) {
    let bytes: Uint8Array;
    if (i % 3 === 0) {
      bytes = randomBytes(random, randomInt(random, 12));
    } else {
      const parts: number[] = [];
      const n = randomInt(random, 8);
      for (let j = 0; j < n; j++)
        parts.push(...(pieces[randomInt(random, pieces.length)] as number[]));
      bytes = Uint8Array.from(parts);
    }
    const want = reference(bytes);
    if (want === undefined) valid++;
    expect(utf8TextProblem(bytes, 0, bytes.length), `seed ${seed} case ${i}: ${[...bytes]}`).toBe(
      want,
    );
  }
  expect(valid).toBeGreaterThan(10_000); // the generator does produce valid text too
});

test("checks only its range", () => {
  const bytes = Uint8Array.of(0xff, 0x68, 0x69, 0x00);
  expect(utf8TextProblem(bytes, 1, 3)).toBeUndefined();
  expect(utf8TextProblem(bytes, 1, 4)).toBe("control characters");
  expect(utf8TextProblem(Uint8Array.of(0x68, 0xe2, 0x82, 0xac), 0, 3)).toBe("invalid UTF-8"); // cut mid-character
});
