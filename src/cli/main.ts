import { type CommandDef, renderUsage, runCommand } from "citty";
import { ConfigError, ConnectionError, StoreError } from "../errors.ts";
import { VERSION } from "../version.ts";
import {
  chatCommand,
  joinCommand,
  parseChatArgs,
  parseJoinArgs,
  parseSendArgs,
  sendCommand,
} from "./args.ts";
import { ExitCode } from "./exit-code.ts";
import { runChat } from "./run-chat.ts";
import { flushStdio, isTerminal, writeStderr, writeStdout } from "./stdio.ts";

export { ExitCode };

/** Options that take a value, so the word after them is not a command name. */
const VALUE_OPTIONS = new Set([
  "--nick",
  "-n",
  "--peer",
  "-p",
  "--max-peers",
  "--degree",
  "--room",
  "-r",
  "--identity",
  "--data-dir",
  "--keep",
  "--backlog",
  "--to",
]);

const EXAMPLES = `EXAMPLES

  peerchat localhost 9000                    first peer: listens only
  peerchat localhost 9001 localhost 9000     second peer joins through the first
  peerchat 0.0.0.0 9000 </dev/null &         a headless relay
  peerchat send localhost:9000 "hello"       one-shot: join, send, leave
  peerchat send localhost:9000 --to NODEID "hi"   one-shot direct message, sealed to NODEID
  peerchat localhost 9001 localhost 9000 --room "our secret phrase"
                                             a private room: peers without the name cannot join
  peerchat 0.0.0.0 9000 --room "our secret phrase", then /invite
                                             prints a ticket: one line that lets its holder in
  peerchat join pc1…                         join the room a ticket names, listening on any free port

  Also: peerchat send HOST:PORT TEXT [--to NODEID] [--nick NAME] [--json]   (see peerchat send --help)
        peerchat join TICKET [HOST] [PORT] [options]   (see peerchat join --help)
  Exit status: 0 ok, 1 network failure (address in use, peer unreachable), an unusable
  identity file or history, 2 bad arguments.`;

/**
 * Runs the CLI with `argv` (without the program name) and resolves with the exit
 * status. The chat command resolves when the user leaves.
 */
export async function main(argv: string[]): Promise<number> {
  const word = firstWord(argv);
  const subcommand = word === "send" || word === "join" ? word : undefined;
  const rawArgs = subcommand ? withoutFirstWord(argv) : argv;
  // `-v` is the version, as for node and bun: never a peer started by surprise.
  if (rawArgs.includes("--version") || rawArgs.includes("-V") || rawArgs.includes("-v")) {
    writeStdout(VERSION);
    await flushStdio();
    return ExitCode.Ok;
  }
  if (rawArgs.includes("--help") || rawArgs.includes("-h") || firstWord(argv) === "help") {
    writeStdout(await usage(subcommand));
    await flushStdio();
    return ExitCode.Ok;
  }
  try {
    const { result } =
      subcommand === "send"
        ? await runCommand(
            {
              ...sendCommand,
              run: async ({ rawArgs: args }) =>
                (await import("./run-send.ts")).runSend(parseSendArgs(args)),
            },
            { rawArgs },
          )
        : subcommand === "join"
          ? await runCommand(
              { ...joinCommand, run: ({ rawArgs: args }) => runChat(parseJoinArgs(args)) },
              { rawArgs },
            )
          : await runCommand(
              { ...chatCommand, run: ({ rawArgs: args }) => runChat(parseChatArgs(args)) },
              { rawArgs },
            );
    await flushStdio();
    return result as number;
  } catch (error) {
    const status = failureStatus(error);
    await flushStdio();
    return status;
  }
}

/** Reports an error that ended the command, and returns the exit status for it. */
function failureStatus(error: unknown): number {
  if (error instanceof ConfigError && error.code === "BAD_IDENTITY") {
    // Not a usage mistake: the arguments were fine, the file is not.
    writeStderr(`peerchat: ${error.message}`);
    return ExitCode.Failure;
  }
  if (error instanceof ConfigError && error.code === "BAD_TICKET") {
    // The arguments were used rightly: it is the ticket that must be copied again.
    writeStderr(`peerchat: ${error.message}`);
    return ExitCode.Usage;
  }
  if (error instanceof ConfigError || (error instanceof Error && error.name === "CLIError")) {
    writeStderr(`peerchat: ${error.message}\n${SHORT_USAGE}`);
    return ExitCode.Usage;
  }
  if (error instanceof ConnectionError || error instanceof StoreError) {
    writeStderr(`peerchat: ${error.message}`);
    return ExitCode.Failure;
  }
  writeStderr(
    `peerchat: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  return ExitCode.Failure;
}

const SHORT_USAGE = `usage: peerchat [HOST] [PORT] [PEER_HOST PEER_PORT] [--peer HOST:PORT]... [--nick NAME] [--json]
              [--room NAME] [--identity PATH] [--degree D] [--max-peers N]
              [--data-dir DIR | --ephemeral] [--keep DAYS] [--backlog N]
              [--verbose | --quiet | --trace]
       peerchat send HOST:PORT TEXT [--to NODEID] [--nick NAME] [--room NAME] [--json]
       peerchat join TICKET [HOST] [PORT] [options of the chat but --room]
Try 'peerchat --help' for more.`;

/** The full help: citty's rendering of the command, plus examples. Colour only on a terminal. */
async function usage(subcommand: "send" | "join" | undefined): Promise<string> {
  const text =
    subcommand === undefined
      ? `${await renderUsage(chatCommand)}\n${EXAMPLES}`
      : await renderUsage(
          (subcommand === "send" ? sendCommand : joinCommand) as CommandDef,
          chatCommand as CommandDef,
        );
  return isTerminal(1) ? text : Bun.stripANSI(text);
}

/** The first argument that is neither an option nor an option's value. */
function firstWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") return argv[i + 1];
    if (VALUE_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") return arg;
  }
  return undefined;
}

function withoutFirstWord(argv: readonly string[]): string[] {
  const word = firstWord(argv);
  const index = argv.indexOf(word as string);
  return [...argv.slice(0, index), ...argv.slice(index + 1)];
}
