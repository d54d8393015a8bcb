import type { Key } from "./keys.ts";

/** Lines of input history kept (and remembered across restarts). */
export const MAX_INPUT_HISTORY = 500;

/** A typed or pasted line longer than this stops taking characters (and rings the bell). */
export const MAX_INPUT_CHARS = 64 * 1024;

/** What a key asks the terminal to do, besides redrawing the input row. */
export type EditorEffect =
  /**
   * A finished line. `literal`: its first character was pasted, so it is a message
   * even if it starts with `/` (a pasted `/nick x` must not rename the user).
   */
  | { readonly kind: "submit"; readonly line: string; readonly literal: boolean }
  | { readonly kind: "interrupt" }
  | { readonly kind: "eof" }
  /** Clear the screen and paint it again (Ctrl-L). */
  | { readonly kind: "repaint" }
  | { readonly kind: "bell" };

/** What Tab completes from: the slash commands, and the names of who is around. */
export interface Completions {
  commands(): readonly string[];
  nicks(): readonly string[];
}

/** The input row as it fits the screen. */
export interface InputView {
  /** The visible part of the line. */
  readonly text: string;
  /** The cursor's column within `text`. */
  readonly cursor: number;
}

const segmenter = new Intl.Segmenter();

/** Splits text into what a person sees as characters (an emoji with modifiers is one). */
function graphemes(text: string): string[] {
  return Array.from(segmenter.segment(text), (s) => s.segment);
}

function width(cells: readonly string[], from = 0, to = cells.length): number {
  let total = 0;
  for (let i = from; i < to; i++) total += Bun.stringWidth(cells[i] as string);
  return total;
}

const isSpace = (g: string | undefined) => g !== undefined && /^\s$/u.test(g);

/**
 * The line being typed, as a pure state machine: keys in, effects out, no terminal.
 * Emacs keys (as readline's), history on Up/Down, Tab completion of commands and nicks,
 * and pasted text that is never taken for a command. The line is shown on one row,
 * scrolled sideways when it is wider than the screen, so its height never depends on
 * the terminal's width (a resize cannot leave half a line behind).
 */
export class LineEditor {
  private cells: string[] = [];
  private cursor = 0;
  /** First cell shown when the line is wider than the row. */
  private scroll = 0;
  private literal = false;
  private readonly history: string[];
  /** Where Up/Down is in the history; `history.length` is the line being written. */
  private historyIndex: number;
  private draft: string[] = [];
  private completion:
    | { start: number; candidates: readonly string[]; index: number; end: number }
    | undefined;

  constructor(
    private readonly completions: Completions = { commands: () => [], nicks: () => [] },
    history: readonly string[] = [],
  ) {
    this.history = history.slice(-MAX_INPUT_HISTORY);
    this.historyIndex = this.history.length;
  }

  /** The line as typed so far. */
  get line(): string {
    return this.cells.join("");
  }

  /** The lines submitted, oldest first, for remembering across restarts. */
  get submitted(): readonly string[] {
    return this.history;
  }

  /** Applies one key; returns what the terminal must do besides redrawing. */
  handle(key: Key): EditorEffect[] {
    if (key.kind !== "tab") this.completion = undefined;
    switch (key.kind) {
      case "text":
        return this.insert(key.text);
      case "paste":
        return this.paste(key.text);
      case "enter":
        return [this.submit()];
      case "tab":
        return this.complete();
      case "interrupt":
        return [{ kind: "interrupt" }];
      case "eof":
        if (this.cells.length === 0) return [{ kind: "eof" }];
        return this.deleteRange(this.cursor, this.cursor + 1);
      case "backspace":
        return this.deleteRange(this.cursor - 1, this.cursor);
      case "delete":
        return this.deleteRange(this.cursor, this.cursor + 1);
      case "kill-to-start":
        return this.deleteRange(0, this.cursor);
      case "kill-to-end":
        return this.deleteRange(this.cursor, this.cells.length);
      case "kill-word":
        return this.deleteRange(this.wordStart(), this.cursor);
      case "left":
        this.cursor = Math.max(0, this.cursor - 1);
        return [];
      case "right":
        this.cursor = Math.min(this.cells.length, this.cursor + 1);
        return [];
      case "word-left":
        this.cursor = this.wordStart();
        return [];
      case "word-right":
        this.cursor = this.wordEnd();
        return [];
      case "home":
        this.cursor = 0;
        return [];
      case "end":
        this.cursor = this.cells.length;
        return [];
      case "up":
        return this.recall(this.historyIndex - 1);
      case "down":
        return this.recall(this.historyIndex + 1);
      case "redraw":
        return [{ kind: "repaint" }];
    }
  }

  /**
   * The row to draw: the part of the line that fits `columns` after a prompt
   * `promptWidth` wide, keeping the cursor in sight. The last column is never used, so
   * the terminal never wraps the row.
   */
  view(columns: number, promptWidth: number): InputView {
    const room = Math.max(2, columns - promptWidth - 1);
    if (this.cursor < this.scroll) this.scroll = this.cursor;
    // The cursor sits after the last visible cell: keep one column for it.
    while (this.scroll < this.cursor && width(this.cells, this.scroll, this.cursor) > room - 1)
      this.scroll++;
    while (this.scroll > 0 && width(this.cells, this.scroll - 1) <= room - 1) this.scroll--;
    let end = this.scroll;
    let used = 0;
    while (end < this.cells.length) {
      const w = Bun.stringWidth(this.cells[end] as string);
      if (used + w > room) break;
      used += w;
      end++;
    }
    return {
      text: this.cells.slice(this.scroll, end).join(""),
      cursor: width(this.cells, this.scroll, this.cursor),
    };
  }

  private insert(text: string): EditorEffect[] {
    const added = graphemes(text);
    if (this.cells.length + added.length > MAX_INPUT_CHARS) return [{ kind: "bell" }];
    this.cells.splice(this.cursor, 0, ...added);
    this.cursor += added.length;
    return [];
  }

  /** Pasted lines are messages: each line break in a paste sends the line it ends. */
  private paste(text: string): EditorEffect[] {
    const effects: EditorEffect[] = [];
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    for (const [i, piece] of lines.entries()) {
      if (this.cells.length === 0 && piece.length > 0) this.literal = true;
      effects.push(...this.insert(piece.replaceAll("\t", "    ")));
      if (i < lines.length - 1) effects.push(this.submit());
    }
    return effects;
  }

  private submit(): EditorEffect {
    const line = this.line;
    const literal = this.literal;
    if (line.trim() !== "" && this.history.at(-1) !== line) {
      this.history.push(line);
      if (this.history.length > MAX_INPUT_HISTORY) this.history.shift();
    }
    this.historyIndex = this.history.length;
    this.draft = [];
    this.setLine([]);
    return { kind: "submit", line, literal };
  }

  private setLine(cells: string[]): void {
    this.cells = cells;
    this.cursor = cells.length;
    this.scroll = 0;
    this.literal = false;
  }

  private deleteRange(from: number, to: number): EditorEffect[] {
    const start = Math.max(0, from);
    const end = Math.min(this.cells.length, to);
    if (end <= start) return [];
    this.cells.splice(start, end - start);
    this.cursor = start;
    if (this.cells.length === 0) this.literal = false;
    return [];
  }

  private recall(index: number): EditorEffect[] {
    if (index < 0 || index > this.history.length) return [{ kind: "bell" }];
    if (this.historyIndex === this.history.length) this.draft = this.cells;
    this.historyIndex = index;
    this.setLine(
      index === this.history.length ? this.draft : graphemes(this.history[index] as string),
    );
    return [];
  }

  private wordStart(): number {
    let i = this.cursor;
    while (i > 0 && isSpace(this.cells[i - 1])) i--;
    while (i > 0 && !isSpace(this.cells[i - 1])) i--;
    return i;
  }

  private wordEnd(): number {
    let i = this.cursor;
    while (i < this.cells.length && isSpace(this.cells[i])) i++;
    while (i < this.cells.length && !isSpace(this.cells[i])) i++;
    return i;
  }

  /**
   * Tab: completes the word before the cursor — a command at the start of a line that
   * begins with `/`, else a nick (`bob: ` at the start of a line, `bob ` after). Several
   * candidates: the first Tab extends to what they share, each further Tab cycles.
   */
  private complete(): EditorEffect[] {
    if (this.completion) {
      const c = this.completion;
      c.index = (c.index + 1) % c.candidates.length;
      this.replaceWord(c.start, c.end, c.candidates[c.index] as string);
      c.end = this.cursor;
      return [];
    }
    let start = this.cursor;
    while (start > 0 && !isSpace(this.cells[start - 1])) start--;
    const word = this.cells.slice(start, this.cursor).join("");
    if (word === "") return [{ kind: "bell" }];
    const command = start === 0 && word.startsWith("/");
    const pool = command
      ? this.completions.commands().map((name) => `/${name} `)
      : this.completions.nicks().map((nick) => (start === 0 ? `${nick}: ` : `${nick} `));
    const lower = word.toLowerCase();
    const candidates = [...new Set(pool.filter((c) => c.toLowerCase().startsWith(lower)))].sort(
      (x, y) => x.localeCompare(y),
    );
    if (candidates.length === 0) return [{ kind: "bell" }];
    if (candidates.length === 1) {
      this.replaceWord(start, this.cursor, candidates[0] as string);
      return [];
    }
    const shared = commonPrefix(candidates);
    if (shared.length > word.length) {
      // What was typed keeps its case; the candidates' shared rest is added.
      this.replaceWord(start, this.cursor, word + shared.slice(word.length));
      return [];
    }
    this.replaceWord(start, this.cursor, candidates[0] as string);
    this.completion = { start, candidates, index: 0, end: this.cursor };
    return [];
  }

  private replaceWord(start: number, end: number, text: string): void {
    const cells = graphemes(text);
    this.cells.splice(start, end - start, ...cells);
    this.cursor = start + cells.length;
  }
}

function commonPrefix(words: readonly string[]): string {
  let prefix = words[0] ?? "";
  for (const w of words) {
    let i = 0;
    while (i < prefix.length && i < w.length && prefix[i]?.toLowerCase() === w[i]?.toLowerCase())
      i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}
