/**
 * A minimal terminal screen: enough of VT100 to replay what readline writes (cursor
 * moves, column jumps, erase line, erase below) and read back what a person would see.
 */
export class Screen {
  private readonly lines: string[][];
  private row = 0;
  private col = 0;

  constructor(
    readonly cols: number,
    readonly rows: number,
  ) {
    this.lines = Array.from({ length: rows }, () => []);
  }

  write(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] as string;
      if (ch === "\u001b") {
        const m = /^\u001b\[(\??)(\d*(?:;\d+)*)([A-Za-z])/.exec(text.slice(i));
        if (!m) continue;
        i += m[0].length - 1;
        if (m[1]) continue; // private modes (bracketed paste, cursor visibility)
        this.csi(m[3] as string, Number((m[2] ?? "").split(";")[0] || 0));
      } else if (ch === "\r") this.col = 0;
      else if (ch === "\n") this.newline();
      else if (ch === "\b") this.col = Math.max(0, this.col - 1);
      else if (ch >= " ") {
        if (this.col >= this.cols) {
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

  private csi(command: string, n: number): void {
    const line = this.lines[this.row] as string[];
    switch (command) {
      case "A":
        this.row = Math.max(0, this.row - (n || 1));
        break;
      case "B":
        this.row = Math.min(this.rows - 1, this.row + (n || 1));
        break;
      case "C":
        this.col += n || 1;
        break;
      case "D":
        this.col = Math.max(0, this.col - (n || 1));
        break;
      case "G":
        this.col = Math.max(0, (n || 1) - 1);
        break;
      case "K":
        if (n === 2) line.length = 0;
        else line.length = Math.min(line.length, this.col);
        break;
      case "J":
        line.length = Math.min(line.length, this.col);
        for (let r = this.row + 1; r < this.rows; r++) (this.lines[r] as string[]).length = 0;
        break;
    }
  }

  private newline(): void {
    if (this.row < this.rows - 1) this.row++;
    else {
      this.lines.shift();
      this.lines.push([]);
    }
  }
}
