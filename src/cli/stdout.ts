/** Writes one line to stdout. */
export function writeStdout(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Resolves once everything written to stdout has been handed to the OS. */
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => {
    if (!process.stdout.write("", () => resolve())) process.stdout.once("drain", () => resolve());
  });
}
