import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";

/** A logger for tests: keeps every entry for assertions, prints nothing unless TEST_LOGS=1. */
export interface TestLogger {
  readonly logger: ConsolaInstance;
  readonly entries: LogObject[];
  /** Entries at or above `type` whose text contains `needle`. */
  find(needle: string): LogObject[];
  text(entry: LogObject): string;
}

export function testLogger(level = 5): TestLogger {
  const entries: LogObject[] = [];
  const print = process.env.TEST_LOGS === "1";
  const text = (entry: LogObject) =>
    entry.args.map((a) => (typeof a === "string" ? a : Bun.inspect(a))).join(" ");
  const logger = createConsola({
    level,
    throttle: 0,
    reporters: [
      {
        log(entry) {
          // Keep memory bounded in long tests: traces are only kept when printing.
          if (entry.level < 5 || print) entries.push(entry);
          if (print)
            process.stderr.write(
              `${(performance.now() / 1000).toFixed(2)} [${entry.type}] ${text(entry)}\n`,
            );
        },
      },
    ],
  });
  return {
    logger,
    entries,
    find: (needle) => entries.filter((e) => text(e).includes(needle)),
    text,
  };
}
