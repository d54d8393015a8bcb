import { hostname, userInfo } from "node:os";
import { ConfigError } from "../errors.ts";
import { MAX_NICK_BYTES } from "../protocol/constants.ts";
import { truncateUtf8 } from "../protocol/control.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { sendOnce } from "../send-once.ts";
import type { SendOptions } from "./args.ts";
import { describePeer } from "./format.ts";
import { defaultIdentityPath, type OpenedIdentity, openIdentity } from "./identity-file.ts";
import { chatTexts } from "./input.ts";
import { createLogger } from "./logger.ts";
import { jsonOutput } from "./output.ts";
import { writeStderr, writeStdout } from "./stdio.ts";

/**
 * `peerchat send HOST:PORT TEXT [--to NODEID]`: returns the exit status (0 sent, 1
 * unreachable or not written). An empty text, or a `--to` that is not a node id, is a
 * usage error (2). A direct message is sealed to NODEID and left with the peer, which
 * carries it to the recipient now or when it comes back; `send` does not wait for the
 * receipt (it does not stay to read it; the user's own peer does, if it is the author).
 */
export async function runSend(options: SendOptions): Promise<number> {
  const texts = chatTexts(options.text);
  if (texts.length === 0) throw new ConfigError("BAD_TEXT", "the message is empty");
  const logger = createLogger(options.verbosity);
  const output = options.json ? jsonOutput(writeStdout) : undefined;
  const opened = openSendIdentity(options.identityPath);
  const result = await sendOnce({
    peer: options.peer,
    texts,
    nick: options.nick ?? defaultSendNick(),
    logger,
    room: options.room,
    identity: opened.identity,
    ...(options.to ? { to: options.to } : {}),
  });
  opened.release();
  switch (result.status) {
    case "sent":
      for (const message of result.messages) output?.message(message);
      for (const message of result.direct) output?.direct(message);
      logger.info(`sent to ${describePeer(result.to)}`);
      return 0;
    case "unreachable": {
      const verb = result.refused ? "could not join" : "could not reach";
      const message = `${verb} ${formatEndpoint(options.peer)}: ${result.reason}`;
      output?.error("connect-failed", message, { address: options.peer });
      writeStderr(`peerchat: ${message}`);
      return 1;
    }
    case "unwritten":
      writeStderr(`peerchat: not sent to ${describePeer(result.to)}: ${result.reason}`);
      return 1;
  }
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

/**
 * Who a one-shot send speaks as: one identity for all of a user's sends, so that they
 * carry one nick tag and never look like impostors of each other. `--identity` if given;
 * else the user's own when no peer of theirs holds it; else a second key of the user's,
 * kept beside it for sends (its own peer is usually the very one a send goes to, and one
 * node cannot link to itself).
 */
function openSendIdentity(path: string | undefined): OpenedIdentity {
  if (path !== undefined) return openIdentity(path);
  const own = openIdentity(defaultIdentityPath());
  if (own.status !== "in-use") return own;
  return openIdentity(`${defaultIdentityPath()}-send`);
}
