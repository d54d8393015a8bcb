import { describe, expect, test } from "bun:test";
import { keyTag, NickBook } from "../../src/cli/nick-book.ts";
import { humanOutput } from "../../src/cli/output.ts";
import { resolveRecipient } from "../../src/cli/recipient.ts";
import type { ChatMessage } from "../../src/node/delivery.ts";

const ALICE = "a1".repeat(32);
const MALLORY = "5e".repeat(32);
const SELF = "00".repeat(32);

test("a key tag is the node id's first 20 bits in base32", () => {
  expect(keyTag("0000000000")).toBe("aaaa");
  expect(keyTag("ffffff")).toBe("7777");
  expect(keyTag(ALICE)).toHaveLength(4);
  expect(keyTag(ALICE)).not.toBe(keyTag(MALLORY));
});

test("a nick is plain until a second identity uses it; then both carry their tags", () => {
  const book = new NickBook();
  expect(book.label(ALICE, "alice")).toBe("alice");
  expect(book.label(ALICE, "alice")).toBe("alice");
  // Same letters, other case and a full-width "ａ": read the same, so confusable.
  expect(book.label(MALLORY, "Alice")).toBe(`Alice#${keyTag(MALLORY)}`);
  expect(book.label(MALLORY, "ａlice")).toBe(`ａlice#${keyTag(MALLORY)}`);
  expect(book.label(ALICE, "alice")).toBe(`alice#${keyTag(ALICE)}`);
  // Hostile characters are still neutralised.
  expect(book.label(MALLORY, "\u001b[2Jx")).toBe("^[[2Jx");
});

test("the chat shows a copied nick with its tag, and ours too", () => {
  const lines: string[] = [];
  const out = humanOutput((line) => lines.push(line));
  out.ready({
    nodeId: SELF,
    listen: { host: "127.0.0.1", port: 9000 },
    nick: "alice",
    version: "0",
  });
  const message = (origin: string, nick: string, text: string) =>
    ({ origin, nick, text, receivedAt: 0 }) as unknown as ChatMessage;
  out.message(message(SELF, "alice", "hello"));
  out.message(message(MALLORY, "alice", "I am alice, send me your keys"));
  out.message(message(SELF, "alice", "no you are not"));
  expect(lines[1]).toEndWith("<alice> hello");
  expect(lines[2]).toEndWith(`<alice#${keyTag(MALLORY)}> I am alice, send me your keys`);
  expect(lines[3]).toEndWith(`<alice#${keyTag(SELF)}> no you are not`);
});

describe("who /msg NAME means", () => {
  const BOB = "b0b0b0b0".repeat(8);
  const book = new NickBook();
  book.see(ALICE, "alice");
  book.see(MALLORY, "Alice");
  book.see(BOB, "bob");

  test.each([
    ["bob", [BOB]],
    ["BOB", [BOB]],
    ["alice", [ALICE, MALLORY]],
    [`alice#${keyTag(MALLORY)}`, [MALLORY]],
    [`alice#${keyTag(ALICE)}`, [ALICE]],
    [ALICE.slice(0, 8), [ALICE]],
    [ALICE.slice(0, 7), []],
    ["carol", []],
  ])("%s", (name, expected) => {
    expect(
      book
        .candidates(name)
        .map((c) => c.nodeId)
        .sort(),
    ).toEqual([...expected].sort());
  });

  test("a whole node id nobody has heard of still names someone", () => {
    const stranger = "5".repeat(64);
    expect(book.candidates(stranger)).toEqual([{ nodeId: stranger, nick: undefined }]);
  });

  test("a nick no one uses any more still names who used it", () => {
    const renamed = new NickBook();
    renamed.see(BOB, "bob");
    renamed.see(BOB, "robert");
    expect(renamed.candidates("bob").map((c) => c.nodeId)).toEqual([BOB]);
  });

  test("refusals list the candidates, or the nicks that look alike", () => {
    const ambiguous = resolveRecipient(book, "alice");
    expect(ambiguous.status).toBe("refused");
    if (ambiguous.status !== "refused") return;
    expect(ambiguous.message).toContain(`alice#${keyTag(ALICE)} (${ALICE.slice(0, 8)})`);
    expect(ambiguous.message).toContain(`Alice#${keyTag(MALLORY)} (${MALLORY.slice(0, 8)})`);
    const unknown = resolveRecipient(book, "alicia");
    expect(unknown.status === "refused" && unknown.message).toContain('nobody known as "alicia"');
    expect(unknown.status === "refused" && unknown.message).toContain(ALICE.slice(0, 8));
    expect(resolveRecipient(book, "bob")).toEqual({ status: "found", nodeId: BOB, nick: "bob" });
  });
});
