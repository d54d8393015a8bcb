import { ConfigError } from "../errors.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import type { DisconnectOutcome, DisconnectTarget, RunningPeer } from "../start-peer.ts";
import { parseEndpoint } from "./address.ts";
import { describePeer, sanitize } from "./format.ts";
import type { NickBook } from "./nick-book.ts";
import type { Output } from "./output.ts";

/** Whom `/disconnect ARG` means, or why it means nobody. */
export type DisconnectRequest =
  | { readonly status: "found"; readonly target: DisconnectTarget; readonly shown: string }
  | { readonly status: "refused"; readonly message: string };

/**
 * `/disconnect HOST:PORT` or `/disconnect NAME`: closes the links to that neighbour with
 * a BYE and stops dialling it, then says what it did, or why it did nothing.
 */
export function disconnectCommand(
  peer: RunningPeer,
  output: Output,
  book: NickBook,
  arg: string,
): void {
  const request = disconnectRequest(peer, book, arg);
  if (request.status === "refused") {
    output.error("bad-input", request.message, { show: true });
    return;
  }
  output.info(describeDisconnect(peer.disconnect(request.target), request.shown));
}

/**
 * Reads the argument: an address (`HOST:PORT`, as `/connect` takes it), else a
 * neighbour named as `/msg` names people (a nick, nick#tag, or 8 or more hex digits of
 * its node id); exactly one neighbour must match.
 */
export function disconnectRequest(
  peer: RunningPeer,
  book: NickBook,
  arg: string,
): DisconnectRequest {
  if (arg === "") return { status: "refused", message: "usage: /disconnect HOST:PORT or NAME" };
  const endpoint = asEndpoint(arg);
  if (endpoint) return { status: "found", target: endpoint, shown: formatEndpoint(endpoint) };
  const neighbours = peer.node.neighbours();
  for (const n of neighbours) book.see(n.nodeId, n.nick);
  const ids = new Set(neighbours.map((n) => n.nodeId));
  const found = book.candidates(arg).filter((c) => ids.has(c.nodeId));
  const shown = sanitize(arg);
  const [only] = found;
  if (found.length === 1 && only !== undefined) {
    return { status: "found", target: { nodeId: only.nodeId }, shown };
  }
  if (found.length === 0) {
    return {
      status: "refused",
      message: `not connected to ${shown}: no neighbour goes by that name (/peers lists them)`,
    };
  }
  const list = neighbours
    .filter((n) => found.some((c) => c.nodeId === n.nodeId))
    .map((n) => describePeer(n))
    .join(", ");
  return {
    status: "refused",
    message: `"${shown}" could be any of ${list}; name one by HOST:PORT`,
  };
}

/** What the user is told: what was done, or why nothing was. */
export function describeDisconnect(outcome: DisconnectOutcome, shown: string): string {
  if (outcome.status === "disconnected") {
    const who = outcome.peers.map((p) => describePeer(p)).join(", ");
    const it = outcome.peers.length === 1 ? "it" : "they";
    return `disconnected from ${who}; ${it} will not be redialled`;
  }
  return outcome.unpinned
    ? `not connected to ${shown}; it will not be redialled`
    : `not connected to ${shown}`;
}

function asEndpoint(arg: string): Endpoint | undefined {
  try {
    return parseEndpoint(arg, "address");
  } catch (error) {
    if (error instanceof ConfigError) return undefined;
    throw error;
  }
}
