import type { ConsolaInstance } from "consola";
import type { LinkFactory } from "../link/secure-links.ts";
import type { Clock, TimerHandle } from "../node/clock.ts";
import type { PeerNode } from "../node/peer-node.ts";
import { hex } from "../protocol/hex.ts";
import { Circuits, type CircuitsLimits } from "../relay/circuits.ts";
import type { ByteStream } from "../transport/byte-stream.ts";
import { punchDial, reservePort } from "../transport/punch-dial.ts";
import { inboundView } from "./inbound-view.ts";
import { Reach } from "./reach-driver.ts";
import { RelayPlanner } from "./relay-planner.ts";

/** How often the planner is asked which circuits to open. */
export const RELAY_PLAN_TICK_MS = 1_000;

/** Options of {@link startReach}. */
export interface ReachLinksOptions {
  readonly node: PeerNode;
  readonly links: LinkFactory;
  /** The mesh's degree: relayed links are opened only while the node has fewer neighbours. */
  readonly degree: number;
  readonly listenHost: string;
  readonly clock: Clock;
  readonly logger: ConsolaInstance;
  /** The relay's limits (tests lower them). */
  readonly circuitLimits?: Partial<CircuitsLimits>;
}

/** The parts of reach at one peer, running. */
export interface ReachLinks {
  readonly reach: Reach;
  readonly circuits: Circuits;
  readonly planner: RelayPlanner;
  close(): void;
}

/**
 * Reach across NATs (docs/PROTOCOL.md §5d), assembled: the reach driver (observed
 * addresses, dial-backs, hole punches), relay circuits (this peer relaying for its
 * neighbours when it is reachable, and opening relayed links through them), and the
 * planner that decides which peers to reach through which relay. A relayed link is a
 * full Noise link end to end; once up, its opener starts a hole punch, and a punched
 * link replaces it (the node keeps a direct link over a relayed one).
 */
export function startReach(options: ReachLinksOptions): ReachLinks {
  const { node, links, clock, logger } = options;
  const log = logger;
  const reach = new Reach({
    node,
    listenHost: options.listenHost,
    listenPort: node.listenPort,
    clock,
    logger: log,
    reservePort: () => reservePort(),
    punchDial: (request) => punchDial(request),
    onPunched: (stream, info) => {
      log.debug(`punched a direct link to ${info.nodeIdHex.slice(0, 8)} (${info.role})`);
      if (info.role === "initiator") void connectOver(stream);
      else node.addConnection(links.accept(inboundView(stream)));
    },
  });
  const circuits = new Circuits({
    node,
    clock,
    logger: log,
    ...(options.circuitLimits ? { limits: options.circuitLimits } : {}),
    relaying: () => relays(node, reach),
    onIncoming: (stream) => node.addConnection(links.accept(stream)),
  });
  const planner = new RelayPlanner();

  const connectOver = (stream: ByteStream) =>
    node.connect(stream.remote, async () => ({ ok: true, connection: links.accept(stream) }));

  const open = async (target: string, relay: string) => {
    const opened = await circuits.open(relay, target);
    if (!opened.ok) {
      log.debug(
        `no circuit to ${target.slice(0, 8)} through ${relay.slice(0, 8)}: ${opened.reason}`,
      );
      planner.opened(target, false, clock.now());
      return;
    }
    const outcome = await connectOver(opened.stream);
    const ok = outcome.status === "connected" || outcome.status === "already-connected";
    planner.opened(target, ok, clock.now());
    if (outcome.status === "connected" && outcome.peer.via) reach.startPunch(target);
  };

  const unsubscribe = [
    node.events.on("peers", ({ from, peers }) => {
      // A relayed neighbour relays nothing: circuits do not nest.
      if (from.via) return;
      planner.listed(
        from.nodeId,
        peers.map((p) => hex(p.nodeId)),
        clock.now(),
      );
    }),
    node.events.on("peer-down", (peer) => planner.lost(peer.nodeId, clock.now())),
  ];

  let timer: TimerHandle | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    // Listening on loopback, every peer is on this machine: none is behind a NAT.
    if (reach.status.reachability === "local") return;
    const neighbours = node.neighbours();
    const direct = new Set(neighbours.filter((n) => !n.via).map((n) => n.nodeId));
    const due = planner.due(
      {
        self: node.nodeIdHex,
        isNeighbour: (id) => node.isNeighbour(id),
        relayedNeighbours: neighbours.length - direct.size,
        wantsMore: neighbours.length < options.degree,
      },
      clock.now(),
    );
    for (const { target, relay } of due) {
      if (!direct.has(relay)) {
        planner.opened(target, false, clock.now());
        continue;
      }
      void open(target, relay).catch((error) => log.error("opening a relayed link failed:", error));
    }
    timer = clock.setTimeout(tick, RELAY_PLAN_TICK_MS);
  };
  timer = clock.setTimeout(tick, RELAY_PLAN_TICK_MS);

  return {
    reach,
    circuits,
    planner,
    close() {
      stopped = true;
      clock.clearTimeout(timer);
      for (const off of unsubscribe) off();
      circuits.close();
      reach.close();
    },
  };
}

/**
 * Whether this peer relays for its neighbours: when others can dial it (a dial-back
 * said so), on a loopback-only network (tests, one machine), or, before any dial-back
 * has answered, when a neighbour has dialled it directly. A peer known to be behind a
 * NAT does not: its neighbours would only be relayed through another NAT.
 */
function relays(node: PeerNode, reach: Reach): boolean {
  const status = reach.status.reachability;
  if (status === "public" || status === "local") return true;
  if (status === "private") return false;
  return node.neighbours().some((n) => n.direction === "inbound" && !n.via);
}
