import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";
import type { Verbosity } from "./args.ts";
import { clockTime, sanitize } from "./format.ts";
import { writeStderr } from "./stdio.ts";

const LEVELS: Readonly<Record<Verbosity, number>> = { quiet: 1, normal: 3, verbose: 4, trace: 5 };

/**
 * The logger handed to every module. Lines go to `write` (stderr by default, or above
 * the prompt in the interactive terminal), never to stdout, which carries chat.
 */
export function createLogger(
  verbosity: Verbosity,
  write: (line: string) => void = writeStderr,
): ConsolaInstance {
  const precise = verbosity === "verbose" || verbosity === "trace";
  return createConsola({
    level: LEVELS[verbosity],
    // Identical lines (a peer failing the same way in a loop) are collapsed by consola.
    throttle: 1000,
    reporters: [{ log: (entry) => write(formatLogLine(entry, precise)) }],
  });
}

/** `[12:00:01] warn: message` (milliseconds shown in verbose and trace modes). */
export function formatLogLine(entry: LogObject, precise = false): string {
  const tag = entry.tag ? `[${entry.tag}] ` : "";
  const text = entry.args.map(formatArg).join(" ");
  const level =
    entry.type === "log" || entry.type === "info" || entry.type === "success" ? "info" : entry.type;
  return `[${clockTime(entry.date, precise)}] ${level}: ${tag}${sanitize(text)}`;
}

function formatArg(arg: unknown): string {
  if (typeof arg === "string") return arg;
  if (arg instanceof Error) return arg.stack ?? `${arg.name}: ${arg.message}`;
  return Bun.inspect(arg);
}
