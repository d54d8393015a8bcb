import { type ParseArgsConfig, parseArgs } from "node:util";
import { defineCommand } from "citty";
import { ConfigError } from "../errors.ts";
import { DEFAULT_KEEP_DAYS, DEFAULT_MAX_MESSAGES } from "../history/store.ts";
import { decodeTicket } from "../invite/ticket.ts";
import { DEFAULT_DEGREE } from "../mesh/mesh.ts";
import { DEFAULT_MAX_PEERS } from "../node/handshake.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { fromHex, hex } from "../protocol/hex.ts";
import { nickProblem } from "../protocol/text.ts";
import { DEFAULT_ROOM, roomNameProblem } from "../secure/room.ts";
import { VERSION } from "../version.ts";
import { parseEndpoint, parseHost, parsePort } from "./address.ts";

/** Default listen address and port: the original program's first peer. */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 9000;

/** Log verbosity, from --quiet to --trace. */
export type Verbosity = "quiet" | "normal" | "verbose" | "trace";

/** The chat command's arguments, validated. */
export interface ChatOptions {
  readonly host: string;
  readonly port: number;
  readonly peers: readonly Endpoint[];
  readonly nick: string | undefined;
  readonly json: boolean;
  readonly maxPeers: number;
  readonly degree: number;
  readonly verbosity: Verbosity;
  /** Room name: a secret. */
  readonly room: string;
  /** Identity file; undefined = the default path. */
  readonly identityPath: string | undefined;
  /** Directory of history files; undefined = the default path. */
  readonly dataDir: string | undefined;
  /** Keep no history on disk. */
  readonly ephemeral: boolean;
  /** Days messages are kept. */
  readonly keepDays: number;
  /** Stored messages shown at start; undefined = the default for the mode. */
  readonly backlog: number | undefined;
  /**
   * `join`: the node id of the peer whose ticket this is. Its addresses (the `peers`) are
   * alternatives: once one of them links to it, the others are let go.
   */
  readonly inviter?: string;
  /** Find and be found by peers of the room on the LAN (`--no-discover` turns it off). */
  readonly discover: boolean;
}

/** Largest `--keep`, in days: ten years. */
export const MAX_KEEP_DAYS = 3650;

/** Largest `--backlog`. */
export const MAX_BACKLOG = 10_000;

/** The send command's arguments, validated. */
export interface SendOptions {
  readonly peer: Endpoint;
  readonly text: string;
  readonly nick: string | undefined;
  readonly json: boolean;
  readonly verbosity: Verbosity;
  readonly room: string;
  readonly identityPath: string | undefined;
  /** `--to`: the node id a direct message is sealed to; a room message without it. */
  readonly to: Uint8Array | undefined;
}

const sharedFlags = {
  nick: { type: "string", alias: "n", description: "Display name (1–32 bytes)", valueHint: "NAME" },
  json: { type: "boolean", description: "Machine mode: stdout carries only NDJSON events" },
  verbose: { type: "boolean", description: "More log output on stderr" },
  quiet: { type: "boolean", description: "Only warnings and errors on stderr" },
  trace: { type: "boolean", description: "Log every frame and relay decision on stderr" },
  // Shown in the help; main.ts answers them before anything else is parsed.
  version: {
    type: "boolean",
    alias: ["V", "v"] as string[],
    description: "Print the version and exit",
  },
  help: { type: "boolean", alias: "h", description: "This help (also: peerchat help)" },
  room: {
    type: "string",
    alias: "r",
    description: `Room to join; a secret name makes a private room (default ${DEFAULT_ROOM})`,
    valueHint: "NAME",
  },
  identity: {
    type: "string",
    description: "Identity key file (default $XDG_CONFIG_HOME/peerchat/identity)",
    valueHint: "PATH",
  },
} as const;

/** Flags of the chat that only a running chat has (not `send`). */
const chatFlags = {
  "max-peers": {
    type: "string",
    description: `Connection cap; extra inbound connections are refused (default ${DEFAULT_MAX_PEERS})`,
    valueHint: "N",
  },
  degree: {
    type: "string",
    description: `Links to keep, dialling known peers when short; 0 = only the peers named (default ${DEFAULT_DEGREE})`,
    valueHint: "D",
  },
  "data-dir": {
    type: "string",
    description: "Where the room's history is kept (default $XDG_DATA_HOME/peerchat)",
    valueHint: "DIR",
  },
  keep: {
    type: "string",
    description: `Days messages are kept (default ${DEFAULT_KEEP_DAYS}; at most ${DEFAULT_MAX_MESSAGES.toLocaleString("en-US")} a room)`,
    valueHint: "DAYS",
  },
  ephemeral: { type: "boolean", description: "Keep the history in memory only" },
  "no-discover": {
    type: "boolean",
    description:
      "Do not find, nor announce to, the room's peers on the LAN (also: PEERCHAT_NO_DISCOVER=1)",
  },
  backlog: {
    type: "string",
    description:
      "Stored messages shown at start (default 20 in a terminal, 0 with --json or piped input)",
    valueHint: "N",
  },
} as const;

const peerFlag = {
  type: "string",
  alias: "p",
  description: "HOST:PORT of a peer to join; repeatable; IPv6 as [addr]:port",
  valueHint: "HOST:PORT",
} as const;

/** The shared flags but `--room`: a ticket names the room. */
function withoutRoom<F extends { room: unknown }>(flags: F): Omit<F, "room"> {
  const { room: _, ...rest } = flags;
  return rest;
}

/** `peerchat [HOST] [PORT] [PEER_HOST PEER_PORT] [options]`: listen, join, chat, relay. */
export const chatCommand = defineCommand({
  meta: {
    name: "peerchat",
    version: VERSION,
    description: "Serverless command-line chat: every peer listens, dials and relays",
  },
  args: {
    host: {
      type: "positional",
      required: false,
      description: `Address to listen on; also the default nick's host (default ${DEFAULT_HOST})`,
    },
    port: {
      type: "positional",
      required: false,
      description: `Port to listen on; 0 = any free port (default ${DEFAULT_PORT})`,
    },
    peer_host: { type: "positional", required: false, description: "Host of a peer to join" },
    peer_port: { type: "positional", required: false, description: "Port of that peer" },
    peer: peerFlag,
    ...sharedFlags,
    ...chatFlags,
  },
});

/** `peerchat join TICKET [HOST] [PORT]`: the chat, in the room a ticket names, joined to its peer. */
export const joinCommand = defineCommand({
  meta: {
    name: "join",
    description:
      "Join the room an invitation ticket names (made by /invite), through the peer that made it, and chat",
  },
  args: {
    ticket: {
      type: "positional",
      required: true,
      description: "The ticket, as /invite showed it (pc1…)",
    },
    host: {
      type: "positional",
      required: false,
      description: `Address to listen on (default ${DEFAULT_HOST})`,
    },
    port: {
      type: "positional",
      required: false,
      description: "Port to listen on (default 0: any free port)",
    },
    peer: peerFlag,
    ...withoutRoom(sharedFlags),
    ...chatFlags,
  },
});

/** `peerchat send HOST:PORT TEXT [--nick N]`: join, send one message, leave. */
export const sendCommand = defineCommand({
  meta: {
    name: "send",
    description: "Join a peer, send one message, wait until it is written, say BYE and exit",
  },
  args: {
    "host:port": {
      type: "positional",
      required: true,
      description: "Address of a running peer; IPv6 as [addr]:port",
    },
    text: { type: "positional", required: true, description: "The message" },
    to: {
      type: "string",
      description:
        "Send it as a direct message, sealed to this node id (64 hex digits; the recipient's `ready` event or /who shows it)",
      valueHint: "NODEID",
    },
    ...sharedFlags,
  },
});

/** Strict parse: unknown options and stray arguments are errors, not silently ignored. */
function strictParse<const O extends NonNullable<ParseArgsConfig["options"]>>(
  rawArgs: string[],
  options: O,
) {
  try {
    return parseArgs({ args: rawArgs, options, allowPositionals: true, strict: true } as const);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    // node:util's own wording suggests `-- "--bogus"`, with a quote it never closes.
    const unknown = /^Unknown option '([^']+)'/.exec(message ?? "");
    const said = unknown ? `unknown option ${unknown[1]}` : message;
    throw new ConfigError("BAD_ARGUMENT", said ?? "bad arguments", { cause });
  }
}

const SHARED_OPTIONS = {
  nick: { type: "string", short: "n" },
  json: { type: "boolean" },
  verbose: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  trace: { type: "boolean" },
  room: { type: "string", short: "r" },
  identity: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

const CHAT_OPTIONS = {
  ...SHARED_OPTIONS,
  peer: { type: "string", short: "p", multiple: true },
  "max-peers": { type: "string" },
  degree: { type: "string" },
  "data-dir": { type: "string" },
  keep: { type: "string" },
  ephemeral: { type: "boolean" },
  "no-discover": { type: "boolean" },
  backlog: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

type ChatValues = ReturnType<typeof strictParse<typeof CHAT_OPTIONS>>["values"];

/** Validates the chat command's raw arguments into {@link ChatOptions}. */
export function parseChatArgs(rawArgs: string[]): ChatOptions {
  const { values, positionals } = strictParse(rawArgs, CHAT_OPTIONS);
  if (positionals.length > 4) {
    throw new ConfigError("BAD_ARGUMENT", `too many arguments: ${positionals.slice(4).join(" ")}`);
  }
  if (positionals.length === 3) {
    throw new ConfigError("BAD_ARGUMENT", "PEER_HOST needs a PEER_PORT after it");
  }
  const [hostArg, portArg, peerHost, peerPort] = positionals;
  const listen = listenAddress(hostArg, portArg, DEFAULT_PORT, "peerchat");
  const peers: Endpoint[] = [];
  if (peerHost !== undefined && peerPort !== undefined) {
    peers.push({
      host: parseHost(peerHost, "PEER_HOST"),
      port: parsePort(peerPort, "PEER_PORT", false),
    });
  }
  return chatOptions(values, {
    ...listen,
    peers,
    room: checkRoom(values.room),
  });
}

/**
 * Validates `peerchat join`'s raw arguments (after the word `join`): the chat's options,
 * in the ticket's room, joined to every address the ticket lists, listening on any free
 * port unless told. `--room` is refused: the ticket names the room.
 */
export function parseJoinArgs(rawArgs: string[]): ChatOptions {
  const { values, positionals } = strictParse(rawArgs, CHAT_OPTIONS);
  if (positionals.length === 0)
    throw new ConfigError("BAD_ARGUMENT", "usage: peerchat join TICKET [HOST] [PORT]");
  if (positionals.length > 3)
    throw new ConfigError("BAD_ARGUMENT", `too many arguments: ${positionals.slice(3).join(" ")}`);
  if (values.room !== undefined)
    throw new ConfigError(
      "BAD_ARGUMENT",
      "--room cannot go with a ticket: the ticket names the room",
    );
  const [ticketArg, hostArg, portArg] = positionals;
  const decoded = decodeTicket(ticketArg as string);
  // The reason never quotes the ticket: it holds the room's name.
  if (!decoded.ok) throw new ConfigError("BAD_TICKET", decoded.reason);
  const options = chatOptions(values, {
    ...listenAddress(hostArg, portArg, 0, "peerchat join TICKET"),
    peers: decoded.ticket.addresses,
    room: decoded.ticket.room,
  });
  return { ...options, inviter: hex(decoded.ticket.nodeId) };
}

/**
 * HOST and PORT as given, or the defaults; a lone number is a port given without its
 * host, and the error shows `command` written the right way.
 */
function listenAddress(
  hostArg: string | undefined,
  portArg: string | undefined,
  defaultPort: number,
  command: string,
): Pick<ChatOptions, "host" | "port"> {
  if (hostArg !== undefined && portArg === undefined && /^\d+$/.test(hostArg)) {
    throw new ConfigError(
      "BAD_ADDRESS",
      `"${hostArg}" looks like a port; give the host first: ${command} 127.0.0.1 ${hostArg}`,
    );
  }
  return {
    host: hostArg === undefined ? DEFAULT_HOST : parseHost(hostArg, "listen address"),
    port: portArg === undefined ? defaultPort : parsePort(portArg, "PORT", true),
  };
}

/** The options every chat takes, checked, around where it listens, whom it joins and its room. */
function chatOptions(
  values: ChatValues,
  where: Pick<ChatOptions, "host" | "port" | "peers" | "room">,
): ChatOptions {
  const peers = [...where.peers];
  for (const text of values.peer ?? []) peers.push(parseEndpoint(text, "--peer"));
  let maxPeers = DEFAULT_MAX_PEERS;
  if (values["max-peers"] !== undefined) {
    const text = values["max-peers"];
    if (!/^\d{1,6}$/.test(text) || Number(text) < 1) {
      throw new ConfigError("BAD_ARGUMENT", `--max-peers must be a positive number, not "${text}"`);
    }
    maxPeers = Number(text);
  }
  let degree = DEFAULT_DEGREE;
  if (values.degree !== undefined) {
    if (!/^\d{1,4}$/.test(values.degree)) {
      throw new ConfigError(
        "BAD_ARGUMENT",
        `--degree must be a number (0 or more), not "${values.degree}"`,
      );
    }
    degree = Number(values.degree);
  }
  if (degree > maxPeers) {
    throw new ConfigError(
      "BAD_ARGUMENT",
      `--degree ${degree} is more than --max-peers ${maxPeers}`,
    );
  }
  return {
    host: where.host,
    port: where.port,
    peers,
    nick: checkNick(values.nick),
    json: values.json ?? false,
    maxPeers,
    degree,
    verbosity: verbosity(values),
    room: where.room,
    identityPath: checkIdentityPath(values.identity),
    ...historyOptions(values),
    discover: !(values["no-discover"] ?? false),
  };
}

function historyOptions(values: {
  "data-dir"?: string;
  keep?: string;
  ephemeral?: boolean;
  backlog?: string;
}): Pick<ChatOptions, "dataDir" | "ephemeral" | "keepDays" | "backlog"> {
  const dataDir = values["data-dir"];
  if (dataDir === "") throw new ConfigError("BAD_ARGUMENT", "--data-dir needs a directory");
  if (dataDir !== undefined && values.ephemeral)
    throw new ConfigError("BAD_ARGUMENT", "choose one of --data-dir and --ephemeral");
  let keepDays = DEFAULT_KEEP_DAYS;
  if (values.keep !== undefined) {
    const days = Number(values.keep);
    if (!/^\d+(\.\d+)?$/.test(values.keep) || days <= 0 || days > MAX_KEEP_DAYS)
      throw new ConfigError(
        "BAD_ARGUMENT",
        `--keep must be a number of days above 0 and at most ${MAX_KEEP_DAYS}, not "${values.keep}"`,
      );
    keepDays = days;
  }
  let backlog: number | undefined;
  if (values.backlog !== undefined) {
    if (!/^\d{1,5}$/.test(values.backlog) || Number(values.backlog) > MAX_BACKLOG)
      throw new ConfigError(
        "BAD_ARGUMENT",
        `--backlog must be a number from 0 to ${MAX_BACKLOG}, not "${values.backlog}"`,
      );
    backlog = Number(values.backlog);
  }
  return { dataDir, ephemeral: values.ephemeral ?? false, keepDays, backlog };
}

/** Validates the send command's raw arguments (after the word `send`). */
export function parseSendArgs(rawArgs: string[]): SendOptions {
  const { values, positionals } = strictParse(rawArgs, {
    ...SHARED_OPTIONS,
    to: { type: "string" },
  } as const);
  if (positionals.length < 2)
    throw new ConfigError("BAD_ARGUMENT", "usage: peerchat send HOST:PORT TEXT [--to NODEID]");
  if (positionals.length > 2) {
    throw new ConfigError(
      "BAD_ARGUMENT",
      `too many arguments (quote the message): ${positionals.slice(2).join(" ")}`,
    );
  }
  return {
    peer: parseEndpoint(positionals[0] as string, "HOST:PORT"),
    text: positionals[1] as string,
    nick: checkNick(values.nick),
    json: values.json ?? false,
    verbosity: verbosity(values),
    room: checkRoom(values.room),
    identityPath: checkIdentityPath(values.identity),
    to: checkNodeId(values.to),
  };
}

function checkNodeId(to: string | undefined): Uint8Array | undefined {
  if (to === undefined) return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(to))
    throw new ConfigError(
      "BAD_ARGUMENT",
      `--to needs a whole node id, 64 hex digits (got ${to.length} characters)`,
    );
  return fromHex(to.toLowerCase());
}

function checkRoom(room: string | undefined): string {
  if (room === undefined) return DEFAULT_ROOM;
  const problem = roomNameProblem(room);
  // Not quoted back: a room name is a secret, and the terminal's scrollback is not.
  if (problem) throw new ConfigError("BAD_ARGUMENT", `--room: ${problem}`);
  return room;
}

function checkIdentityPath(path: string | undefined): string | undefined {
  if (path === "") throw new ConfigError("BAD_ARGUMENT", "--identity needs a file path");
  return path;
}

function checkNick(nick: string | undefined): string | undefined {
  if (nick === undefined) return undefined;
  const problem = nickProblem(nick);
  if (problem) throw new ConfigError("BAD_NICK", `--nick: ${problem}`);
  return nick;
}

function verbosity(values: { quiet?: boolean; verbose?: boolean; trace?: boolean }): Verbosity {
  const chosen = [values.quiet, values.verbose, values.trace].filter(Boolean).length;
  if (chosen > 1)
    throw new ConfigError("BAD_ARGUMENT", "choose one of --quiet, --verbose, --trace");
  if (values.trace) return "trace";
  if (values.verbose) return "verbose";
  if (values.quiet) return "quiet";
  return "normal";
}
