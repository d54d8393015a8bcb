/** Exit statuses. */
export const ExitCode = {
  Ok: 0,
  /** The network failed us (address in use, peer unreachable), or a file or stdout did. */
  Failure: 1,
  /** The command line was wrong. */
  Usage: 2,
} as const;
