import type { ConnectionError } from "../errors.ts";
import { type RunningPeer, startPeer } from "../start-peer.ts";
import { VERSION } from "../version.ts";
import type { ChatOptions } from "./args.ts";
import { ChatSession, reportConnect } from "./chat-session.ts";
import { INPUT_HIGH_WATER_BYTES, readLines } from "./line-reader.ts";
import { createLogger } from "./logger.ts";
import { humanOutput, jsonOutput, type Output } from "./output.ts";
import { writeStdout } from "./stdout.ts";
import { Terminal } from "./terminal.ts";

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
  const interactive =
    !options.json &&
    process.stdin.isTTY === true &&
    (process.stdout.isTTY === true || process.stderr.isTTY === true);
  let terminal: Terminal | undefined;
  const logger = createLogger(options.verbosity, (line) => {
    if (terminal) terminal.print(line, process.stderr);
    else process.stderr.write(`${line}\n`);
  });
  const output: Output = options.json
    ? jsonOutput(writeStdout)
    : humanOutput((line) => (terminal ? terminal.print(line) : writeStdout(line)));

  const peer: RunningPeer = startPeer({
    host: options.host,
    port: options.port,
    maxPeers: options.maxPeers,
    degree: options.degree,
    logger,
    ...(options.nick ? { nick: options.nick } : {}),
  });
  const node = peer.node;
  let quitReason: string | undefined;
  let requestQuit: (reason: string) => void = () => {};
  const quitRequested = new Promise<string>((resolve) => {
    requestQuit = (reason) => {
      if (quitReason !== undefined) return;
      quitReason = reason;
      resolve(reason);
    };
  });
  node.events.on("message", (m) => output.message(m));
  node.events.on("peer-up", (p) => output.peerUp(p));
  // A neighbour that says LEAVE is shown leaving once, not again when its link closes.
  const announcedLeave = new Set<string>();
  peer.presence.events.on("change", (change) => {
    if (change.event === "leave") {
      if (announcedLeave.size > 1000) announcedLeave.clear();
      announcedLeave.add(change.nodeId);
    }
    output.presence(change);
  });
  node.events.on("peer-down", (p) => {
    // Our own leaving closes every link; saying so for each neighbour would only confuse.
    if (options.json || (quitReason === undefined && !announcedLeave.has(p.nodeId)))
      output.peerDown(p);
  });
  node.events.on("link-problem", (p) =>
    output.error("protocol", `${p.nick ?? "connection"} ${p.reason}`, { address: p.address }),
  );
  output.ready({ nodeId: node.nodeIdHex, listen: peer.listen, nick: node.nick, version: VERSION });

  const session = new ChatSession(peer, output, () => requestQuit("quit"));
  const onSignal = (signal: NodeJS.Signals) =>
    requestQuit(signal === "SIGTERM" ? "shutting down" : "quit");
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  for (const endpoint of options.peers) {
    void peer
      .connect(endpoint)
      .then((outcome) => reportConnect(output, endpoint, outcome))
      .catch((error) => logger.error(`joining ${endpoint.host}:${endpoint.port} failed:`, error));
  }

  if (interactive) {
    terminal = new Terminal({
      onLine: (line) => session.handle(line),
      onEnd: () => requestQuit("quit"),
    });
  } else {
    // Piped: every line is a message or a command; the end of input is not the end.
    void readLines(process.stdin, {
      line: (line) => session.handle(line),
      error: (error) => logger.error("could not handle an input line:", error),
      ready: () => drained(peer),
    });
  }

  const reason = await quitRequested;
  terminal?.close();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  await peer.close(reason);
  return 0;
}

/** Resolves once the bytes queued towards neighbours are back under the high-water mark. */
async function drained(peer: RunningPeer): Promise<void> {
  while (peer.node.pendingBytes > INPUT_HIGH_WATER_BYTES) await Bun.sleep(5);
}
