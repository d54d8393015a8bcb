import { ConfigError } from "../errors.ts";
import type { StoredMessage } from "../history/store.ts";
import { onlyLoopback } from "../invite/addresses.ts";
import { encodeTicket } from "../invite/ticket.ts";
import { type ChatMessage, Delivery } from "../node/delivery.ts";
import type { ConnectOutcome } from "../node/node-events.ts";
import { FloodKind } from "../protocol/constants.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { floodKind } from "../protocol/flood.ts";
import { fromHex } from "../protocol/hex.ts";
import type { RunningPeer } from "../start-peer.ts";
import { parseEndpoint } from "./address.ts";
import { disconnectCommand } from "./disconnect-command.ts";
import { ACTION_PREFIX, describePeer } from "./format.ts";
import type { IgnoreList } from "./ignore-list.ts";
import { chatTexts, helpText, parseInput, partingWords } from "./input.ts";
import { NickBook } from "./nick-book.ts";
import type { Output } from "./output.ts";
import { type Recipient, resolveRecipient } from "./recipient.ts";

/** What the session asks of the screen and the settings, when there are any. */
export interface SessionHooks {
  /** `/ignore`: whose messages are not shown. */
  readonly ignore?: IgnoreList;
  /** `/clear`. */
  readonly clear?: () => void;
  /** A `/nick` that took: to remember it. */
  readonly nickChanged?: (nick: string) => void;
  /** The room's name (its secret), which `/invite` puts in the ticket; without it, no tickets. */
  readonly room?: string;
}

/** Said under every ticket `/invite` shows. */
export const INVITE_WARNING =
  "anyone holding this ticket can join this room and read what is said in it: give it only to people you would let in";

/** Said too when the ticket's addresses are all this machine's loopback. */
export const INVITE_LOOPBACK_NOTE =
  "this peer listens on a loopback address: the ticket works on this computer only (listen on 0.0.0.0 or a network address to invite others)";

/** Lines `/history` shows when not told how many. */
export const DEFAULT_HISTORY_LINES = 50;

/** Stored messages read at start for the nicks of who wrote them (`/msg` to the absent). */
const KNOWN_FROM_STORE = 2_000;

/** Most lines one `/history` shows. */
export const MAX_HISTORY_LINES = 10_000;

/**
 * Stored room messages as the output shows them, read from their original bytes; `self`:
 * ours. Direct messages are stored sealed, and are not room lines: they are left out.
 */
export function storedMessages(stored: readonly StoredMessage[], self: string): ChatMessage[] {
  const chat = stored.filter((m) => floodKind(m.payload, 0) === FloodKind.Chat);
  return chat.map((m) => {
    const message = new Delivery(m.payload, 0, m.payload.length, m.receivedAt, 1);
    return message.origin === self
      ? new Delivery(m.payload, 0, m.payload.length, m.receivedAt, 0)
      : message;
  });
}

/**
 * Carries out what the user types (or pipes): chat lines go to the node, slash commands
 * are answered through the output. The same for the terminal and for piped input.
 */
export class ChatSession {
  /** Who wrote the last direct message we received: `/r` answers them. */
  private lastFrom: string | undefined;

  /**
   * @param book who is who, for `/msg NAME`: fed here by every nick the peer hears of
   *   (presence, room messages live, late or stored, direct messages)
   */
  constructor(
    private readonly peer: RunningPeer,
    private readonly output: Output,
    private readonly quit: (reason: string) => void,
    private readonly book = new NickBook(),
    private readonly hooks: SessionHooks = {},
  ) {
    for (const m of storedMessages(peer.store.latest(KNOWN_FROM_STORE), peer.node.nodeIdHex))
      book.see(m.origin, m.nick);
    book.see(peer.node.nodeIdHex, peer.node.nick);
    peer.node.events.on("message", (m) => book.see(m.origin, m.nick));
    peer.node.events.on("peer-up", (p) => book.see(p.nodeId, p.nick));
    peer.history.events.on("late", (m) => {
      if (m instanceof Delivery && m.kind === FloodKind.Chat) book.see(m.origin, m.nick);
    });
    peer.presence.events.on("change", (c) => book.see(c.nodeId, c.nick));
    peer.direct.events.on("direct", (m) => {
      if (m.own) return;
      book.see(m.from, m.nick);
      this.lastFrom = m.from;
    });
  }

  /** Handles one line of input; `literal` (pasted) lines are messages, never commands. */
  handle(line: string, literal = false): void {
    const action = parseInput(line, literal);
    const node = this.peer.node;
    switch (action.kind) {
      case "empty":
        return;
      case "chat":
        for (const text of action.texts) {
          const outcome = node.sendChat(text);
          if (outcome.status === "invalid") {
            this.output.error("bad-input", `not sent: ${outcome.reason}`, { show: true });
          } else if (outcome.status === "throttled") {
            this.output.error(
              "throttled",
              `not sent: faster than the network accepts from one author; try again in ${Math.ceil(outcome.retryInMs / 100) / 10} s`,
              { show: true },
            );
          } else if (outcome.neighbours === 0) {
            // Kept in the history all the same: sync gives it to the first peer that joins.
            const kept =
              "nobody is connected: the message is kept here and goes out when a peer joins";
            this.output.error("no-neighbours", kept, {
              show: true,
            });
          }
        }
        return;
      case "unknown-command":
        this.output.error(
          "unknown-command",
          `unknown command /${action.name}; type /help for the list`,
          { show: true },
        );
        return;
      case "command":
        break;
    }
    switch (action.name) {
      case "help":
        this.output.info(helpText());
        return;
      case "peers":
        this.output.peers(node.neighbours(), Date.now(), (nodeId) =>
          this.peer.reach?.reach.punchState(nodeId),
        );
        return;
      case "who":
        this.output.who(this.peer.presence.who(), Date.now());
        return;
      case "nick": {
        if (!action.arg) {
          this.output.error("bad-input", "usage: /nick NAME", { show: true });
          return;
        }
        const result = this.peer.presence.rename(action.arg);
        if (result.ok) {
          this.output.nick(action.arg);
          this.hooks.nickChanged?.(action.arg);
        } else this.output.error("bad-input", `nick not changed: ${result.reason}`, { show: true });
        return;
      }
      case "connect": {
        let endpoint: Endpoint;
        try {
          endpoint = parseEndpoint(action.arg, "address");
        } catch (error) {
          const message = error instanceof ConfigError ? error.message : String(error);
          this.output.error("bad-input", `${message}; usage: /connect HOST:PORT`, { show: true });
          return;
        }
        this.output.info(`connecting to ${formatEndpoint(endpoint)}…`);
        void this.peer
          .connect(endpoint)
          .then((outcome) => reportConnect(this.output, endpoint, outcome))
          .catch((error) =>
            this.output.error("connect-failed", `could not connect: ${String(error)}`, {
              show: true,
            }),
          );
        return;
      }
      case "history": {
        const n = action.arg === "" ? DEFAULT_HISTORY_LINES : Number(action.arg);
        if (!/^\d{0,5}$/.test(action.arg) || n < 1 || n > MAX_HISTORY_LINES) {
          this.output.error("bad-input", `usage: /history [N], N from 1 to ${MAX_HISTORY_LINES}`, {
            show: true,
          });
          return;
        }
        this.output.history(storedMessages(this.peer.store.latest(n), this.peer.node.nodeIdHex));
        return;
      }
      case "msg": {
        const match = /^(\S+)\s+(.+)$/s.exec(action.arg);
        if (!match) {
          this.output.error("bad-input", "usage: /msg NAME TEXT", { show: true });
          return;
        }
        const recipient = this.resolve(match[1] as string);
        if (recipient.status === "refused") {
          this.output.error("recipient", `not sent: ${recipient.message}`, { show: true });
          return;
        }
        this.sendDirect(recipient.nodeId, match[2] as string);
        return;
      }
      case "r":
        if (this.lastFrom === undefined) {
          this.output.error("recipient", "not sent: no direct message to answer yet", {
            show: true,
          });
          return;
        }
        if (action.arg === "") {
          this.output.error("bad-input", "usage: /r TEXT", { show: true });
          return;
        }
        this.sendDirect(this.lastFrom, action.arg);
        return;
      case "disconnect":
        disconnectCommand(this.peer, this.output, this.book, action.arg);
        return;
      case "invite":
        this.invite(action.arg);
        return;
      case "quit":
        this.quit(partingWords(action.arg));
        return;
      case "me":
        if (action.arg === "") {
          this.output.error("bad-input", "usage: /me ACTION", { show: true });
          return;
        }
        this.handle(`/${ACTION_PREFIX}${action.arg}`);
        return;
      case "clear":
        this.hooks.clear?.();
        return;
      case "ignore":
      case "unignore":
        this.ignore(action.name, action.arg);
        return;
    }
  }

  /** `/invite`: a ticket for this room and this peer's addresses, with the warning it needs. */
  private invite(arg: string): void {
    if (arg !== "") {
      this.output.error("bad-input", "usage: /invite (it takes no arguments)", { show: true });
      return;
    }
    const room = this.hooks.room;
    if (room === undefined) {
      this.output.error("bad-input", "/invite is not available here", { show: true });
      return;
    }
    const addresses = this.peer.invitationAddresses();
    let ticket: string;
    try {
      ticket = encodeTicket({ room, nodeId: this.peer.node.nodeId, addresses });
    } catch (error) {
      // A listen host no ticket can carry (a name with `_`, say): the user's to change.
      const message = error instanceof Error ? error.message : String(error);
      this.output.error("bad-input", message, { show: true });
      return;
    }
    const notes = [INVITE_WARNING];
    if (onlyLoopback(addresses)) notes.push(INVITE_LOOPBACK_NOTE);
    this.output.invitation(ticket, notes);
  }

  /** Whom NAME means (`/msg`, `/ignore`), among all heard of and who is here now. */
  private resolve(name: string): Recipient {
    // Who is here now too (heard by ALIVE, which the book does not hear of).
    for (const e of this.peer.presence.who()) if (!e.self) this.book.see(e.nodeId, e.nick);
    return resolveRecipient(this.book, name);
  }

  /** `/ignore NAME`, `/unignore NAME`, `/ignore` (the list). */
  private ignore(command: "ignore" | "unignore", name: string): void {
    const list = this.hooks.ignore;
    if (list === undefined) {
      this.output.error("bad-input", `/${command} works at the interactive prompt only`, {
        show: true,
      });
      return;
    }
    if (name === "") {
      if (command === "unignore") {
        this.output.error("bad-input", "usage: /unignore NAME", { show: true });
        return;
      }
      const shown = list.list.map((id) => this.book.shown(id));
      this.output.info(
        shown.length === 0 ? "nobody is ignored" : `ignored (${shown.length}): ${shown.join(", ")}`,
      );
      return;
    }
    const found = this.resolve(name);
    if (found.status === "refused") {
      this.output.error("recipient", found.message, { show: true });
      return;
    }
    const who = this.book.shown(found.nodeId);
    if (found.nodeId === this.peer.node.nodeIdHex) {
      this.output.error("bad-input", "you cannot ignore yourself", { show: true });
    } else if (command === "ignore") {
      if (list.add(found.nodeId))
        this.output.info(`ignoring ${who}: their messages are not shown here; /unignore to undo`);
      else this.output.error("bad-input", "the ignore list is full", { show: true });
    } else if (list.remove(found.nodeId)) this.output.info(`no longer ignoring ${who}`);
    else this.output.info(`${who} was not ignored`);
  }

  /** Seals and sends `line` to `nodeId` (split to the text limit like a room line). */
  private sendDirect(nodeId: string, line: string): void {
    for (const text of chatTexts(line)) {
      const outcome = this.peer.direct.send(fromHex(nodeId), text);
      if (outcome.status === "invalid")
        this.output.error("bad-input", `not sent: ${outcome.reason}`, { show: true });
      else if (outcome.status === "throttled")
        this.output.error(
          "throttled",
          "not sent: too many direct messages at once; wait a moment",
          {
            show: true,
          },
        );
      else if (outcome.neighbours === 0)
        this.output.info(
          "nobody is connected: the message is kept here and goes out when a peer joins",
        );
    }
  }
}

/**
 * Tells the user how a dial went. A success shows as the node's peer-up; a failure is
 * already a warning on stderr (the address keeps being retried), so in human mode only
 * the JSON `error` event is added.
 */
export function reportConnect(output: Output, endpoint: Endpoint, outcome: ConnectOutcome): void {
  switch (outcome.status) {
    case "connected":
      return;
    case "already-connected":
      output.info(`already connected to ${describePeer(outcome.peer)}`);
      return;
    case "self":
      output.info(`${formatEndpoint(endpoint)} is this peer itself`);
      return;
    case "failed":
      output.error(
        "connect-failed",
        `${outcome.stage === "handshake" ? "could not join" : "could not reach"} ${formatEndpoint(endpoint)}: ${outcome.reason}`,
        { address: endpoint },
      );
      return;
  }
}
