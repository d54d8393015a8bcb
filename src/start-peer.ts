import type { ConsolaInstance } from "consola";
import { DirectMessages } from "./direct/direct-messages.ts";
import { type LanDiscovery, startLanDiscovery } from "./discovery/lan-beacons.ts";
import { History } from "./history/history.ts";
import { DAY_MS, DEFAULT_KEEP_DAYS, DEFAULT_MAX_MESSAGES, HistoryStore } from "./history/store.ts";
import { invitationAddresses } from "./invite/addresses.ts";
import { secureLinks } from "./link/secure-links.ts";
import { DEFAULT_DEGREE, Mesh } from "./mesh/mesh.ts";
import { PinnedPeers } from "./mesh/pinned-peers.ts";
import { type Clock, systemClock } from "./node/clock.ts";
import type { FloodLimits } from "./node/flood-limits.ts";
import { DEFAULT_MAX_PEERS } from "./node/handshake.ts";
import type { ConnectOutcome, NeighbourInfo } from "./node/node-events.ts";
import { PeerNode } from "./node/peer-node.ts";
import type { WireTap } from "./node/trace.ts";
import { PresenceTracker } from "./presence/presence-tracker.ts";
import { MAX_NICK_BYTES } from "./protocol/constants.ts";
import { truncateUtf8 } from "./protocol/control.ts";
import type { Endpoint } from "./protocol/endpoint.ts";
import { formatEndpoint } from "./protocol/endpoint.ts";
import { type ReachLinks, startReach } from "./reach/reach-links.ts";
import type { CircuitsLimits } from "./relay/circuits.ts";
import { generateIdentity, type Identity } from "./secure/identity.ts";
import { DEFAULT_ROOM } from "./secure/room.ts";
import type { StreamDial } from "./transport/byte-stream.ts";
import { listenTcp, type TcpListener } from "./transport/tcp.ts";

/** Everything needed to run one peer. Built by the CLI from its arguments, or by tests. */
export interface PeerConfig {
  /** Address to listen on. */
  readonly host: string;
  /** Port to listen on; 0 = any free port. */
  readonly port: number;
  /** Peers to join at start; kept linked and redialled while the peer runs. */
  readonly peers?: readonly Endpoint[];
  /** Display name; default `HOST:PORT` of the listener. */
  readonly nick?: string;
  readonly maxPeers?: number;
  /** Links to keep (dialling known peers when short); 0 = only the peers named. Default 4. */
  readonly degree?: number;
  readonly logger: ConsolaInstance;
  /** Who this peer is: its public key is the node id. Default: a fresh one. */
  readonly identity?: Identity;
  /** The room to join (a secret name makes a private room); default `lobby`. */
  readonly room?: string;
  /** Test hooks. */
  readonly clock?: Clock;
  /** How to open a byte stream (fault injection); the secure channel is added on top. */
  readonly dial?: StreamDial;
  readonly tap?: WireTap;
  readonly handshakeTimeoutMs?: number;
  /** FLOOD rate limits (benchmarks turn them off); the defaults otherwise. */
  readonly floodLimits?: FloodLimits;
  /**
   * Where the room's history is kept (a file named for this identity and room) and for
   * how long; without it, or with `dataDir` unset, the history lives in memory only.
   */
  readonly history?: HistoryConfig;
  /**
   * Learn which address others see, relay for neighbours behind NATs, reach peers behind
   * NATs through a relay and punch direct links to them; off when unset.
   */
  readonly reach?: ReachConfig;
  /** Find and be found by the room's peers on the LAN (UDP multicast); off when unset. */
  readonly discovery?: DiscoveryConfig;
}

/** Reach across NATs: relay circuits and hole punching (docs/PROTOCOL.md §5d). */
export interface ReachConfig {
  /** The limits on circuits this peer relays; the defaults otherwise. */
  readonly circuitLimits?: Partial<CircuitsLimits>;
}

/** LAN discovery's settings (docs/PROTOCOL.md §5d). */
export interface DiscoveryConfig {
  /** The UDP port beacons go to; default DISCOVERY_PORT. */
  readonly port?: number;
}

/** Where and how long a peer keeps its history. */
export interface HistoryConfig {
  /** The history file (see historyFileName); undefined: in memory only (`--ephemeral`). */
  readonly path?: string;
  readonly keepMs?: number;
  readonly maxMessages?: number;
}

/** The reason in the BYE {@link RunningPeer.disconnect} sends: the neighbour shows it. */
export const DISCONNECT_REASON = "dropped the link";

/** Whom {@link RunningPeer.disconnect} is to drop: an address, or a neighbour's node id (hex). */
export type DisconnectTarget = Endpoint | { readonly nodeId: string };

/** What {@link RunningPeer.disconnect} did. */
export type DisconnectOutcome =
  /** The links to these neighbours are closing with a BYE. */
  | {
      readonly status: "disconnected";
      readonly peers: readonly NeighbourInfo[];
      /** A pinned address among them is no longer redialled. */
      readonly unpinned: boolean;
    }
  /** No neighbour there; `unpinned`: the address was pinned, and is no longer redialled. */
  | { readonly status: "not-connected"; readonly unpinned: boolean };

/** A running peer: its node, its listener, its mesh and its view of who is here. */
export interface RunningPeer {
  readonly node: PeerNode;
  readonly mesh: Mesh;
  readonly presence: PresenceTracker;
  /** The room's messages, kept and reconciled with the neighbours. */
  readonly history: History;
  /** Direct messages: sealed to one recipient, carried and kept like any message. */
  readonly direct: DirectMessages;
  /** Reach across NATs, when configured: reachability, relay circuits, hole punches. */
  readonly reach: ReachLinks | undefined;
  readonly store: HistoryStore;
  /** Where it listens; the port is the real one when 0 was asked for. */
  readonly listen: Endpoint;
  /**
   * Where others can dial this peer, for an invitation ticket: the listen address, or
   * each non-loopback IPv4 address of the machine when it listens on every interface.
   */
  invitationAddresses(): Endpoint[];
  /** Dials `endpoint` and keeps it linked, like a bootstrap peer. */
  connect(endpoint: Endpoint): Promise<ConnectOutcome>;
  /**
   * Closes the links to a neighbour with a BYE, and stops dialling it: its address is
   * unpinned and the mesh leaves it alone until {@link connect} asks for it again. The
   * neighbour may still dial us.
   */
  disconnect(target: DisconnectTarget): DisconnectOutcome;
  /** LEAVE to the network, BYE to every neighbour, flushed; stops listening and redialling. */
  close(reason?: string): Promise<void>;
  /** Stops at once with no goodbye, as a crash would (for tests of the network's healing). */
  abort(): void;
}

/**
 * Starts a peer: opens its history (throwing {@link StoreError} if it cannot), listens
 * (throwing {@link ConnectionError} if the address cannot be bound), then dials the
 * bootstrap peers in the background.
 */
export function startPeer(config: PeerConfig): RunningPeer {
  let node: PeerNode | undefined;
  const identity = config.identity ?? generateIdentity();
  const room = config.room ?? DEFAULT_ROOM;
  const links = secureLinks(identity, room, config.dial);
  const store = openStore(config, identity.publicKey);
  let listener: TcpListener;
  try {
    listener = listenTcp({
      host: config.host,
      port: config.port,
      onStream: (stream) => {
        if (node) node.addConnection(links.accept(stream));
        else stream.destroy();
      },
    });
  } catch (error) {
    store.close();
    throw error;
  }
  const listen = { host: config.host, port: listener.port };
  try {
    node = new PeerNode({
      nick: config.nick ?? defaultNick(listen),
      listenPort: listener.port,
      logger: config.logger,
      dial: links.dial,
      maxPeers: config.maxPeers ?? DEFAULT_MAX_PEERS,
      ...(config.clock ? { clock: config.clock } : {}),
      identity,
      ...(config.tap ? { tap: config.tap } : {}),
      ...(config.handshakeTimeoutMs ? { handshakeTimeoutMs: config.handshakeTimeoutMs } : {}),
      ...(config.floodLimits ? { floodLimits: config.floodLimits } : {}),
      lastSeq: store.lastOwnSeq,
    });
  } catch (error) {
    listener.close();
    store.close();
    throw error;
  }
  const peerNode = node;
  const clock = config.clock ?? systemClock;
  const pinned = new PinnedPeers(peerNode, config.logger, { clock });
  const mesh = new Mesh(peerNode, {
    degree: config.degree ?? DEFAULT_DEGREE,
    maxPeers: config.maxPeers ?? DEFAULT_MAX_PEERS,
    logger: config.logger,
    clock,
    isPinned: (endpoint) => pinned.has(endpoint),
  });
  const presence = new PresenceTracker(peerNode, { clock });
  const history = new History(peerNode, store, clock, config.logger);
  const direct = new DirectMessages(peerNode, identity, history, store, clock, config.logger);
  for (const endpoint of config.peers ?? []) void pinned.add(endpoint);
  const lan = config.discovery && discover(config, config.discovery, room, peerNode, mesh);
  const reach: ReachLinks | undefined =
    config.reach &&
    startReach({
      node: peerNode,
      links,
      degree: mesh.degree,
      listenHost: config.host,
      clock,
      logger: config.logger,
      ...(config.reach.circuitLimits ? { circuitLimits: config.reach.circuitLimits } : {}),
    });
  let closing: Promise<void> | undefined;
  const stopBackground = () => {
    lan?.close();
    reach?.close();
    listener.close();
    pinned.close();
    mesh.stop();
  };
  return {
    node: peerNode,
    mesh,
    presence,
    history,
    direct,
    reach,
    store,
    listen,
    invitationAddresses: () => invitationAddresses(listen),
    connect: async (endpoint) => {
      mesh.allow({ endpoint });
      const outcome = await pinned.add(endpoint);
      if (outcome.status === "connected" || outcome.status === "already-connected")
        mesh.allow({ nodeId: outcome.peer.nodeId });
      return outcome;
    },
    disconnect: (target) => disconnect(peerNode, pinned, mesh, target),
    close(reason = "quit") {
      closing ??= (async () => {
        stopBackground();
        presence.leave(reason);
        await peerNode.close(reason);
        history.close();
      })();
      return closing;
    },
    abort() {
      stopBackground();
      presence.stop();
      peerNode.abort();
      history.close();
    },
  };
}

/**
 * Starts LAN discovery: a same-room peer heard on the LAN is learned by the mesh and
 * dialled at once (the mesh keeps the link, and redials it, from then on).
 */
function discover(
  config: PeerConfig,
  discovery: DiscoveryConfig,
  room: string,
  node: PeerNode,
  mesh: Mesh,
): LanDiscovery {
  return startLanDiscovery({
    room,
    nodeIdHex: node.nodeIdHex,
    port: node.listenPort,
    listenHost: config.host,
    isNeighbour: (nodeIdHex) => node.isNeighbour(nodeIdHex),
    wantsMore: () => node.neighbourCount < Math.max(1, mesh.degree),
    dial(endpoint, nodeIdHex) {
      const entry = mesh.book.learn(endpoint, nodeIdHex, true);
      void node.connect(endpoint).then((outcome) => {
        if (outcome.status === "connected" || outcome.status === "already-connected")
          mesh.book.succeeded(entry, outcome.peer.nodeId);
        else if (outcome.status === "self") mesh.book.markSelf(entry);
        else config.logger.debug(`LAN peer at ${formatEndpoint(endpoint)}: ${outcome.reason}`);
      });
    },
    logger: config.logger,
    ...(discovery.port === undefined ? {} : { discoveryPort: discovery.port }),
  });
}

/** {@link RunningPeer.disconnect}: unpins, tells the mesh, then says BYE. */
function disconnect(
  node: PeerNode,
  pinned: PinnedPeers,
  mesh: Mesh,
  target: DisconnectTarget,
): DisconnectOutcome {
  const nodeIds = new Set<string>();
  let unpinned = false;
  if ("nodeId" in target) {
    nodeIds.add(target.nodeId);
  } else {
    const pin = pinned.unpin(target);
    if (pin) {
      unpinned = true;
      if (pin.nodeId !== undefined) nodeIds.add(pin.nodeId);
      // A dial under way may still bring the link up: it is closed as it comes.
      void pin.dialling?.then((outcome) => {
        if (outcome.status === "connected" || outcome.status === "already-connected") {
          mesh.drop({ nodeId: outcome.peer.nodeId });
          node.disconnect(outcome.peer.nodeId, { kind: "bye", reason: DISCONNECT_REASON });
        }
      });
    }
    const where = formatEndpoint(target);
    for (const n of node.neighbours())
      if (formatEndpoint(n.address) === where) nodeIds.add(n.nodeId);
  }
  // The same neighbour pinned under another name (`localhost:9000` and `127.0.0.1:9000`).
  for (const nodeId of nodeIds) {
    for (const endpoint of pinned.linkedTo(nodeId)) {
      pinned.unpin(endpoint);
      unpinned = true;
    }
  }
  const peers = node.neighbours().filter((n) => nodeIds.has(n.nodeId));
  if (!("nodeId" in target) && (unpinned || peers.length > 0)) mesh.drop({ endpoint: target });
  for (const peer of peers) {
    mesh.drop({ endpoint: peer.address, nodeId: peer.nodeId });
    node.disconnect(peer.nodeId, { kind: "bye", reason: DISCONNECT_REASON });
  }
  return peers.length > 0
    ? { status: "disconnected", peers, unpinned }
    : { status: "not-connected", unpinned };
}

/** Opens the history `config` asks for: a file, or memory. */
function openStore(config: PeerConfig, nodeId: Uint8Array): HistoryStore {
  const h = config.history ?? {};
  const keepMs = h.keepMs ?? DEFAULT_KEEP_DAYS * DAY_MS;
  return HistoryStore.open(h.path ?? ":memory:", {
    keepMs,
    maxMessages: h.maxMessages ?? DEFAULT_MAX_MESSAGES,
    self: nodeId,
    onProblem: (message) => config.logger.warn(message),
  });
}

/** The nick a peer gets when none is given: `HOST:PORT`, as the original program named senders. */
export function defaultNick(listen: Endpoint): string {
  const bytes = truncateUtf8(formatEndpoint(listen), MAX_NICK_BYTES);
  return new TextDecoder().decode(bytes);
}
