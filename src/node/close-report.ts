import { ProtocolError } from "../errors.ts";
import type { ConnectionClosed } from "../link/connection.ts";
import { WIRE_ERROR_NAMES, WireErrorCode } from "../protocol/constants.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { SILENT_HANG_UP_REASON } from "../secure/handshake-refusal.ts";
import { type Link, neighbourInfo } from "./link.ts";
import type { LinkProblem, NeighbourInfo, PeerDown } from "./node-events.ts";

/** What the node knew of a link when it closed. */
export interface ClosedLink {
  /** It was the neighbour's current link (not a superseded duplicate). */
  readonly established: boolean;
  /** A duplicate link that lost: its closing is nobody's news. */
  readonly superseded: boolean;
  /** The link as the node's events describe it. */
  readonly neighbour: NeighbourInfo;
  /** Its nick, once its HELLO was in. */
  readonly nick: string | undefined;
  /** The remote said BYE. */
  readonly graceful: boolean;
  /** Why the remote said it left (BYE, ERROR), or why liveness gave up on it. */
  readonly remoteReason: string | undefined;
}

/** What {@link reportClose} needs of a closed link; `established`: it was a neighbour's link. */
export function closedLink(link: Link, established: boolean): ClosedLink {
  const { superseded, graceful, remoteReason } = link;
  const nick = link.hello?.nick;
  return { established, superseded, neighbour: neighbourInfo(link), nick, graceful, remoteReason };
}

/** How a close is reported: one log line at most, and which events. */
export interface CloseReport {
  readonly reason: string;
  readonly log?: { readonly level: "error" | "warn" | "info" | "debug"; readonly text: string };
  /** For `link-problem`: we closed it for breaking the protocol or a limit. */
  readonly problem?: LinkProblem;
  /** For `peer-down`: a neighbour is gone. */
  readonly peerDown?: PeerDown;
}

/**
 * Decides how a closed link is reported. A link we closed for a protocol violation or a
 * limit gets a warning naming the ERROR (an error if it was our bug) and a
 * `link-problem`; a neighbour's link a `peer-down`; a connection that never got through
 * its handshake a line for whoever runs a relay (our own failed dials are reported by
 * the dialler, with retry timing).
 */
export function reportClose(link: ClosedLink, info: ConnectionClosed): CloseReport {
  const reason = link.remoteReason ?? info.reason;
  const by = link.remoteReason !== undefined ? "remote" : info.by;
  const { neighbour } = link;
  const where = formatEndpoint(neighbour.address);
  const down = link.established
    ? { peerDown: { ...neighbour, reason, by, graceful: link.graceful } }
    : {};
  if (info.code !== undefined && info.code !== WireErrorCode.TooManyPeers) {
    const level = info.code === WireErrorCode.Internal ? "error" : "warn";
    const cause = info.error instanceof ProtocolError ? `, ${info.error.code}` : "";
    const code = `ERROR ${info.code} ${WIRE_ERROR_NAMES[info.code] ?? ""}${cause}`;
    const who = link.nick !== undefined ? `${link.nick} (${where})` : where;
    const { address, direction } = neighbour;
    const nick = link.nick !== undefined ? { nick: link.nick } : {};
    const problem = { address, direction, reason, ...nick };
    const log = { level, text: `closed ${who}: ${reason} [${code}]` } as const;
    return { reason, log, problem, ...down };
  }
  if (link.established || link.superseded || info.code !== undefined) return { reason, ...down };
  // Someone knocked and did not get in (another room, a v1 peer); one that closed without
  // a word only checked the port is open (a neighbour's dial-back, a scanner).
  const knocked = neighbour.direction === "inbound" && reason !== SILENT_HANG_UP_REASON;
  const level = knocked ? "info" : "debug";
  const text = `connection ${where} closed before the handshake: ${reason}`;
  return { reason, log: { level, text } };
}

/**
 * Whether the `peer-down` of a neighbour's link that just closed waits for the
 * handshakes under way from the same host (`handshakesFromHost` of them). A link closed
 * by the remote without a word (no BYE, no ERROR: a FIN) while another connection from
 * that host is still in its handshake is most likely the losing half of a duplicate pair
 * (docs/PROTOCOL.md §3): the remote chose the new link and closed this one before the
 * new one's HELLO reached us. Reported at once, the neighbour would seem to leave and
 * connect again; held, it is either taken over by the new link (no news) or reported
 * when those handshakes have ended without it (moments later, 5 s at the most).
 */
export function holdsPeerDown(
  link: ClosedLink,
  info: ConnectionClosed,
  handshakesFromHost: number,
): boolean {
  return (
    link.established &&
    link.remoteReason === undefined &&
    info.by === "remote" &&
    info.code === undefined &&
    handshakesFromHost > 0
  );
}
