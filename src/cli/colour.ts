/**
 * Colours for the human output: a stable colour per identity, and a highlight for lines
 * that mention the user. Off unless the output is a terminal, and off whenever `NO_COLOR`
 * is set to anything (https://no-color.org) or the terminal is `dumb`.
 */

/** Foreground colours a nick may get: the 12 of the 16-colour set that read on dark and light backgrounds. */
const NICK_COLOURS = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96] as const;

const RESET_FOREGROUND = "\u001b[39m";
const BOLD = "\u001b[1m";
const NORMAL_INTENSITY = "\u001b[22m";

/** Whether to colour output written to a terminal (`isTerminal`), given the environment. */
export function colourWanted(
  isTerminal: boolean,
  env: Record<string, string | undefined> = process.env,
): boolean {
  return isTerminal && !env.NO_COLOR && env.TERM !== "dumb";
}

/** Paints text for a terminal, or leaves it as it is. */
export interface Painter {
  /** A nick (already sanitised), in the colour of its identity. */
  nick(text: string, nodeId: string): string;
  /** A whole line that mentions the user. */
  mention(text: string): string;
}

/** The painter for plain output: changes nothing. */
export const PLAIN: Painter = { nick: (text) => text, mention: (text) => text };

/** The painter for a colour terminal. */
export const COLOURED: Painter = {
  nick: (text, nodeId) => `\u001b[${nickColour(nodeId)}m${text}${RESET_FOREGROUND}`,
  mention: (text) => `${BOLD}${text}${NORMAL_INTENSITY}`,
};

/** The SGR colour of an identity: derived from its node id, so the same on every run and every screen. */
export function nickColour(nodeIdHex: string): number {
  const bits = Number.parseInt(nodeIdHex.slice(0, 4), 16) || 0;
  return NICK_COLOURS[bits % NICK_COLOURS.length] as number;
}

/** Whether `text` names `nick` as a word (any case): `bob: hi`, `hi @bob!`, not `bobby`. */
export function mentions(text: string, nick: string): boolean {
  return mentionOf(nick)(text);
}

/** {@link mentions} for one nick, its pattern built once: the test for every line shown. */
export function mentionOf(nick: string): (text: string) => boolean {
  if (nick.trim() === "") return () => false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu");
  return (text) => pattern.test(text);
}
