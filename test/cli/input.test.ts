import { describe, expect, test } from "bun:test";
import { chatTexts, helpText, parseInput, partingWords } from "../../src/cli/input.ts";
import { MAX_TEXT_BYTES } from "../../src/protocol/constants.ts";
import { textProblem } from "../../src/protocol/text.ts";

describe("parseInput", () => {
  test.each([
    ["hello", { kind: "chat", texts: ["hello"] }],
    ["hello\r", { kind: "chat", texts: ["hello"] }],
    ["", { kind: "empty" }],
    ["   ", { kind: "empty" }],
    ["/help", { kind: "command", name: "help", arg: "" }],
    ["/PEERS", { kind: "command", name: "peers", arg: "" }],
    ["/nick  Alice B ", { kind: "command", name: "nick", arg: "Alice B" }],
    ["/connect localhost:9000", { kind: "command", name: "connect", arg: "localhost:9000" }],
    ["/quit", { kind: "command", name: "quit", arg: "" }],
    ["/exit", { kind: "command", name: "quit", arg: "" }],
    ["/frob x", { kind: "unknown-command", name: "frob" }],
    ["/", { kind: "unknown-command", name: "" }],
    ["//not a command", { kind: "chat", texts: ["/not a command"] }],
  ])("%j", (line, action) => {
    expect(parseInput(line)).toEqual(action as ReturnType<typeof parseInput>);
  });

  test("help lists every command", () => {
    for (const c of ["/help", "/peers", "/nick NAME", "/connect HOST:PORT", "/quit"])
      expect(helpText()).toContain(c);
  });
});

describe("chatTexts", () => {
  test("tabs become spaces, pasted escape sequences lose their control bytes", () => {
    expect(chatTexts("a\tb")).toEqual(["a    b"]);
    expect(chatTexts("\u001b[31mred\u001b[0m")).toEqual(["[31mred[0m"]);
  });

  test("a long line is split at character boundaries into valid texts, nothing lost", () => {
    const line = "€".repeat(3000) + "🎉".repeat(1000); // 9,000 + 4,000 bytes
    const parts = chatTexts(line);
    expect(parts.join("")).toBe(line);
    for (const part of parts) {
      expect(textProblem(part)).toBeUndefined();
      expect(new TextEncoder().encode(part).length).toBeLessThanOrEqual(MAX_TEXT_BYTES);
    }
    expect(parts.length).toBe(4);
  });
});

describe("parting words (/quit WORDS)", () => {
  test.each([
    ["", "quit"],
    ["   ", "quit"],
    ["see you all", "see you all"],
    ["  bye\tnow \u001b[2J", "bye    now [2J"],
    ["é".repeat(200), "é".repeat(128)],
  ])("%j → %j", (words, expected) => {
    expect(partingWords(words)).toBe(expected);
  });
});
