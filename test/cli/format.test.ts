import { expect, test } from "bun:test";
import { formatChatLine, formatDuration, sanitize } from "../../src/cli/format.ts";
import { formatLogLine } from "../../src/cli/logger.ts";

test("sanitize neutralises terminal controls and bidi overrides, visibly", () => {
  expect(sanitize("\u001b[2J\u001b[Hboo")).toBe("^[[2J^[[Hboo");
  expect(sanitize("bell\u0007 del\u007f csi\u009b")).toBe("bell^G del^? csi\\u{9b}");
  expect(sanitize("abc\u202Edef\u2066")).toBe("abc\\u{202e}def\\u{2066}");
  expect(sanitize("plain ünïcødé 🎉")).toBe("plain ünïcødé 🎉");
});

test("chat lines: [HH:MM:SS] <nick> text, neutralised", () => {
  const at = new Date(2026, 10, 24, 9, 5, 7).getTime();
  const line = formatChatLine({
    id: "",
    origin: "",
    seq: 1,
    nick: "b\u001bob",
    text: "hi\u202E",
    sentAt: at,
    receivedAt: at,
    hops: 1,
    own: false,
  });
  expect(line).toBe("[09:05:07] <b^[ob> hi\\u{202e}");
});

test("log lines are neutralised too", () => {
  const line = formatLogLine({
    level: 1,
    type: "warn",
    tag: "",
    args: ["bob left: \u001b[2J"],
    date: new Date(2026, 0, 1, 1, 2, 3),
  });
  expect(line).toBe("[01:02:03] warn: bob left: ^[[2J");
});

test("durations", () => {
  expect(formatDuration(4_000)).toBe("4s");
  expect(formatDuration(192_000)).toBe("3m 12s");
  expect(formatDuration(3_840_000)).toBe("1h 04m");
  expect(formatDuration(200 * 3_600_000)).toBe("8d 08h");
});
