import { BRACKETED_PASTE_OFF, BRACKETED_PASTE_ON, KeyDecoder } from "./keys.ts";
import { type Completions, LineEditor } from "./line-editor.ts";

/** Why the interactive terminal stopped reading. */
export type TerminalEnd = "eof" | "interrupt";

/** Lines kept to paint the screen again after a resize or Ctrl-L. */
export const REPAINT_LINES = 500;

const ERASE_ROW = "\r\u001b[K";
const CLEAR_SCREEN = "\u001b[H\u001b[2J";
const BELL = "\u0007";

/**
 * The interactive screen: chat lines scroll above a one-row input line that stays put
 * while they arrive. Keys are read in raw mode and edited by {@link LineEditor}; this
 * class only reads and writes the terminal.
 *
 * After a resize the screen is painted again from the lines it showed, so no terminal's
 * way of re-wrapping (or not) can cut a message or leave a stale copy of the input.
 */
export class Terminal {
  private readonly out: NodeJS.WriteStream;
  private readonly editor: LineEditor;
  private readonly keys = new KeyDecoder();
  private readonly decoder = new TextDecoder();
  private readonly recent: string[] = [];
  private prompt: string;
  private closed = false;
  private readonly onData = (chunk: Buffer | string) => this.read(chunk);
  private readonly onResize = () => this.repaint();
  private readonly onStdinEnd = () => this.end("eof");

  constructor(
    private readonly options: {
      prompt?: string;
      /** A finished line; `literal` when it was pasted (a message even if it starts with `/`). */
      onLine: (line: string, literal: boolean) => void;
      onEnd: (why: TerminalEnd) => void;
      completions?: Completions;
      /** Lines typed in earlier runs, oldest first, for Up. */
      history?: readonly string[];
    },
  ) {
    // The prompt goes where a person is looking: stdout, or stderr when stdout is piped.
    this.out = process.stdout.isTTY ? process.stdout : process.stderr;
    this.prompt = options.prompt ?? "> ";
    this.editor = new LineEditor(options.completions, options.history);
    process.stdin.setRawMode?.(true);
    process.stdin.on("data", this.onData);
    process.stdin.on("end", this.onStdinEnd);
    process.stdin.resume();
    this.out.on("resize", this.onResize);
    this.out.write(BRACKETED_PASTE_ON);
    this.draw();
  }

  /** The lines typed (this run and earlier ones), oldest first. */
  get history(): readonly string[] {
    return this.editor.submitted;
  }

  /** Changes the prompt (it says where the user is: the room, who is here). */
  setPrompt(prompt: string): void {
    if (prompt === this.prompt) return;
    this.prompt = prompt;
    if (!this.closed) this.draw();
  }

  /**
   * Prints a line above the input row, keeping what is being typed. `stream` is stdout
   * for chat and stderr for logs.
   */
  print(line: string, stream: NodeJS.WriteStream = process.stdout): void {
    if (this.closed) {
      stream.write(`${line}\n`);
      return;
    }
    if (stream !== this.out && !stream.isTTY) {
      // Chat piped elsewhere (`peerchat | tee log`), or logs to a file: the screen keeps its input row.
      stream.write(`${line}\n`);
      return;
    }
    this.remember(line);
    // One write, so the line and the redrawn input row cannot interleave with anything.
    this.out.write(`${ERASE_ROW}${line}\n${this.inputRow()}`);
  }

  /** Empties the screen (`/clear`); the input row stays. */
  clear(): void {
    this.recent.length = 0;
    if (!this.closed) this.out.write(`${CLEAR_SCREEN}${this.inputRow()}`);
  }

  /** Rings the terminal's bell (a mention). */
  bell(): void {
    if (!this.closed) this.out.write(BELL);
  }

  /** Stops reading; later prints go straight to their stream. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.off("resize", this.onResize);
    process.stdin.off("data", this.onData);
    process.stdin.off("end", this.onStdinEnd);
    process.stdin.setRawMode?.(false);
    process.stdin.pause();
    this.out.write(`${ERASE_ROW}${BRACKETED_PASTE_OFF}`);
  }

  private read(chunk: Buffer | string): void {
    if (this.closed) return;
    const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    for (const key of this.keys.push(text)) {
      for (const effect of this.editor.handle(key)) {
        switch (effect.kind) {
          case "submit":
            // The line reappears once, formatted like everyone else's, when it is sent.
            this.out.write(ERASE_ROW);
            this.options.onLine(effect.line, effect.literal);
            break;
          case "interrupt":
            this.end("interrupt");
            return;
          case "eof":
            this.end("eof");
            return;
          case "repaint":
            this.repaint();
            break;
          case "bell":
            this.bell();
            break;
        }
        if (this.closed) return;
      }
    }
    this.draw();
  }

  private end(why: TerminalEnd): void {
    if (this.closed) return;
    this.options.onEnd(why);
  }

  private remember(line: string): void {
    this.recent.push(line);
    if (this.recent.length > REPAINT_LINES)
      this.recent.splice(0, this.recent.length - REPAINT_LINES);
  }

  /** The input row, drawn from its first column, with the cursor where the editor has it. */
  private inputRow(): string {
    const promptWidth = Bun.stringWidth(this.prompt);
    const view = this.editor.view(this.columns(), promptWidth);
    const column = promptWidth + view.cursor;
    return `${ERASE_ROW}${this.prompt}${view.text}\r${column > 0 ? `\u001b[${column}C` : ""}`;
  }

  private draw(): void {
    this.out.write(this.inputRow());
  }

  /** Clears the screen and shows again the last lines that fit above the input row. */
  private repaint(): void {
    if (this.closed) return;
    const columns = this.columns();
    let rows = Math.max(1, (this.out.rows || 24) - 1);
    let first = this.recent.length;
    while (first > 0) {
      const height = Math.max(
        1,
        Math.ceil(Bun.stringWidth(this.recent[first - 1] as string) / columns),
      );
      if (height > rows) break;
      rows -= height;
      first--;
    }
    const lines = this.recent.slice(first).map((line) => `${line}\n`);
    this.out.write(`${CLEAR_SCREEN}${lines.join("")}${this.inputRow()}`);
  }

  private columns(): number {
    return Math.max(10, this.out.columns || 80);
  }
}
