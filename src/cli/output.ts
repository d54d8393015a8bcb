import type { ChatMessage } from "../node/delivery.ts";
import type { NeighbourInfo, PeerDown } from "../node/node-events.ts";
import type { PresenceChange, PresenceEntry } from "../presence/presence-tracker.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import {
  clockTime,
  columns,
  describePeer,
  formatChatLine,
  formatDuration,
  formatInfoLine,
  sanitize,
} from "./format.ts";
import { NickBook } from "./nick-book.ts";

/** Stable codes of `error` events. */
export type OutputErrorCode =
  | "connect-failed"
  | "protocol"
  | "bad-input"
  | "unknown-command"
  | "no-neighbours"
  | "throttled";

/** What the chat shows, in human or JSON form. */
export interface Output {
  ready(info: { nodeId: string; listen: Endpoint; nick: string; version: string }): void;
  message(message: ChatMessage): void;
  peerUp(peer: NeighbourInfo): void;
  peerDown(peer: PeerDown): void;
  presence(change: PresenceChange): void;
  /** A failure the user should see; in human mode it is already on stderr through the logger unless `show`. */
  error(
    code: OutputErrorCode,
    message: string,
    extra?: { address?: Endpoint; show?: boolean },
  ): void;
  peers(peers: readonly NeighbourInfo[], now: number): void;
  who(entries: readonly PresenceEntry[], now: number): void;
  nick(nick: string): void;
  /** A free-form informational line (help text, command results). */
  info(text: string): void;
}

/**
 * Human output: chat lines and `*` info lines, through `print` (stdout, or above the
 * prompt). Nicks that two identities have used are shown with a key tag (`alice#k3f9`).
 */
export function humanOutput(print: (line: string) => void, book = new NickBook()): Output {
  const info = (text: string) => print(formatInfoLine(text));
  let self = "";
  const label = (who: { nodeId: string; nick: string }) => book.label(who.nodeId, who.nick);
  return {
    ready({ nodeId, listen, nick, version }) {
      self = nodeId;
      info(
        `peerchat ${version} listening on ${formatEndpoint(listen)} as ${book.label(nodeId, nick)}; /help for commands`,
      );
    },
    message: (message) => print(formatChatLine(message, book.label(message.origin, message.nick))),
    peerUp: (peer) => info(`connected to ${describePeer(peer, label(peer))}`),
    peerDown: (peer) =>
      info(
        peer.by === "remote"
          ? `${label(peer)} left: ${sanitize(peer.reason)}`
          : `disconnected from ${describePeer(peer, label(peer))}: ${sanitize(peer.reason)}`,
      ),
    presence(change) {
      const nick = label(change);
      switch (change.event) {
        case "join":
          info(`${nick} joined (${hopsAway(change.hops)})`);
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
    peers(peers, now) {
      if (peers.length === 0) {
        info("no neighbours");
        return;
      }
      info(`${peers.length} neighbour${peers.length === 1 ? "" : "s"}:`);
      const rows = peers.map((p) => [
        label(p),
        formatEndpoint(p.address),
        p.direction,
        `${clockTime(p.since)} (${formatDuration(now - p.since)})`,
        p.rttMs === undefined ? "-" : `${p.rttMs} ms`,
      ]);
      for (const line of columns([
        ["NICK", "ADDRESS", "DIRECTION", "SINCE (AGE)", "RTT"],
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
    nick: (nick) => info(`you are now ${book.label(self, nick)}`),
    info(text) {
      for (const line of text.split("\n")) info(line);
    },
  };
}

function hopsAway(hops: number): string {
  return hops === 1 ? "a neighbour" : `${hops} hops away`;
}

/** Machine output: one JSON object per line on stdout, nothing else. */
export function jsonOutput(write: (line: string) => void): Output {
  const emit = (event: Record<string, unknown>) => write(JSON.stringify(event));
  const peer = (p: NeighbourInfo) => ({
    nodeId: p.nodeId,
    nick: p.nick,
    address: formatEndpoint(p.address),
    direction: p.direction,
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
    message: (m) =>
      emit({
        type: "message",
        id: m.id,
        origin: m.origin,
        seq: m.seq,
        nick: m.nick,
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
        hops: m.hops,
        own: m.own,
      }),
    peerUp: (p) => emit({ type: "peer-up", ...peer(p) }),
    peerDown: (p) => emit({ type: "peer-down", ...peer(p), reason: p.reason, by: p.by }),
    presence: (change) => emit({ type: "presence", ...change }),
    error: (code, message, extra) =>
      emit({
        type: "error",
        code,
        message,
        ...(extra?.address ? { address: formatEndpoint(extra.address) } : {}),
      }),
    peers: (peers) =>
      emit({
        type: "peers",
        peers: peers.map((p) => ({ ...peer(p), since: p.since, rttMs: p.rttMs ?? null })),
      }),
    who: (entries) => emit({ type: "who", peers: entries }),
    nick: (nick) => emit({ type: "nick", nick }),
    info: (text) => emit({ type: "info", message: text }),
  };
}
