import { join } from "node:path";
import type { Subprocess } from "bun";
import { testEnv } from "./hermetic-env.ts";
import { waitFor } from "./wait-for.ts";

/** How to start peerchat: from source, or a compiled binary. */
export type Launcher = (args: string[]) => string[];

export const ROOT = join(import.meta.dir, "..", "..");
export const fromSource: Launcher = (args) => [
  process.execPath,
  join(ROOT, "src", "bin.ts"),
  ...args,
];
export const fromBinary =
  (path: string): Launcher =>
  (args) => [path, ...args];

/** A peerchat process driven through its stdin and read from its stdout and stderr. */
export class CliProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number>;
  private readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly stdoutWatchers = new Set<(line: string) => void>();

  constructor(launcher: Launcher, args: string[], options: { env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn(launcher(args), {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      // The home and XDG directories are the run's own (hermetic-env.ts), even when a
      // script outside `bun test` (scripts/fuzz.ts) starts the peer.
      env: testEnv({ NO_COLOR: "1", ...options.env }),
    });
    this.exited = this.proc.exited;
    void collect(this.proc.stdout, this.stdout, (line) => {
      for (const watch of this.stdoutWatchers) watch(line);
    });
    void collect(this.proc.stderr, this.stderr);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /**
   * Calls `watch` with each stdout line from now on, the moment it is read (no polling:
   * for a test that must act before the process has gone any further). Returns a function
   * that stops watching.
   */
  onStdoutLine(watch: (line: string) => void): () => void {
    this.stdoutWatchers.add(watch);
    return () => this.stdoutWatchers.delete(watch);
  }

  /** Types a line, as piped input. */
  send(line: string): void {
    this.proc.stdin.write(`${line}\n`);
    this.proc.stdin.flush();
  }

  /** Ends stdin (the peer must stay up). */
  endInput(): void {
    void this.proc.stdin.end();
  }

  signal(signal: NodeJS.Signals | number): void {
    this.proc.kill(signal);
  }

  /** Waits for a stdout line matching `pattern`; returns it. */
  waitForLine(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const test = (l: string) =>
      typeof pattern === "string" ? l.includes(pattern) : pattern.test(l);
    return waitFor(
      () => this.stdout.find(test),
      timeoutMs,
      () =>
        `stdout line ${pattern}\nstdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`,
    );
  }

  /** Waits for a stderr line matching `pattern`; returns it. */
  waitForLog(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const test = (l: string) =>
      typeof pattern === "string" ? l.includes(pattern) : pattern.test(l);
    return waitFor(
      () => this.stderr.find(test),
      timeoutMs,
      () => `stderr line ${pattern}\nstderr:\n${this.stderr.join("\n")}`,
    );
  }

  /** JSON events on stdout (for --json peers). */
  events(): Array<Record<string, unknown>> {
    return this.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /**
   * Memory figures in KiB, from /proc: `rss` (resident) and `size` (virtual). An
   * allocation that is never touched does not show in RSS, but does in the virtual size,
   * which the allocator does not give back at once.
   */
  async memoryKiB(): Promise<{ rss: number; size: number }> {
    const status = await Bun.file(`/proc/${this.pid}/status`).text();
    const field = (name: string) =>
      Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return { rss: field("VmRSS"), size: field("VmSize") };
  }

  /** Stops the process (SIGTERM, then SIGKILL) and waits for it. */
  async stop(): Promise<number> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  lines: string[],
  onLine: (line: string) => void = () => {},
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    partial += decoder.decode(chunk, { stream: true });
    let nl = partial.indexOf("\n");
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      lines.push(line);
      onLine(line);
      partial = partial.slice(nl + 1);
      nl = partial.indexOf("\n");
    }
  }
  if (partial) {
    lines.push(partial);
    onLine(partial);
  }
}

/** The listen port a peer announced in its first stdout line (human or JSON). */
export async function listenPortOf(peer: CliProcess): Promise<number> {
  const line = await peer.waitForLine(/listening on|"type":"ready"/);
  const match = /listening on \S+:(\d+)|"port":(\d+)/.exec(line);
  const port = Number(match?.[1] ?? match?.[2]);
  if (!port) throw new Error(`no port in ${line}`);
  return port;
}
