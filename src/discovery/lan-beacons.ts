import { createSocket, type Socket } from "node:dgram";
import { type NetworkInterfaceInfo, networkInterfaces } from "node:os";
import type { ConsolaInstance } from "consola";
import { type Clock, systemClock, type TimerHandle } from "../node/clock.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { isIPv4 } from "../protocol/ip.ts";
import { roomKey } from "../secure/room.ts";
import { DISCOVERY_GROUP, DISCOVERY_PORT } from "./beacon.ts";
import {
  DISCOVERY_TICK_MS,
  type DiscoveredPeer,
  Discovery,
  type DiscoveryAction,
  type DiscoveryEvent,
  type DiscoveryStats,
} from "./discovery.ts";

/** Multicast hops: one, the LAN itself. Routers never forward a beacon. */
export const BEACON_TTL = 1;

/** A round of sends not done after this long is abandoned (a callback that never came). */
const SEND_ROUND_TIMEOUT_MS = 5000;

/** What {@link startLanDiscovery} needs. */
export interface LanDiscoveryOptions {
  /** The room name (a secret: only the tags derived from its key go out). */
  readonly room: string;
  /** This node's id, lower-case hex. */
  readonly nodeIdHex: string;
  /** TCP port this node listens on (the real one, not 0). */
  readonly port: number;
  /** Address the TCP listener is bound to: picks the interfaces beacons use. */
  readonly listenHost: string;
  readonly isNeighbour: (nodeIdHex: string) => boolean;
  /** True while the node has fewer neighbours than its degree. */
  readonly wantsMore: () => boolean;
  /** Dials a peer heard on the LAN. */
  readonly dial: (endpoint: Endpoint, nodeIdHex: string) => void;
  readonly logger: ConsolaInstance;
  /** UDP port of beacons; default {@link DISCOVERY_PORT} (tests pick their own). */
  readonly discoveryPort?: number;
  /** Multicast group; default {@link DISCOVERY_GROUP}. */
  readonly group?: string;
  /** Also send each beacon to each interface's broadcast address; default true. */
  readonly broadcast?: boolean;
  readonly clock?: Clock;
}

/** A running LAN discovery. */
export interface LanDiscovery {
  /** Stops sending and listening. Idempotent. */
  close(): void;
  /** Counters of the pure part (beacons sent, accepted, ignored by reason, dials). */
  readonly stats: DiscoveryStats;
  /** Node ids heard, least recently heard first. */
  discovered(): DiscoveredPeer[];
}

/** An IPv4 interface address beacons are sent from and received on. */
export interface BeaconInterface {
  /** The interface's address: `setMulticastInterface` and `addMembership` take it. */
  readonly address: string;
  /** Its subnet broadcast address; undefined for /31 and /32 (point to point). */
  readonly broadcast: string | undefined;
}

/**
 * The interfaces beacons should use for a listener on `listenHost`, or why there are
 * none. The source address of a beacon is what peers dial, so it must reach the listener:
 *  - loopback (`127.x`, `localhost`, `::1`): the loopback interfaces only;
 *  - any address (`0.0.0.0`, `::`): every IPv4 interface, loopback too (so peers on this
 *    host that listen on loopback find it, and a host with no network still works);
 *  - one IPv4 address: the interface holding it;
 *  - anything else (IPv6, a name): none, discovery is IPv4.
 */
export function beaconInterfaces(
  listenHost: string,
  nets: NodeJS.Dict<NetworkInterfaceInfo[]>,
): BeaconInterface[] | string {
  const v4 = Object.values(nets)
    .flatMap((infos) => infos ?? [])
    .filter((i) => (i.family as string | number) === "IPv4" || (i.family as unknown) === 4);
  const host = listenHost.toLowerCase();
  let chosen: NetworkInterfaceInfo[];
  if (host === "localhost" || host === "::1" || (isIPv4(host) && host.startsWith("127."))) {
    chosen = v4.filter((i) => i.internal);
  } else if (host === "0.0.0.0" || host === "::" || host === "") {
    chosen = v4;
  } else if (isIPv4(host)) {
    chosen = v4.filter((i) => i.address === host);
  } else {
    return `the listen address ${listenHost} is not IPv4`;
  }
  if (chosen.length === 0) return `no IPv4 interface for the listen address ${listenHost}`;
  const seen = new Set<string>();
  return chosen
    .filter((i) => !seen.has(i.address) && seen.add(i.address))
    .map((i) => ({ address: i.address, broadcast: broadcastAddress(i.address, i.netmask) }));
}

/** `address | ~netmask`, or undefined when the prefix leaves no room for one. */
export function broadcastAddress(address: string, netmask: string): string | undefined {
  if (!isIPv4(address) || !isIPv4(netmask)) return undefined;
  const a = address.split(".").map(Number);
  const m = netmask.split(".").map(Number);
  const hostBits = m.reduce((n, octet) => n + 8 - popcount(octet), 0);
  if (hostBits < 2) return undefined;
  return a.map((octet, i) => (octet | (~m[i]! & 0xff)) & 0xff).join(".");
}

function popcount(octet: number): number {
  let n = 0;
  for (let v = octet; v > 0; v >>= 1) n += v & 1;
  return n;
}

/**
 * Starts LAN discovery: a UDP socket on the discovery port (shared, `reuseAddr`, with
 * every other peer on this host, all of which receive each multicast beacon), joined to
 * the group on the interfaces {@link beaconInterfaces} picks, sending this node's beacons
 * there and dialling same-room peers it hears, as {@link Discovery} decides.
 *
 * Throws only on a bug (a node id that is not 64 hex digits, a port that is not a u16).
 * Otherwise it never crashes the peer: if the port cannot be bound or there is no
 * interface, it logs one warning and does nothing. Socket errors are logged at debug.
 * The interfaces are looked at again before each beacon, so one that comes up later
 * (a laptop joining a network) is used from then on.
 */
export function startLanDiscovery(options: LanDiscoveryOptions): LanDiscovery {
  const log = options.logger;
  const clock = options.clock ?? systemClock;
  const udpPort = options.discoveryPort ?? DISCOVERY_PORT;
  const group = options.group ?? DISCOVERY_GROUP;
  const useBroadcast = options.broadcast ?? true;
  const discovery = new Discovery({
    nodeIdHex: options.nodeIdHex,
    port: options.port,
    roomKey: roomKey(options.room),
    isNeighbour: options.isNeighbour,
    wantsMore: options.wantsMore,
  });
  const joined = new Map<string, BeaconInterface>();
  let socket: Socket | undefined;
  let bound = false;
  let closed = false;
  let timer: TimerHandle | undefined;
  /** The round of sends under way: one at a time, see `send`. */
  let round = 0;
  let sendingSince: number | undefined;
  let queued: Uint8Array | undefined;

  const running: LanDiscovery = {
    close() {
      if (closed) return;
      closed = true;
      clock.clearTimeout(timer);
      try {
        socket?.close();
      } catch (error) {
        log.debug("LAN discovery: closing the socket:", error);
      }
    },
    stats: discovery.stats,
    discovered: () => discovery.discovered(),
  };

  const off = (why: string) => {
    log.warn(`LAN discovery is off: ${why}`);
    running.close();
  };

  const first = beaconInterfaces(options.listenHost, networkInterfaces());
  if (typeof first === "string") {
    off(first);
    return running;
  }

  const handle = (event: DiscoveryEvent) => {
    if (closed) return;
    let actions: DiscoveryAction[];
    try {
      actions = discovery.handle(event, clock.now());
    } catch (error) {
      // A bug (or a throwing callback): discovery is a convenience, the peer goes on.
      log.warn("LAN discovery failed to handle an event:", error);
      return;
    }
    for (const action of actions) {
      if (action.type === "send-beacon") send(action.bytes);
      else {
        log.debug(
          `LAN discovery: ${action.nodeIdHex.slice(0, 8)} is at ${formatEndpoint(action.endpoint)}, dialling`,
        );
        try {
          options.dial(action.endpoint, action.nodeIdHex);
        } catch (error) {
          log.warn("LAN discovery: dial failed:", error);
        }
      }
    }
  };

  const join = (interfaces: readonly BeaconInterface[]) => {
    const wanted = new Set(interfaces.map((i) => i.address));
    for (const [address] of joined) {
      if (wanted.has(address)) continue;
      joined.delete(address);
      try {
        socket?.dropMembership(group, address);
      } catch {
        // The interface went away, and its membership with it.
      }
    }
    for (const iface of interfaces) {
      if (joined.has(iface.address)) continue;
      try {
        socket?.addMembership(group, iface.address);
        joined.set(iface.address, iface);
      } catch (error) {
        log.debug(`LAN discovery: cannot join ${group} on ${iface.address}:`, error);
      }
    }
  };

  // Sends one at a time, chained through the callbacks: send() resolves its address on a
  // later tick, so a setMulticastInterface() made before the next send would apply to
  // both (measured: two beacons "via lo" and "via eth0" both left by eth0).
  const send = (bytes: Uint8Array) => {
    const now = clock.now();
    if (sendingSince !== undefined && now - sendingSince < SEND_ROUND_TIMEOUT_MS) {
      queued = bytes;
      return;
    }
    const current = beaconInterfaces(options.listenHost, networkInterfaces());
    if (typeof current !== "string") join(current);
    const targets: Array<{ via?: string; to: string }> = [];
    for (const iface of joined.values()) {
      targets.push({ via: iface.address, to: group });
      if (useBroadcast && iface.broadcast !== undefined) targets.push({ to: iface.broadcast });
    }
    sendingSince = now;
    const mine = ++round;
    let next = 0;
    const step = (error?: Error | null) => {
      if (error) log.debug("LAN discovery: send failed:", error);
      if (closed || socket === undefined || mine !== round) return;
      const target = targets[next++];
      if (target === undefined) {
        sendingSince = undefined;
        const again = queued;
        queued = undefined;
        if (again !== undefined) send(again);
        return;
      }
      try {
        if (target.via !== undefined) socket.setMulticastInterface(target.via);
        socket.send(bytes, udpPort, target.to, step);
      } catch (err) {
        step(err as Error);
      }
    };
    step();
  };

  const tick = () => {
    handle({ type: "tick" });
    if (!closed) timer = clock.setTimeout(tick, DISCOVERY_TICK_MS);
  };

  try {
    const s = createSocket({ type: "udp4", reuseAddr: true });
    socket = s;
    s.on("error", (error) => {
      if (closed) return;
      if (!bound)
        off(`cannot use UDP port ${udpPort} (${(error as { code?: string }).code ?? error})`);
      else log.debug("LAN discovery: socket error:", error);
    });
    s.on("message", (bytes, from) => {
      handle({ type: "beacon", host: from.address, bytes });
    });
    s.bind(udpPort, "0.0.0.0", () => {
      if (closed) return;
      bound = true;
      for (const set of [
        () => s.setMulticastTTL(BEACON_TTL),
        () => s.setMulticastLoopback(true),
        () => s.setBroadcast(useBroadcast),
      ]) {
        try {
          set();
        } catch (error) {
          log.debug("LAN discovery: socket option:", error);
        }
      }
      join(first);
      if (joined.size === 0) {
        off(`cannot join the multicast group on ${first.map((i) => i.address).join(", ")}`);
        return;
      }
      log.debug(
        `LAN discovery on UDP ${udpPort}, group ${group}, via ${[...joined.keys()].join(", ")}`,
      );
      handle({ type: "start" });
      timer = clock.setTimeout(tick, DISCOVERY_TICK_MS);
    });
  } catch (error) {
    off(`cannot open a UDP socket (${error})`);
  }
  return running;
}
