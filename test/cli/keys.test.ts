import { describe, expect, test } from "bun:test";
import { type Key, KeyDecoder } from "../../src/cli/keys.ts";

/** Decodes `input` fed whole, one character at a time, and cut at every point: all must agree. */
function decodeEveryWay(input: string): Key[] {
  const whole = new KeyDecoder().push(input);
  const bytewise = new KeyDecoder();
  const one = [...input].flatMap((ch) => bytewise.push(ch));
  expect(merge(one)).toEqual(merge(whole));
  for (let cut = 1; cut < input.length; cut++) {
    const d = new KeyDecoder();
    expect(merge([...d.push(input.slice(0, cut)), ...d.push(input.slice(cut))])).toEqual(
      merge(whole),
    );
  }
  return whole;
}

/** Adjacent text keys joined (how text is split into keys depends on the chunks). */
function merge(keys: Key[]): Key[] {
  const out: Key[] = [];
  for (const key of keys) {
    const last = out.at(-1);
    if (key.kind === "text" && last?.kind === "text")
      out[out.length - 1] = { kind: "text", text: last.text + key.text };
    else if (key.kind === "paste" && last?.kind === "paste")
      out[out.length - 1] = { kind: "paste", text: last.text + key.text };
    else out.push(key);
  }
  return out;
}

describe("KeyDecoder", () => {
  test.each([
    ["plain text", "héllo 世界 👍", [{ kind: "text", text: "héllo 世界 👍" }]],
    [
      "enter (CR and LF)",
      "a\rb\n",
      [
        { kind: "text", text: "a" },
        { kind: "enter" },
        { kind: "text", text: "b" },
        { kind: "enter" },
      ],
    ],
    [
      "arrows, CSI and SS3",
      "\u001b[A\u001b[B\u001bOC\u001bOD",
      [{ kind: "up" }, { kind: "down" }, { kind: "right" }, { kind: "left" }],
    ],
    [
      "home, end, delete",
      "\u001b[H\u001b[F\u001b[1~\u001b[4~\u001b[3~",
      [{ kind: "home" }, { kind: "end" }, { kind: "home" }, { kind: "end" }, { kind: "delete" }],
    ],
    [
      "Ctrl keys",
      "\u0001\u0005\u0015\u000b\u0017\u0003\u0004\u000c\t\u007f",
      [
        { kind: "home" },
        { kind: "end" },
        { kind: "kill-to-start" },
        { kind: "kill-to-end" },
        { kind: "kill-word" },
        { kind: "interrupt" },
        { kind: "eof" },
        { kind: "redraw" },
        { kind: "tab" },
        { kind: "backspace" },
      ],
    ],
    [
      "word moves: Alt and Ctrl arrows",
      "\u001bb\u001bf\u001b[1;5D\u001b[1;5C",
      [
        { kind: "word-left" },
        { kind: "word-right" },
        { kind: "word-left" },
        { kind: "word-right" },
      ],
    ],
    [
      "unknown sequences are dropped whole",
      "a\u001b[15~b\u001b[<0;3;4Mc",
      [{ kind: "text", text: "abc" }],
    ],
    [
      "a bracketed paste, commands and line breaks in it",
      "x\u001b[200~/nick bob\nsecond\u001b[201~y",
      [
        { kind: "text", text: "x" },
        { kind: "paste", text: "/nick bob\nsecond" },
        { kind: "text", text: "y" },
      ],
    ],
    [
      "escapes inside a paste are text, not keys",
      "\u001b[200~a\u001b[Ab\u001b[201~",
      [{ kind: "paste", text: "a\u001b[Ab" }],
    ],
  ] as const)("%s", (_name, input, keys) => {
    expect(merge(decodeEveryWay(input))).toEqual(keys as unknown as Key[]);
  });

  test("a paste too long to hold is handed on in pieces", () => {
    const d = new KeyDecoder();
    const keys = [
      ...d.push("\u001b[200~"),
      ...d.push("z".repeat(100_000)),
      ...d.push("\u001b[201~"),
    ];
    expect(keys.length).toBeGreaterThan(1);
    expect(keys.every((k) => k.kind === "paste")).toBe(true);
    expect(keys.map((k) => (k.kind === "paste" ? k.text : "")).join("")).toBe("z".repeat(100_000));
  });
});
