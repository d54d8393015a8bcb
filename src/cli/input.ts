import { MAX_REASON_BYTES, MAX_TEXT_BYTES } from "../protocol/constants.ts";
import { truncateUtf8 } from "../protocol/control.ts";
import { utf8ByteLength } from "../protocol/text.ts";

/** The slash commands, with their help lines. */
export const COMMANDS = {
  help: { usage: "/help", summary: "this list" },
  peers: {
    usage: "/peers",
    summary: "your neighbours: nick, address, direction, since, round-trip time",
  },
  who: {
    usage: "/who",
    summary: "everyone heard from in the last 90 s: nick, hops away, last seen",
  },
  nick: { usage: "/nick NAME", summary: "change your display name (remembered for next time)" },
  me: { usage: "/me ACTION", summary: "say what you are doing: * alice waves" },
  msg: {
    usage: "/msg NAME TEXT",
    summary:
      "a direct message, sealed so only NAME can read it (a nick, nick#tag, or 8+ hex digits of a node id); it waits in the network if NAME is away",
  },
  r: { usage: "/r TEXT", summary: "answer the last direct message you received" },
  history: {
    usage: "/history [N]",
    summary: "the last N stored messages (default 50), each with the time it was sent",
  },
  connect: {
    usage: "/connect HOST:PORT",
    summary: "join another peer (kept linked, redialled if lost)",
  },
  disconnect: {
    usage: "/disconnect HOST:PORT|NAME",
    summary: "drop the link to a neighbour and stop redialling it (it may still dial you)",
  },
  invite: {
    usage: "/invite",
    summary:
      "a ticket for this room that others join with: peerchat join TICKET (it lets its holder in)",
  },
  ignore: {
    usage: "/ignore [NAME]",
    summary:
      "stop showing NAME's messages (by identity, on this screen only); alone: who is ignored",
  },
  unignore: { usage: "/unignore NAME", summary: "show NAME's messages again" },
  clear: { usage: "/clear", summary: "clear the screen (also Ctrl-L to repaint it)" },
  quit: {
    usage: "/quit [WORDS]",
    summary: "leave, with parting words everyone sees (default: quit); also Ctrl-C, Ctrl-D",
  },
} as const;
export type CommandName = keyof typeof COMMANDS;

/** What one line of input asks for. */
export type InputAction =
  | { readonly kind: "chat"; readonly texts: readonly string[] }
  | { readonly kind: "command"; readonly name: CommandName; readonly arg: string }
  | { readonly kind: "unknown-command"; readonly name: string }
  | { readonly kind: "empty" };

/**
 * Interprets a line as typed (`literal`: pasted, so always a message): `/name args` is a command, `//text` sends `/text`,
 * anything else is chat (cleaned and split to the protocol's limits).
 */
export function parseInput(line: string, literal = false): InputAction {
  const clean = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (literal) {
    // Pasted: a message whatever it starts with.
    const texts = chatTexts(clean);
    return texts.length === 0 ? { kind: "empty" } : { kind: "chat", texts };
  }
  if (clean.startsWith("/") && !clean.startsWith("//")) {
    const match = /^\/(\S*)\s*(.*)$/s.exec(clean);
    const name = (match?.[1] ?? "").toLowerCase();
    const arg = (match?.[2] ?? "").trim();
    if (name === "exit") return { kind: "command", name: "quit", arg };
    if (Object.hasOwn(COMMANDS, name)) return { kind: "command", name: name as CommandName, arg };
    return { kind: "unknown-command", name };
  }
  const texts = chatTexts(clean.startsWith("//") ? clean.slice(1) : clean);
  return texts.length === 0 ? { kind: "empty" } : { kind: "chat", texts };
}

/** The help text listing every command. */
export function helpText(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length));
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`);
  return [
    "commands:",
    ...lines,
    "  anything else is sent as a message; start it with // to send a line beginning with /",
  ].join("\n");
}

/**
 * Turns a typed or piped line into protocol-valid texts: tabs become spaces, other
 * control characters (pasted escape sequences) are dropped, a blank line sends
 * nothing, and a line longer than 4096 UTF-8 bytes is split at character boundaries.
 */
export function chatTexts(line: string): string[] {
  const text = line.replaceAll("\t", "    ").replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  if (text.trim().length === 0) return [];
  if (utf8ByteLength(text) <= MAX_TEXT_BYTES) return [text];
  const parts: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i) as number;
    const units = code > 0xffff ? 2 : 1;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > MAX_TEXT_BYTES) {
      parts.push(text.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += units;
  }
  parts.push(text.slice(start));
  return parts;
}

/** What everyone sees when we leave with `/quit WORDS`: cleaned, cut to a LEAVE reason's limit. */
export function partingWords(words: string): string {
  const [text] = chatTexts(words);
  if (text === undefined) return "quit";
  return new TextDecoder().decode(truncateUtf8(text.trim(), MAX_REASON_BYTES));
}
