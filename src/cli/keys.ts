/** A key the line editor acts on, decoded from what the terminal sends. */
export type Key =
  /** Typed characters (one keystroke, or several that arrived together). */
  | { readonly kind: "text"; readonly text: string }
  /** Text the terminal marked as pasted (bracketed paste): never a command, never a key. */
  | { readonly kind: "paste"; readonly text: string }
  | { readonly kind: KeyName };

/** The editing keys, by what they do. */
export type KeyName =
  | "enter"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "word-left"
  | "word-right"
  | "home"
  | "end"
  | "up"
  | "down"
  | "tab"
  | "interrupt"
  | "eof"
  | "kill-to-start"
  | "kill-to-end"
  | "kill-word"
  | "redraw";

/** Asks the terminal to mark pasted text (xterm's bracketed paste, mode 2004). */
export const BRACKETED_PASTE_ON = "\u001b[?2004h";
/** Ends {@link BRACKETED_PASTE_ON}: the shell after us expects plain pastes. */
export const BRACKETED_PASTE_OFF = "\u001b[?2004l";
const PASTE_START = "\u001b[200~";
const PASTE_END = "\u001b[201~";

/** A paste this long is handed on in pieces rather than buffered further. */
export const MAX_PASTE_PIECE_CHARS = 64 * 1024;

/** Control characters, by the key they stand for. */
const CONTROLS: Readonly<Record<string, KeyName>> = {
  "\r": "enter",
  "\n": "enter",
  "\u007f": "backspace",
  "\b": "backspace",
  "\t": "tab",
  "\u0001": "home",
  "\u0002": "left",
  "\u0003": "interrupt",
  "\u0004": "eof",
  "\u0005": "end",
  "\u0006": "right",
  "\u000b": "kill-to-end",
  "\u000c": "redraw",
  "\u000e": "down",
  "\u0010": "up",
  "\u0015": "kill-to-start",
  "\u0017": "kill-word",
};

/** Escape sequences (CSI and SS3, as xterm, VT220 and rxvt send them), by key. */
const SEQUENCES: Readonly<Record<string, KeyName>> = {
  "[A": "up",
  "[B": "down",
  "[C": "right",
  "[D": "left",
  "[H": "home",
  "[F": "end",
  OA: "up",
  OB: "down",
  OC: "right",
  OD: "left",
  OH: "home",
  OF: "end",
  "[1~": "home",
  "[7~": "home",
  "[4~": "end",
  "[8~": "end",
  "[3~": "delete",
  "[1;5C": "word-right",
  "[1;5D": "word-left",
  "[1;3C": "word-right",
  "[1;3D": "word-left",
  b: "word-left",
  f: "word-right",
  "\u007f": "kill-word",
  "\b": "kill-word",
};

/**
 * Turns the bytes a terminal in raw mode sends into {@link Key}s. Pure: it holds only
 * an unfinished escape sequence or paste between chunks, so a key split across two
 * reads decodes as one. Unknown sequences (function keys, mouse reports) are dropped
 * whole rather than typed as text.
 */
export class KeyDecoder {
  private pending = "";
  private paste: string | undefined;

  /** The keys completed by `chunk`. */
  push(chunk: string): Key[] {
    const keys: Key[] = [];
    let input = this.pending + chunk;
    this.pending = "";
    let text = "";
    const flushText = () => {
      if (text !== "") keys.push({ kind: "text", text });
      text = "";
    };
    while (input.length > 0) {
      if (this.paste !== undefined) {
        const end = input.indexOf(PASTE_END);
        if (end < 0) {
          // Keep a possible start of the end marker for the next chunk.
          const keep = partialSuffix(input, PASTE_END);
          this.paste += input.slice(0, input.length - keep);
          this.pending = input.slice(input.length - keep);
          if (this.paste.length > MAX_PASTE_PIECE_CHARS) {
            keys.push({ kind: "paste", text: this.paste });
            this.paste = "";
          }
          return keys;
        }
        this.paste += input.slice(0, end);
        keys.push({ kind: "paste", text: this.paste });
        this.paste = undefined;
        input = input.slice(end + PASTE_END.length);
        continue;
      }
      const ch = input[0] as string;
      if (ch === "\u001b") {
        const length = sequenceLength(input);
        if (length === 0) {
          // Incomplete: wait for the rest (a lone Escape key press is held until the next key).
          this.pending = input;
          break;
        }
        flushText();
        const sequence = input.slice(0, length);
        input = input.slice(length);
        if (sequence === PASTE_START) {
          this.paste = "";
          continue;
        }
        const name = SEQUENCES[sequence.slice(1)];
        if (name) keys.push({ kind: name });
        continue;
      }
      const name = CONTROLS[ch];
      if (name) {
        flushText();
        keys.push({ kind: name });
      } else if (ch >= " ") text += ch;
      input = input.slice(1);
    }
    flushText();
    return keys;
  }
}

/**
 * How long the escape sequence at the start of `input` is, or 0 if it is not complete
 * yet. `ESC [ params final`, `ESC O x`, or `ESC x` (Alt+x).
 */
function sequenceLength(input: string): number {
  if (input.length < 2) return 0;
  const second = input[1] as string;
  if (second === "[") {
    for (let i = 2; i < input.length; i++) {
      const code = input.charCodeAt(i);
      if (code >= 0x40 && code <= 0x7e) return i + 1;
      // Only parameters and intermediates may come before the final byte.
      if (code < 0x20 || code > 0x3f) return i;
    }
    return input.length > 64 ? input.length : 0;
  }
  if (second === "O") return input.length < 3 ? 0 : 3;
  return 2;
}

/** How many characters at the end of `text` could begin `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}
