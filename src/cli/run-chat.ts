import { lookup } from "node:dns/promises";
import { rmSync } from "node:fs";
import type { ConsolaInstance } from "consola";
import { ConnectionError } from "../errors.ts";
import { DAY_MS } from "../history/store.ts";
import { Delivery } from "../node/delivery.ts";
import { FloodKind } from "../protocol/constants.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { isIP } from "../protocol/ip.ts";
import { DEFAULT_ROOM } from "../secure/room.ts";
import { type RunningPeer, startPeer } from "../start-peer.ts";
import { VERSION } from "../version.ts";
import type { ChatOptions } from "./args.ts";
import { ChatSession, reportConnect, storedMessages } from "./chat-session.ts";
import { COLOURED, colourWanted, PLAIN } from "./colour.ts";
import { ExitCode } from "./exit-code.ts";
import { claimHistory, defaultDataDir, type OpenedHistory } from "./history-file.ts";
import { defaultIdentityPath, type OpenedIdentity, openIdentity } from "./identity-file.ts";
import { IgnoreList, withoutIgnored } from "./ignore-list.ts";
import { COMMANDS } from "./input.ts";
import { INPUT_HIGH_WATER_BYTES, readLines } from "./line-reader.ts";
import { createLogger } from "./logger.ts";
import { NickBook } from "./nick-book.ts";
import { humanOutput, jsonOutput, type Output } from "./output.ts";
import { defaultStateDir, type Settings, SettingsFile } from "./settings-file.ts";
import { isTerminal, onStdoutGone, writeStderr, writeStdout } from "./stdio.ts";
import type { Terminal } from "./terminal.ts";

/** Stored messages shown at start in a terminal, unless `--backlog` says otherwise. */
export const DEFAULT_BACKLOG = 20;

/**
 * The chat command: listen, join the bootstrap peers, then chat until /quit, Ctrl-C,
 * Ctrl-D or SIGTERM. With piped stdin, the end of input does not stop the peer: it
 * stays up as a relay until a signal, like the original program.
 *
 * Resolves with the exit status once the peer has said BYE to its neighbours.
 * Throws {@link ConnectionError} if the listen address cannot be used.
 */
export async function runChat(options: ChatOptions): Promise<number> {
  // Typing at a terminal gets the prompt, even with stdout piped (`peerchat | tee log`):
  // the prompt then lives on stderr, if that is a terminal.
  const interactive = !options.json && isTerminal(0) && (isTerminal(1) || isTerminal(2));
  let quitReason: string | undefined;
  let exitStatus: number = ExitCode.Ok;
  let requestQuit: (reason: string) => void = () => {};
  const quitRequested = new Promise<string>((resolve) => {
    requestQuit = (reason) => {
      if (quitReason !== undefined) return;
      quitReason = reason;
      resolve(reason);
    };
  });
  let session: ChatSession | undefined;
  let peer: RunningPeer | undefined;
  // Who is who: labels nicks on screen, and resolves `/msg NAME`.
  const book = new NickBook();
  // What the chat remembers between runs: the nick, whom to ignore, the lines typed.
  const settingsFile = new SettingsFile(defaultStateDir());
  let settings = settingsFile.load();
  const remember = (change: Partial<Settings>) => {
    settings = { ...settings, ...change };
    settingsFile.save(settings);
  };
  const ignore = new IgnoreList(settings.ignored, (ignored) => remember({ ignored }));
  let historySave: ReturnType<typeof setTimeout> | undefined;
  const saveHistory = () => {
    clearTimeout(historySave);
    historySave = undefined;
    if (terminal) settingsFile.saveInputHistory(terminal.history);
  };
  // Loaded only for a person at a terminal.
  const terminal: Terminal | undefined = interactive
    ? new (await import("./terminal.ts")).Terminal({
        prompt: promptFor(options.room, 1),
        onLine: (line, literal) => {
          session?.handle(line, literal);
          // Written a moment later (one write for a pasted block), and at the end.
          historySave ??= setTimeout(saveHistory, INPUT_HISTORY_SAVE_DELAY_MS);
        },
        onEnd: () => requestQuit("quit"),
        completions: {
          commands: () => Object.keys(COMMANDS),
          nicks: () => {
            const here = peer?.presence.who().filter((e) => !e.self) ?? [];
            return here.map((e) => book.label(e.nodeId, e.nick));
          },
        },
        history: settingsFile.loadInputHistory(),
      })
    : undefined;
  const logger = createLogger(options.verbosity, (line) =>
    terminal ? terminal.print(line, process.stderr) : writeStderr(line),
  );
  const output: Output = withoutIgnored(
    options.json
      ? jsonOutput(writeStdout)
      : humanOutput((line) => (terminal ? terminal.print(line) : writeStdout(line)), book, {
          painter: colourWanted(isTerminal(1)) ? COLOURED : PLAIN,
          onMention: () => terminal?.bell(),
        }),
    ignore,
  );

  let opened: OpenedIdentity | undefined;
  let history: OpenedHistory | undefined;
  try {
    // Before anything is created: a listen address that cannot work is the user's to fix.
    await checkListenHost(options.host, options.port);
    opened = openIdentity(options.identityPath ?? defaultIdentityPath());
    reportIdentity(opened, logger);
    // A temporary identity is new every run: a file for it would only pile up.
    history =
      options.ephemeral || opened.status === "in-use"
        ? { status: "memory", release: () => {} }
        : claimHistory(
            options.dataDir ?? defaultDataDir(),
            options.room,
            opened.identity.publicKey,
          );
    if (history.status === "memory" && history.why) logger.warn(history.why);
    peer = startPeer({
      host: options.host,
      port: options.port,
      maxPeers: options.maxPeers,
      degree: options.degree,
      logger,
      identity: opened.identity,
      room: options.room,
      ...(discoveryWanted(options) ? { discovery: {} } : {}),
      reach: {},
      // A --nick given now wins over the one remembered.
      ...((options.nick ?? settings.nick) ? { nick: options.nick ?? settings.nick } : {}),
      history: {
        ...(history.status === "file" ? { path: history.path } : {}),
        keepMs: options.keepDays * DAY_MS,
      },
    });
  } catch (error) {
    history?.release();
    opened?.release();
    // A key made moments ago for a peer that never ran is not the user's yet: a second
    // try, with the address fixed, should be the first run, not find a stray key.
    if (opened?.status === "created") rmSync(opened.path, { force: true });
    terminal?.close();
    throw error;
  }
  const running = peer;
  const identity = opened;
  const historyLock = history;
  // Also on a crash or process.exit: the next peer must not find a live-looking lock.
  process.once("exit", () => {
    identity.release();
    historyLock.release();
  });
  const node = peer.node;
  node.events.on("message", (m) => output.message(m));
  // A neighbour that does not listen is a one-shot `peerchat send`: its message is what
  // matters, not its coming and going (JSON consumers still get both events).
  const member = (p: { listenPort: number }) => options.json || p.listenPort !== 0;
  // A neighbour that says LEAVE is shown leaving once, not again when its link closes;
  // until it is back (a JOIN, a new link): then the loss of that link is news again.
  const announcedLeave = new Set<string>();
  node.events.on("peer-up", (p) => {
    announcedLeave.delete(p.nodeId);
    if (member(p)) output.peerUp(p);
  });
  peer.presence.events.on("change", (change) => {
    if (change.event === "leave") {
      if (announcedLeave.size > 1000) announcedLeave.clear();
      announcedLeave.add(change.nodeId);
    } else if (change.event === "join") announcedLeave.delete(change.nodeId);
    output.presence(change);
  });
  node.events.on("peer-down", (p) => {
    // Our own leaving closes every link; saying so for each neighbour would only confuse.
    if (options.json || (quitReason === undefined && !announcedLeave.has(p.nodeId) && member(p)))
      output.peerDown(p);
  });
  // Every neighbour has gone quiet on us (the mesh is already dialling others): said once,
  // until one answers again.
  node.events.on("cut-off", ({ silentMs }) => {
    const seconds = Math.floor(silentMs / 1000);
    const message = `no neighbour has answered for ${seconds} s: you may be cut off`;
    output.error("cut-off", message, { show: true });
  });
  node.events.on("link-problem", (p) =>
    output.error("protocol", `${p.nick ?? "connection"} ${p.reason}`, { address: p.address }),
  );
  // Before anything is shown: a signal that comes as soon as `ready` is out must still
  // end in a goodbye and released locks, not in the default exit.
  const onSignal = (signal: NodeJS.Signals) =>
    requestQuit(signal === "SIGTERM" ? "shutting down" : "quit");
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  output.ready({ nodeId: node.nodeIdHex, listen: peer.listen, nick: node.nick, version: VERSION });
  const backlog = options.backlog ?? (interactive ? DEFAULT_BACKLOG : 0);
  if (backlog > 0) output.backlog(storedMessages(peer.store.latest(backlog), node.nodeIdHex));
  peer.history.events.on("late", (m) => {
    // Direct messages come late too, sealed: the direct part opens and reports them.
    if (m instanceof Delivery && m.kind === FloodKind.Chat) output.late(m);
  });
  peer.history.events.on("gap", (gap) => output.gap(gap));
  peer.direct.events.on("direct", (m) => output.direct(m));
  peer.direct.events.on("receipt", (r) => output.receipt(r));

  session = new ChatSession(running, output, (reason) => requestQuit(reason), book, {
    ignore,
    clear: () => terminal?.clear(),
    nickChanged: (nick) => remember({ nick }),
    room: options.room,
  });
  if (terminal) {
    // The prompt says where the user is and how many are here.
    const updatePrompt = () =>
      terminal.setPrompt(promptFor(options.room, running.presence.who().length));
    running.presence.events.on("change", updatePrompt);
    node.events.on("peer-up", updatePrompt);
    node.events.on("peer-down", updatePrompt);
    const timer = setInterval(updatePrompt, PROMPT_REFRESH_MS);
    timer.unref?.();
    void quitRequested.then(() => clearInterval(timer));
    updatePrompt();
  }
  // Whoever read our output has gone (`peerchat | head -3`): leave, as a filter would.
  // Any other failure to write it (a full disk) is an error the user must hear of.
  onStdoutGone((failure) => {
    if (failure === undefined) {
      requestQuit("quit");
      return;
    }
    writeStderr(`peerchat: cannot write to stdout: ${failure.message}`);
    exitStatus = ExitCode.Failure;
    requestQuit("stopped: could not write its output");
  });

  const join = (endpoint: Endpoint) =>
    peer
      .connect(endpoint)
      .then((outcome) => {
        // It dialled us first: its link has had its line ("… connected from …"); a second
        // one saying "already connected to" it would read as a duplicate link.
        if (outcome.status !== "already-connected") reportConnect(output, endpoint, outcome);
      })
      .catch((error) => logger.error(`joining ${endpoint.host}:${endpoint.port} failed:`, error));
  const joins =
    options.inviter !== undefined && options.peers.length > 1
      ? [joinTicket(peer, options.peers, options.inviter, join)]
      : options.peers.map(join);

  if (!terminal) {
    // Piped: every line is a message or a command; the end of input is not the end.
    // `echo hi | peerchat ... localhost 9000` means "say hi to that network": wait until
    // each bootstrap peer is joined (or its first attempt has failed) before reading.
    const piped = session;
    // Lines piped in before the first neighbour would go to no one: the first waits
    // (within a limit) for the bootstrap peers to answer.
    let waitedForNeighbour = options.peers.length === 0;
    void Promise.all(joins)
      .then(() =>
        readLines(Bun.stdin.stream(), {
          line: (line) => piped.handle(line),
          error: (error) => logger.error("could not handle an input line:", error),
          ready: async () => {
            if (!waitedForNeighbour) {
              waitedForNeighbour = true;
              await firstNeighbour(peer, logger);
            }
            await drained(peer);
          },
        }),
      )
      .then(() => {
        // `--json` typed at a terminal: Ctrl-D is the user's goodbye, as at the prompt.
        // Piped input that ends leaves a relay running, like the original program.
        if (isTerminal(0)) requestQuit("quit");
      });
  }

  const reason = await quitRequested;
  terminal?.close();
  if (historySave !== undefined) saveHistory();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  await peer.close(reason);
  identity.release();
  historyLock.release();
  return exitStatus;
}

/** Typed lines are written to the input history this long after the first unsaved one. */
const INPUT_HISTORY_SAVE_DELAY_MS = 1000;

/** How often the prompt's head count is brought up to date (people time out silently). */
const PROMPT_REFRESH_MS = 5_000;

/**
 * A ticket's addresses are one peer's (its LAN address, its public one, …): each is tried
 * once, and the first that reaches the inviter is kept linked (pinned) and reported; the
 * others are let go unremarked. Only if none answers are they all kept, and retried.
 */
async function joinTicket(
  peer: RunningPeer,
  addresses: readonly Endpoint[],
  inviter: string,
  join: (endpoint: Endpoint) => Promise<void>,
): Promise<void> {
  const reached = await new Promise<Endpoint | undefined>((resolve) => {
    let left = addresses.length;
    for (const endpoint of addresses) {
      void peer.node.connect(endpoint).then((outcome) => {
        const linked = outcome.status === "connected" || outcome.status === "already-connected";
        if (linked && outcome.peer.nodeId === inviter) resolve(endpoint);
        else if (--left === 0) resolve(undefined);
      });
    }
  });
  if (reached) await join(reached);
  else await Promise.all(addresses.map(join));
}

/** LAN discovery, unless `--no-discover` or `PEERCHAT_NO_DISCOVER` (set, not empty) says no. */
export function discoveryWanted(options: ChatOptions, env = process.env): boolean {
  return options.discover && !env.PEERCHAT_NO_DISCOVER;
}

/**
 * `[lobby · 5 here] > `: the room and how many are in it. Any room but the default is
 * named by a secret, which must not sit on screen: it shows as `private`.
 */
export function promptFor(room: string, here: number): string {
  return `[${room === DEFAULT_ROOM ? room : "private"} · ${here} here] > `;
}

/** Tells the user where their identity came from, when it is news. */
function reportIdentity(opened: OpenedIdentity, logger: ConsolaInstance): void {
  for (const warning of opened.warnings) logger.warn(warning);
  if (opened.status === "created") logger.info(`created your identity key at ${opened.path}`);
  if (opened.status === "in-use") {
    // A warning, shown even with --quiet: this peer is not who the user thinks it is.
    logger.warn(
      `your identity (${opened.path}) is in use by another peerchat (pid ${opened.pid}); this one runs with a temporary identity, and keeps its history in memory only (if pid ${opened.pid} is no peerchat, remove ${opened.path}.lock)`,
    );
  }
}

/** Piped lines wait this long at most for the first neighbour before they are sent. */
export const PIPED_FIRST_NEIGHBOUR_WAIT_MS = 10_000;

/** Resolves once the peer has a neighbour, or after {@link PIPED_FIRST_NEIGHBOUR_WAIT_MS}. */
async function firstNeighbour(peer: RunningPeer, logger: ConsolaInstance): Promise<void> {
  if (peer.node.neighbourCount > 0) return;
  const deadline = Date.now() + PIPED_FIRST_NEIGHBOUR_WAIT_MS;
  await new Promise<void>((resolve) => {
    const off = peer.node.events.on("peer-up", () => {
      off();
      clearTimeout(timer);
      resolve();
    });
    const timer = setTimeout(() => {
      off();
      resolve();
    }, deadline - Date.now());
  });
  if (peer.node.neighbourCount === 0)
    logger.warn(
      `no neighbour after ${PIPED_FIRST_NEIGHBOUR_WAIT_MS / 1000} s: piped lines are kept and go out when a peer joins`,
    );
}

/**
 * Resolves once the bytes queued towards neighbours are back under the high-water mark
 * and the next message would be within the per-author rate every peer enforces: a file
 * piped in goes out as fast as the network takes it, and no faster.
 */
async function drained(peer: RunningPeer): Promise<void> {
  for (;;) {
    if (peer.node.pendingBytes > INPUT_HIGH_WATER_BYTES) await Bun.sleep(5);
    else {
      const waitMs = peer.node.sendWaitMs();
      if (waitMs === 0) return;
      await Bun.sleep(waitMs);
    }
  }
}

/**
 * Throws {@link ConnectionError} `BAD_ADDRESS` if `host` is a name that does not
 * resolve: the listen would fail with no reason given.
 */
async function checkListenHost(host: string, port: number): Promise<void> {
  if (isIP(host)) return;
  try {
    await lookup(host);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? "an error";
    throw new ConnectionError(
      "BAD_ADDRESS",
      `cannot listen on ${host}:${port}: the name ${host} does not resolve (${code})`,
      { cause },
    );
  }
}
