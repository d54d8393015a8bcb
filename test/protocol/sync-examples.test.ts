import { expect, test } from "bun:test";
import { STRATA_WIRE_CELLS } from "../../src/history/sync-session.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { hex } from "../../src/protocol/hex.ts";
import {
  decodeSync,
  encodeHistory,
  encodeSyncBegin,
  encodeSyncDone,
  encodeSyncKeys,
  encodeSyncRetry,
  SyncOp,
} from "../../src/protocol/sync.ts";

/**
 * The SYNC examples of docs/PROTOCOL.md §9, "History frames", live only there: this test
 * reads the hex of each block (everything before the two spaces that start a comment)
 * and checks that the encoders give exactly those bytes, and the decoder reads them back.
 */
const doc = await Bun.file(new URL("../../docs/PROTOCOL.md", import.meta.url)).text();

function examples(): string[] {
  const start = doc.indexOf("\n### History frames\n");
  const end = doc.indexOf("\n### ", start + 1);
  expect(start).toBeGreaterThan(0);
  const section = doc.slice(start, end);
  const blocks = [...section.matchAll(/\n```\n([\s\S]*?)\n```\n/g)].map((m) => m[1] as string);
  return blocks.map((block) =>
    block
      .split("\n")
      .map((line) => (line.split(/ {2,}/)[0] as string).replaceAll(" ", ""))
      .join(""),
  );
}

test("the SYNC examples in docs/PROTOCOL.md are what the encoders write, and decode back", () => {
  const [begin, done, retry, want] = examples();
  const frames = [
    encodeSyncBegin(7, [1, 2], 1_700_000_000_000, 1_700_000_120_000, 3, [0, 42]),
    encodeSyncDone(7),
    encodeSyncRetry(7, 0),
    encodeSyncKeys(SyncOp.Want, 7, true, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)),
  ];
  expect(frames.map(hex)).toEqual([begin, done, retry, want] as string[]);
  expect(decodeSync(frames[0]?.subarray(5) as Uint8Array, STRATA_WIRE_CELLS)).toEqual({
    op: SyncOp.Begin,
    session: 7,
    salt: [1, 2],
    since: 1_700_000_000_000,
    until: 1_700_000_120_000,
    count: 3,
    sum: [0, 42],
  });
  expect(decodeSync(frames[2]?.subarray(5) as Uint8Array, STRATA_WIRE_CELLS)).toEqual({
    op: SyncOp.Retry,
    session: 7,
    cellCount: 0,
  });
});

test("HISTORY is the stored FLOOD payload under type 0x09", () => {
  const payload = Uint8Array.from({ length: 135 }, (_, i) => i);
  const frame = encodeHistory(payload);
  expect(hex(frame.subarray(0, 5))).toBe("0000008809");
  expect(frame[4]).toBe(FrameType.History);
  expect(frame.subarray(5)).toEqual(payload);
});
