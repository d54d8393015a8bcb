import * as readline from "node:readline";

/** Why the interactive terminal stopped reading. */
export type TerminalEnd = "eof" | "interrupt";

/**
 * The interactive prompt. Lines printed while the user is typing appear above the
 * prompt, and the half-typed line is redrawn intact below them; the user's own
 * submitted line is erased so that it reappears once, formatted like everyone else's.
 */
export class Terminal {
  private readonly rl: readline.Interface;
  private readonly out: NodeJS.WriteStream;
  private closed = false;

  constructor(options: {
    prompt?: string;
    onLine: (line: string) => void;
    onEnd: (why: TerminalEnd) => void;
  }) {
    // The prompt goes where a person is looking: stdout, or stderr when stdout is piped.
    this.out = process.stdout.isTTY ? process.stdout : process.stderr;
    this.rl = readline.createInterface({
      input: process.stdin,
      output: this.out,
      terminal: true,
      prompt: options.prompt ?? "> ",
      historySize: 500,
    });
    this.rl.on("line", (line) => {
      this.eraseSubmitted(line);
      options.onLine(line);
      if (!this.closed) this.rl.prompt();
    });
    this.rl.on("SIGINT", () => options.onEnd("interrupt"));
    this.rl.on("close", () => {
      if (!this.closed) options.onEnd("eof");
    });
    this.rl.prompt();
  }

  /**
   * Prints a line above the prompt, keeping what is being typed. `stream` is stdout
   * for chat and stderr for logs.
   */
  print(line: string, stream: NodeJS.WriteStream = process.stdout): void {
    if (this.closed) {
      stream.write(`${line}\n`);
      return;
    }
    const { rows } = this.rl.getCursorPos();
    readline.moveCursor(this.out, 0, -rows);
    readline.cursorTo(this.out, 0);
    readline.clearScreenDown(this.out);
    stream.write(`${line}\n`);
    this.rl.prompt(true);
  }

  /** Stops reading; later prints go straight to stdout. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    readline.cursorTo(this.out, 0);
    readline.clearLine(this.out, 0);
    this.rl.close();
  }

  /** Removes the just-submitted input (prompt included), which may span several rows. */
  private eraseSubmitted(line: string): void {
    const width = this.out.columns || 80;
    const rows = Math.max(1, Math.ceil((this.rl.getPrompt().length + line.length || 1) / width));
    readline.moveCursor(this.out, 0, -rows);
    readline.cursorTo(this.out, 0);
    readline.clearScreenDown(this.out);
  }
}
