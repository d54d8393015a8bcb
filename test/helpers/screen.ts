/**
 * A small terminal emulator for pseudo-terminal tests: enough of VT100 (cursor moves,
 * erases, autowrap) to show what a person would see. `resize` re-wraps the lines as
 * tmux and most modern terminals do, so a test sees what a resize leaves on screen.
 */
export class Screen {
  private lines: string[][];
  /** Whether each row runs on into the next (autowrap), rather than ending in a newline. */
  private wrapped: boolean[];
  private row = 0;
  private col = 0;
  /** How many times the bell rang. */
  bells = 0;

  constructor(
    public cols: number,
    public rows: number,
  ) {
    this.lines = Array.from({ length: rows }, () => []);
    this.wrapped = Array.from({ length: rows }, () => false);
  }

  write(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] as string;
      if (ch === "\u001b") {
        const m = /^\u001b\[(\??)(\d*(?:;\d+)*)([A-Za-z~])/.exec(text.slice(i));
        if (!m) continue;
        i += m[0].length - 1;
        if (m[1]) continue; // private modes (bracketed paste, cursor visibility)
        this.csi(
          m[3] as string,
          (m[2] ?? "").split(";").map((n) => Number(n || 0)),
        );
      } else if (ch === "\r") this.col = 0;
      else if (ch === "\n") this.newline();
      else if (ch === "\b") this.col = Math.max(0, this.col - 1);
      else if (ch === "\u0007") this.bells++;
      else if (ch >= " ") {
        if (this.col >= this.cols) {
          this.wrapped[this.row] = true;
          this.col = 0;
          this.newline();
        }
        const line = this.lines[this.row] as string[];
        while (line.length < this.col) line.push(" ");
        line[this.col++] = ch;
      }
    }
  }

  /** The visible text, trailing blanks trimmed, empty rows at the bottom dropped. */
  text(): string[] {
    const out = this.lines.map((l) => l.join("").trimEnd());
    while (out.length > 0 && out[out.length - 1] === "") out.pop();
    return out;
  }

  /**
   * The window changes size: rows are re-wrapped to the new width (a line that had
   * wrapped is joined again first), the cursor stays on the character it was on, and
   * rows that no longer fit scroll off the top.
   */
  resize(cols: number, rows: number): void {
    const logical: { cells: string[]; cursorAt?: number }[] = [];
    let current: { cells: string[]; cursorAt?: number } = { cells: [] };
    for (let r = 0; r < this.lines.length; r++) {
      if (r === this.row) current.cursorAt = current.cells.length + this.col;
      const cells = [...(this.lines[r] as string[])];
      if (this.wrapped[r]) while (cells.length < this.cols) cells.push(" ");
      current.cells.push(...cells);
      if (!this.wrapped[r]) {
        logical.push(current);
        current = { cells: [] };
      }
    }
    if (current.cells.length > 0 || current.cursorAt !== undefined) logical.push(current);
    // Blank lines below the cursor are not content.
    while (logical.length > 0) {
      const last = logical[logical.length - 1] as { cells: string[]; cursorAt?: number };
      if (last.cursorAt !== undefined || last.cells.join("").trim() !== "") break;
      logical.pop();
    }
    const lines: string[][] = [];
    const wrapped: boolean[] = [];
    let cursorRow = 0;
    let cursorCol = 0;
    for (const line of logical) {
      const pieces = Math.max(1, Math.ceil(line.cells.length / cols));
      for (let p = 0; p < pieces; p++) {
        lines.push(line.cells.slice(p * cols, (p + 1) * cols));
        wrapped.push(p < pieces - 1);
      }
      if (line.cursorAt !== undefined) {
        const piece = Math.min(pieces - 1, Math.floor(line.cursorAt / cols));
        cursorRow = lines.length - pieces + piece;
        cursorCol = line.cursorAt - piece * cols;
      }
    }
    const drop = Math.max(0, lines.length - rows, cursorRow - rows + 1);
    this.lines = lines.slice(drop);
    this.wrapped = wrapped.slice(drop);
    while (this.lines.length < rows) {
      this.lines.push([]);
      this.wrapped.push(false);
    }
    this.lines.length = rows;
    this.wrapped.length = rows;
    this.row = cursorRow - drop;
    this.col = cursorCol;
    this.cols = cols;
    this.rows = rows;
  }

  private csi(command: string, params: number[]): void {
    const n = params[0] ?? 0;
    const line = this.lines[this.row] as string[];
    switch (command) {
      case "A":
        this.row = Math.max(0, this.row - (n || 1));
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + (n || 1));
        break;
      case "C":
        this.col = Math.min(this.cols - 1, this.col + (n || 1));
        break;
      case "D":
        this.col = Math.max(0, this.col - (n || 1));
        break;
      case "G":
        this.col = Math.max(0, (n || 1) - 1);
        break;
      case "H":
        this.row = Math.min(this.rows - 1, Math.max(0, (n || 1) - 1));
        this.col = Math.min(this.cols - 1, Math.max(0, (params[1] || 1) - 1));
        break;
      case "K":
        if (n === 2) line.length = 0;
        else line.length = Math.min(line.length, this.col);
        this.wrapped[this.row] = false;
        break;
      case "J":
        if (n === 2) {
          for (let r = 0; r < this.rows; r++) {
            (this.lines[r] as string[]).length = 0;
            this.wrapped[r] = false;
          }
          break;
        }
        line.length = Math.min(line.length, this.col);
        for (let r = this.row + 1; r < this.rows; r++) {
          (this.lines[r] as string[]).length = 0;
          this.wrapped[r] = false;
        }
        break;
    }
  }

  private newline(): void {
    if (this.row < this.rows - 1) this.row++;
    else {
      this.lines.shift();
      this.lines.push([]);
      this.wrapped.shift();
      this.wrapped.push(false);
    }
  }
}
