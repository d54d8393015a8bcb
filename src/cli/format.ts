import type { ChatMessage } from "../node/delivery.ts";
import type { NeighbourInfo } from "../node/node-events.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";

/**
 * Characters that could repaint or confuse a terminal: C0 and C1 controls (ESC starts
 * every ANSI sequence), DEL, and the Unicode bidirectional overrides and isolates
 * (which can make text read differently from what was sent).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Neutralises anything from the network before it reaches a terminal: controls become
 * visible `^X` / `\u{…}` marks. The protocol already rejects controls in nicks and
 * texts; this is the second line of defence, and also covers log lines.
 */
export function sanitize(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
    if (code === 0x7f) return "^?";
    return `\\u{${code.toString(16)}}`;
  });
}

/** `HH:MM:SS` in local time, or `HH:MM:SS.mmm` when `precise`. */
export function clockTime(date: Date | number, precise = false): string {
  const d = typeof date === "number" ? new Date(date) : date;
  const hms = [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return precise ? `${hms}.${String(d.getMilliseconds()).padStart(3, "0")}` : hms;
}

/**
 * A chat line: `[HH:MM:SS] <nick> text`, stamped with the local time of arrival (of
 * sending, `at`, for a message from history). `shownNick` is the nick as it is to be
 * shown (sanitised, perhaps with a key tag).
 */
export function formatChatLine(
  message: ChatMessage,
  shownNick: string = sanitize(message.nick),
  at: number = message.receivedAt,
): string {
  const action = actionOf(message.text);
  return action === undefined
    ? `[${clockTime(at)}] <${shownNick}> ${sanitize(message.text)}`
    : `[${clockTime(at)}] * ${shownNick} ${sanitize(action)}`;
}

/**
 * What an action (`/me waves`) says, or undefined for a plain message. An action is a
 * room message whose text starts with `/me `: peers that do not know the convention
 * show it as typed, which still reads.
 */
export function actionOf(text: string): string | undefined {
  return text.startsWith(ACTION_PREFIX) && text.length > ACTION_PREFIX.length
    ? text.slice(ACTION_PREFIX.length)
    : undefined;
}

/** The start of an action's text. */
export const ACTION_PREFIX = "/me ";

/**
 * A direct message line, distinct from room lines: `[HH:MM:SS] *bob* → you: text` for
 * one to us, `[HH:MM:SS] you → *bob*: text` for ours. One that waited in the network
 * while we were away is stamped with the time it was sent, and says so.
 */
export function formatDirectLine(
  message: { own: boolean; late: boolean; text: string; sentAt: number; receivedAt: number },
  shownOther: string,
): string {
  const at = message.late ? message.sentAt : message.receivedAt;
  const who = message.own
    ? `you → *${shownOther}*`
    : `*${shownOther}* → you${message.late ? " (while you were away)" : ""}`;
  return `[${clockTime(at)}] ${who}: ${sanitize(message.text)}`;
}

/** `HH:MM` in local time. */
export function clockMinutes(at: number): string {
  return clockTime(at).slice(0, 5);
}

/** An info line: `[HH:MM:SS] * text`. */
export function formatInfoLine(text: string, at = Date.now()): string {
  return `[${clockTime(at)}] * ${text}`;
}

/** `bob (127.0.0.1:9001)`, or `bob (via carol)`; `shownNick` as {@link formatChatLine}'s. */
export function describePeer(
  peer: Pick<NeighbourInfo, "nick" | "address" | "via">,
  shownNick: string = sanitize(peer.nick),
  relayName?: string,
): string {
  if (peer.via) return `${shownNick} (via ${relayName ?? formatEndpoint(peer.via.relayAddress)})`;
  return `${shownNick} (${formatEndpoint(peer.address)})`;
}

/** `3m 12s`, `1h 04m`, `45s`: a short duration. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, "0")}h`;
}

/** Lays out rows as left-aligned columns separated by two spaces. */
export function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "),
  );
}
