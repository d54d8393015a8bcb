import type { DirectMessage, DirectReceipt } from "../direct/direct-messages.ts";
import type { ChatMessage } from "../node/delivery.ts";
import type { NeighbourInfo, PeerDown } from "../node/node-events.ts";
import type { PresenceChange, PresenceEntry } from "../presence/presence-tracker.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { mentionOf, type Painter, PLAIN } from "./colour.ts";
import {
  actionOf,
  clockMinutes,
  clockTime,
  columns,
  describePeer,
  formatChatLine,
  formatDirectLine,
  formatDuration,
  formatInfoLine,
  sanitize,
} from "./format.ts";
import { NickBook } from "./nick-book.ts";

/** How human output looks on a terminal. */
export interface HumanStyle {
  /** Colours (nicks, mentions); none if not given. */
  readonly painter?: Painter;
  /** Called when a live message names the user, or a direct message arrives (the bell). */
  readonly onMention?: () => void;
}

/** Stable codes of `error` events. */
export type OutputErrorCode =
  | "connect-failed"
  | "protocol"
  | "bad-input"
  | "unknown-command"
  | "no-neighbours"
  /** Every neighbour has gone quiet: this peer may be cut off from the network. */
  | "cut-off"
  | "throttled"
  | "history"
  | "recipient";

/** At most this many messages of a late block are shown; the rest wait for /history. */
export const LATE_BLOCK_LINES = 50;

/** Late messages arriving within this long of each other are shown as one block. */
export const LATE_BLOCK_QUIET_MS = 300;

/** A late block is shown at the latest this long after its first message arrived. */
export const LATE_BLOCK_MAX_WAIT_MS = 2_000;

/** Messages of one origin that sync could not recover. */
export interface GapReport {
  readonly origin: string;
  readonly count: number;
}

/** What the chat shows, in human or JSON form. */
export interface Output {
  ready(info: { nodeId: string; listen: Endpoint; nick: string; version: string }): void;
  /** A message that arrived live (or our own). */
  message(message: ChatMessage): void;
  /** A message this peer missed, brought by sync. */
  late(message: ChatMessage): void;
  /** Stored messages shown at start (`--backlog`). */
  backlog(messages: readonly ChatMessage[]): void;
  /** Stored messages the user asked for (`/history N`). */
  history(messages: readonly ChatMessage[]): void;
  /** Messages of one origin that could not be recovered. */
  gap(gap: GapReport): void;
  /** A direct message to us (live or late), or one of ours. */
  direct(message: DirectMessage): void;
  /** The recipient of one of our direct messages has it. */
  receipt(receipt: DirectReceipt): void;
  peerUp(peer: NeighbourInfo): void;
  peerDown(peer: PeerDown): void;
  presence(change: PresenceChange): void;
  /** A failure the user should see; in human mode it is already on stderr through the logger unless `show`. */
  error(
    code: OutputErrorCode,
    message: string,
    extra?: { address?: Endpoint; show?: boolean },
  ): void;
  /** `/peers`; `punch` says how hole punching went for a relayed neighbour, if it was tried. */
  peers(
    peers: readonly NeighbourInfo[],
    now: number,
    punch?: (nodeId: string) => string | undefined,
  ): void;
  who(entries: readonly PresenceEntry[], now: number): void;
  nick(nick: string): void;
  /** A free-form informational line (help text, command results). */
  info(text: string): void;
  /**
   * `/invite`: the ticket alone on its line (to be copied whole), then the `notes`
   * (the warning that it lets its holder in) as info lines.
   */
  invitation(ticket: string, notes: readonly string[]): void;
}

/**
 * Human output: chat lines and `*` info lines, through `print` (stdout, or above the
 * prompt). Nicks that two identities have used are shown with a key tag (`alice#k3f9`).
 */
export function humanOutput(
  print: (line: string) => void,
  book = new NickBook(),
  style: HumanStyle = {},
): Output {
  const info = (text: string) => print(formatInfoLine(text));
  const paint = style.painter ?? PLAIN;
  let self = "";
  let mentioned = mentionOf("");
  const label = (who: { nodeId: string; nick: string }) => book.label(who.nodeId, who.nick);
  /** A room line, its author's nick in the author's colour, highlighted if it names us. */
  const chatLine = (m: ChatMessage, at?: number, live = false) => {
    const line = formatChatLine(m, paint.nick(book.label(m.origin, m.nick), m.origin), at);
    if (m.origin === self || !mentioned(m.text)) return line;
    if (live) style.onMention?.();
    return paint.mention(line);
  };
  /** Stored messages, each with the time it was sent. */
  const stored = (messages: readonly ChatMessage[]) => {
    for (const m of messages) print(chatLine(m, m.sentAt));
  };
  let late: ChatMessage[] = [];
  let lateTimer: ReturnType<typeof setTimeout> | undefined;
  let lateFirstAt: number | undefined;
  /** The late messages gathered so far, as one block, oldest first, the last 50 at most. */
  const showLate = () => {
    const block = late.sort(
      (a, b) => a.sentAt - b.sentAt || a.origin.localeCompare(b.origin) || a.seq - b.seq,
    );
    late = [];
    lateTimer = undefined;
    lateFirstAt = undefined;
    const first = block[0] as ChatMessage;
    const last = block.at(-1) as ChatMessage;
    print(
      `— ${count(block.length)} from while you were away, ${span(first.sentAt, last.sentAt)} —`,
    );
    stored(block.slice(-LATE_BLOCK_LINES));
    if (block.length > LATE_BLOCK_LINES)
      print(`  and ${block.length - LATE_BLOCK_LINES} earlier: /history ${block.length}`);
  };
  return {
    ready({ nodeId, listen, nick, version }) {
      self = nodeId;
      mentioned = mentionOf(nick);
      info(
        `peerchat ${version} listening on ${formatEndpoint(listen)} as ${book.label(nodeId, nick)}; /help for commands`,
      );
    },
    message: (message) => print(chatLine(message, undefined, true)),
    late(message) {
      late.push(message);
      if (lateTimer !== undefined) clearTimeout(lateTimer);
      lateFirstAt ??= Date.now();
      const wait = Math.min(LATE_BLOCK_QUIET_MS, lateFirstAt + LATE_BLOCK_MAX_WAIT_MS - Date.now());
      lateTimer = setTimeout(showLate, Math.max(0, wait));
      lateTimer.unref?.();
    },
    backlog(messages) {
      if (messages.length === 0) return;
      print("— earlier —");
      stored(messages);
    },
    history(messages) {
      if (messages.length === 0) {
        info("no messages stored");
        return;
      }
      const first = messages[0] as ChatMessage;
      const last = messages.at(-1) as ChatMessage;
      print(`— history: ${count(messages.length)}, ${span(first.sentAt, last.sentAt)} —`);
      stored(messages);
    },
    gap({ origin, count: n }) {
      info(
        `${n === 1 ? "1 message" : `${n} messages`} from ${book.shown(origin)} could not be recovered`,
      );
    },
    direct(m) {
      const other = m.own ? m.to : m.from;
      const shown = m.own ? book.shown(other) : book.label(other, m.nick);
      const line = formatDirectLine(m, paint.nick(shown, other));
      if (m.own) print(line);
      else {
        // A direct message is for us by definition: it gets the mention's highlight and bell.
        if (!m.late) style.onMention?.();
        print(paint.mention(line));
      }
    },
    receipt: (r) => info(`✓ delivered to ${book.label(r.by, r.nick)}`),
    peerUp(peer) {
      // We dialled it, or it dialled us: "connected to" only for the first.
      if (peer.direction === "outbound") info(`connected to ${describePeer(peer, label(peer))}`);
      else if (peer.via)
        info(`${label(peer)} connected via ${formatEndpoint(peer.via.relayAddress)}`);
      else info(`${label(peer)} connected from ${formatEndpoint(peer.address)}`);
    },
    peerDown(peer) {
      const reason = sanitize(peer.reason);
      if (peer.by === "local")
        info(`disconnected from ${describePeer(peer, label(peer))}: ${reason}`);
      else if (peer.graceful) info(`${label(peer)} left: ${reason}`);
      // No goodbye: a crash, a reset, a silence. Whether it is still here is presence's to say.
      else
        info(`lost link to ${label(peer)} (${reason === "closed" ? "connection closed" : reason})`);
    },
    presence(change) {
      const nick = label(change);
      switch (change.event) {
        case "join":
          info(`${nick} ${change.already ? "is here" : "joined"} (${hopsAway(change.hops)})`);
          return;
        case "here": {
          const names = change.members.slice(0, 20).map((m) => label(m));
          const more = change.members.length - names.length;
          if (more > 0) names.push(`${more} more (/who)`);
          info(`${change.members.length + 1} here: ${nick} (you), ${names.join(", ")}`);
          return;
        }
        case "unreachable":
          info(`${nick} is unreachable: not heard from since the link was lost`);
          return;
        case "leave":
          info(change.reason ? `${nick} left: ${sanitize(change.reason)}` : `${nick} left`);
          return;
        case "nick":
          info(`${book.label(change.nodeId, change.previousNick)} is now ${nick}`);
          return;
        case "timeout":
          info(`${nick} timed out`);
          return;
      }
    },
    error(_code, message, extra) {
      if (extra?.show) info(sanitize(message));
    },
    peers(peers, now, punch) {
      if (peers.length === 0) {
        info("no neighbours");
        return;
      }
      info(`${peers.length} neighbour${peers.length === 1 ? "" : "s"}:`);
      const linkOf = (p: NeighbourInfo) => {
        if (!p.via) return "direct";
        const relay = peers.find((r) => r.nodeId === p.via?.relayNodeId);
        const via = `via ${relay ? label(relay) : formatEndpoint(p.via.relayAddress)}`;
        // "relayed: punch failed after 3 attempts" → "via p (punch failed after 3 attempts)"
        const how = punch?.(p.nodeId)?.replace(/^relayed(: )?/, "");
        return how ? `${via} (${how})` : via;
      };
      const rows = peers.map((p) => [
        label(p),
        formatEndpoint(p.address),
        p.direction,
        linkOf(p),
        `${clockTime(p.since)} (${formatDuration(now - p.since)})`,
        p.rttMs === undefined ? "-" : `${p.rttMs} ms`,
      ]);
      for (const line of columns([
        ["NICK", "ADDRESS", "DIRECTION", "LINK", "SINCE (AGE)", "RTT"],
        ...rows,
      ])) {
        print(`    ${line}`);
      }
    },
    who(entries, now) {
      info(`${entries.length} here (heard from in the last 90 s):`);
      const rows = entries.map((e) => [
        e.self ? `${label(e)} (you)` : label(e),
        e.self ? "-" : String(e.hops),
        e.self ? "now" : `${formatDuration(now - e.lastSeen)} ago`,
      ]);
      for (const line of columns([["NICK", "HOPS", "LAST SEEN"], ...rows])) print(`    ${line}`);
    },
    nick: (nick) => {
      mentioned = mentionOf(nick);
      info(`you are now ${book.label(self, nick)}`);
    },
    info(text) {
      for (const line of text.split("\n")) info(line);
    },
    invitation(ticket, notes) {
      print(ticket);
      for (const note of notes) info(note);
    },
  };
}

function count(n: number): string {
  return n === 1 ? "1 message" : `${n.toLocaleString("en-US")} messages`;
}

/** `12:01–12:05`, or `12:01` when both ends fall in one minute. */
function span(from: number, to: number): string {
  const [a, b] = [clockMinutes(from), clockMinutes(to)];
  return a === b ? a : `${a}–${b}`;
}

function hopsAway(hops: number): string {
  return hops === 1 ? "a neighbour" : `${hops} hops away`;
}

/** The fields of a message, as JSON events carry them. */
function messageFields(m: ChatMessage) {
  return {
    id: m.id,
    origin: m.origin,
    seq: m.seq,
    nick: m.nick,
    text: m.text,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    hops: m.hops,
    own: m.own,
    ...(actionOf(m.text) === undefined ? {} : { action: true }),
  };
}

/** A `message` event: `late` when it came by sync rather than live. */
function messageEvent(m: ChatMessage, late: boolean) {
  return { type: "message", ...messageFields(m), late };
}

/** Machine output: one JSON object per line on stdout, nothing else. */
export function jsonOutput(write: (line: string) => void): Output {
  const emit = (event: Record<string, unknown>) => write(JSON.stringify(event));
  const peer = (p: NeighbourInfo) => ({
    nodeId: p.nodeId,
    nick: p.nick,
    address: formatEndpoint(p.address),
    direction: p.direction,
    link: p.via ? "relayed" : "direct",
    ...(p.via ? { via: p.via.relayNodeId } : {}),
  });
  return {
    ready: ({ nodeId, listen, nick, version }) =>
      emit({
        type: "ready",
        nodeId,
        listen: { host: listen.host, port: listen.port },
        address: formatEndpoint(listen),
        nick,
        version,
      }),
    message: (m) => emit(messageEvent(m, false)),
    late: (m) => emit(messageEvent(m, true)),
    backlog(messages) {
      for (const m of messages) emit({ ...messageEvent(m, false), backlog: true });
    },
    history: (messages) =>
      emit({ type: "history", messages: messages.map((m) => messageFields(m)) }),
    gap: ({ origin, count }) => emit({ type: "gap", origin, count }),
    direct: (m) =>
      emit({
        type: "message",
        direct: true,
        id: m.id,
        origin: m.from,
        to: m.to,
        nick: m.nick,
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
        own: m.own,
        late: m.late,
      }),
    receipt: (r) =>
      emit({ type: "receipt", of: r.of, by: r.by, nick: r.nick, receivedAt: r.receivedAt }),
    peerUp: (p) => emit({ type: "peer-up", ...peer(p) }),
    // graceful: it said BYE (left); false: the link was lost, or closed by us.
    peerDown: (p) =>
      emit({ type: "peer-down", ...peer(p), reason: p.reason, by: p.by, graceful: p.graceful }),
    presence(change) {
      if (change.event !== "here") {
        emit({ type: "presence", ...change });
        return;
      }
      // Who was here before us: a join each, as for anyone heard of later.
      for (const { nodeId, nick, hops, already } of change.members)
        if (already) emit({ type: "presence", event: "join", nodeId, nick, hops, already });
    },
    error: (code, message, extra) =>
      emit({
        type: "error",
        code,
        message,
        ...(extra?.address ? { address: formatEndpoint(extra.address) } : {}),
      }),
    peers: (peers, _now, punch) =>
      emit({
        type: "peers",
        peers: peers.map((p) => {
          const how = p.via ? punch?.(p.nodeId) : undefined;
          return {
            ...peer(p),
            since: p.since,
            rttMs: p.rttMs ?? null,
            ...(how ? { punch: how } : {}),
          };
        }),
      }),
    who: (entries) => emit({ type: "who", peers: entries }),
    nick: (nick) => emit({ type: "nick", nick }),
    info: (text) => emit({ type: "info", message: text }),
    invitation: (ticket, notes) => emit({ type: "invitation", ticket, notes }),
  };
}
