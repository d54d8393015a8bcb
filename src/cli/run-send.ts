import { hostname, userInfo } from "node:os";
import { ConfigError } from "../errors.ts";
import { PeerNode } from "../node/peer-node.ts";
import { MAX_NICK_BYTES } from "../protocol/constants.ts";
import { truncateUtf8 } from "../protocol/control.ts";
import { formatEndpoint } from "../transport/byte-stream.ts";
import { dialTcp } from "../transport/tcp.ts";
import type { SendOptions } from "./args.ts";
import { describePeer } from "./format.ts";
import { chatTexts } from "./input.ts";
import { createLogger } from "./logger.ts";
import { jsonOutput } from "./output.ts";
import { writeStdout } from "./stdout.ts";

/** How long `send` waits for its message to leave before giving up. */
export const SEND_FLUSH_TIMEOUT_MS = 5000;

/**
 * `peerchat send HOST:PORT TEXT`: joins the peer without listening, sends the text,
 * waits until every byte is handed to the kernel, says BYE and returns the exit status
 * (0 sent, 1 unreachable or refused).
 */
export async function runSend(options: SendOptions): Promise<number> {
  const texts = chatTexts(options.text);
  if (texts.length === 0) throw new ConfigError("BAD_TEXT", "the message is empty");
  const logger = createLogger(options.verbosity);
  const output = options.json ? jsonOutput(writeStdout) : undefined;
  const node = new PeerNode({
    nick: options.nick ?? defaultSendNick(),
    listenPort: 0,
    logger,
    dial: (endpoint) => dialTcp(endpoint),
  });
  const outcome = await node.connect(options.peer);
  if (outcome.status !== "connected" && outcome.status !== "already-connected") {
    const reason = outcome.status === "self" ? "that is this process" : outcome.reason;
    const message = `could not reach ${formatEndpoint(options.peer)}: ${reason}`;
    if (output) output.error("connect-failed", message, { address: options.peer });
    process.stderr.write(`peerchat: ${message}\n`);
    await node.close("failed");
    return 1;
  }
  for (const text of texts) {
    const sent = node.sendChat(text);
    if (sent.status === "sent") output?.message(sent.message);
  }
  const deadline = Date.now() + SEND_FLUSH_TIMEOUT_MS;
  while (node.pendingBytes > 0 && node.neighbours().length > 0 && Date.now() < deadline)
    await Bun.sleep(1);
  const written = node.pendingBytes === 0 && node.neighbours().length > 0;
  await node.close("sent");
  if (!written) {
    process.stderr.write(
      `peerchat: the message could not be written to ${describePeer(outcome.peer)}\n`,
    );
    return 1;
  }
  logger.info(`sent to ${describePeer(outcome.peer)}`);
  return 0;
}

/** `user@host`, cut to the nick limit: who sent a one-shot message. */
function defaultSendNick(): string {
  let user = "peerchat";
  try {
    user = userInfo().username || user;
  } catch {
    // No user database entry (containers): keep the fallback.
  }
  const nick = `${user}@${hostname()}`.replace(/[\u0000-\u001f\u007f-\u009f]/g, "");
  return new TextDecoder().decode(truncateUtf8(nick, MAX_NICK_BYTES)) || "peerchat";
}
