import type { Connection } from "../link/connection.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import type { Hello } from "../protocol/hello.ts";
import { sourceGroup, unmapIPv4 } from "../protocol/ip.ts";
import type { GuardState } from "./abuse-guard.ts";
import type { TimerHandle } from "./clock.ts";
import { type FlowState, newFlow } from "./flow-control.ts";
import type { LinkEnd } from "./handshake.ts";
import { type LivenessState, newLiveness } from "./liveness.ts";
import type { ConnectOutcome, NeighbourInfo } from "./node-events.ts";

/** A dial waiting for its connection's handshake. */
export interface PendingDial {
  readonly endpoint: Endpoint;
  readonly resolve: (outcome: ConnectOutcome) => void;
}

/** The node's record of one connection, handshaking or established; each part keeps its own state in it. */
export interface Link {
  readonly conn: Connection;
  /** The remote's address group (`sourceGroup`): how handshake places are shared. */
  readonly source: string;
  state: "handshaking" | "established" | "closed";
  hello: Hello | undefined;
  /** Hex node id, once the HELLO is in. */
  key: string | undefined;
  since: number;
  /** The handshake deadline. */
  timer: TimerHandle | undefined;
  dial: PendingDial | undefined;
  /** Closed because another link to the same node won: no peer-down for this one. */
  superseded: boolean;
  /** BYE reason or ERROR received from the remote, or why liveness gave up on it. */
  remoteReason: string | undefined;
  /** The remote said BYE. */
  graceful: boolean;
  /** Resolved when the connection has closed. */
  readonly closeWaiters: Array<() => void>;
  readonly liveness: LivenessState;
  readonly flow: FlowState;
  readonly guard: GuardState;
}

/** A new connection's record, handshake pending. */
export function newLink(
  conn: Connection,
  dial: PendingDial | undefined,
  guard: GuardState,
  now: number,
): Link {
  return {
    conn,
    source: sourceGroup(conn.remote.host),
    state: "handshaking",
    hello: undefined,
    key: undefined,
    since: now,
    timer: undefined,
    dial,
    superseded: false,
    remoteReason: undefined,
    graceful: false,
    closeWaiters: [],
    liveness: newLiveness(now),
    flow: newFlow(now),
    guard,
  };
}

/** The link as the duplicate-link rule sees it. */
export function linkEnd(link: Link): LinkEnd {
  const { conn } = link;
  const dialerPort = conn.direction === "outbound" ? conn.local.port : conn.remote.port;
  return { direction: conn.direction, dialerPort, relayed: conn.via !== undefined };
}

/** The neighbour's reachable address: its IP with its advertised listen port. */
export function linkAddress(link: Link): Endpoint {
  const remote = link.conn.remote;
  // Relayed: the remote is the relay, and the neighbour's own address is unknown.
  if (link.conn.via) return remote;
  const port = link.hello?.listenPort || remote.port;
  return { host: unmapIPv4(remote.host), port };
}

/** What the node's API and events say about a link. */
export function neighbourInfo(link: Link): NeighbourInfo {
  const hello = link.hello;
  return {
    nodeId: link.key ?? "",
    nick: hello?.nick ?? "?",
    address: linkAddress(link),
    direction: link.conn.direction,
    since: link.since,
    listenPort: hello?.listenPort ?? 0,
    pendingBytes: link.conn.pendingBytes,
    rttMs: link.liveness.rttMs,
    ...(link.conn.via ? { via: link.conn.via } : {}),
  };
}

/** Tells whoever dialled `link` how the dial ended (once; later outcomes are dropped). */
export function settleDial(link: Link, outcome: ConnectOutcome): void {
  link.dial?.resolve(outcome);
  link.dial = undefined;
}
