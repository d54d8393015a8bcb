import { afterEach, describe, expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import type { NetworkInterfaceInfo } from "node:os";
import {
  BEACON_BYTES,
  bucketOf,
  DISCOVERY_GROUP,
  encodeBeacon,
  roomTag,
} from "../../src/discovery/beacon.ts";
import {
  beaconInterfaces,
  broadcastAddress,
  type LanDiscovery,
  startLanDiscovery,
} from "../../src/discovery/lan-beacons.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { fromHex } from "../../src/protocol/hex.ts";
import { roomKey } from "../../src/secure/room.ts";
import { testLogger } from "../helpers/logger.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** A discovery port of this test's own: never 9077, where a user's peer may be listening. */
function freshPort(): number {
  return 20_000 + Math.floor(Math.random() * 40_000);
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

interface TestPeer {
  readonly nodeIdHex: string;
  readonly port: number;
  readonly discovery: LanDiscovery;
  readonly dials: Array<{ endpoint: Endpoint; nodeIdHex: string }>;
  readonly log: ReturnType<typeof testLogger>;
}

let nextNode = 1;

/** A driver for a peer that would listen on `listenHost`:`port` (nothing listens: dials are recorded). */
function peer(
  discoveryPort: number,
  options: { room?: string; listenHost?: string; broadcast?: boolean } = {},
): TestPeer {
  const n = nextNode++;
  const nodeIdHex = n.toString(16).padStart(64, "0");
  const port = 40_000 + n;
  const dials: TestPeer["dials"] = [];
  const log = testLogger();
  const discovery = startLanDiscovery({
    room: options.room ?? "lan test room",
    nodeIdHex,
    port,
    listenHost: options.listenHost ?? "127.0.0.1",
    isNeighbour: () => false,
    wantsMore: () => true,
    dial: (endpoint, id) => dials.push({ endpoint, nodeIdHex: id }),
    logger: log.logger,
    discoveryPort,
    broadcast: options.broadcast,
  });
  open.push(discovery);
  return { nodeIdHex, port, discovery, dials, log };
}

/** True once `a` has dialled `b` (at `host`, if given) at b's port. */
function dialled(a: TestPeer, b: TestPeer, host?: string): boolean {
  return a.dials.some(
    (d) =>
      d.nodeIdHex === b.nodeIdHex &&
      d.endpoint.port === b.port &&
      (host === undefined || d.endpoint.host === host),
  );
}

/** A plain UDP socket that sends to the group on loopback, as anyone on the host could. */
async function sender(): Promise<Socket> {
  const s = createSocket({ type: "udp4" });
  open.push(s);
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  s.setMulticastInterface("127.0.0.1");
  return s;
}

function send(s: Socket, bytes: Uint8Array, port: number, host = DISCOVERY_GROUP): Promise<void> {
  return new Promise((resolve, reject) =>
    s.send(bytes, port, host, (error) => (error ? reject(error) : resolve())),
  );
}

describe("LAN discovery on this host", () => {
  test.each([true, false])(
    "lan - three peers on loopback find and dial each other (broadcast %p)",
    async (broadcast) => {
      const udp = freshPort();
      const peers = [peer(udp, { broadcast }), peer(udp, { broadcast }), peer(udp, { broadcast })];
      await waitFor(
        () => peers.every((a) => peers.every((b) => a === b || dialled(a, b, "127.0.0.1"))),
        3000,
        () => `every peer to dial the others: ${JSON.stringify(peers.map((p) => p.dials))}`,
      );
      for (const p of peers) {
        expect(p.dials.every((d) => d.endpoint.host === "127.0.0.1")).toBe(true);
        // Each beacon may arrive twice (group and broadcast): still one dial per peer.
        expect(p.dials).toHaveLength(2);
        expect(p.discovery.stats.ignored.own).toBeGreaterThan(0); // heard itself, skipped it
        expect(p.log.find("LAN discovery is off")).toEqual([]);
      }
    },
  );

  test("lan - a peer of another room is never dialled and dials nobody", async () => {
    const udp = freshPort();
    const a = peer(udp);
    const b = peer(udp);
    const stranger = peer(udp, { room: "another room" });
    await waitFor(() => dialled(a, b) && dialled(b, a), 3000, "a and b to dial each other");
    await waitFor(
      () =>
        stranger.discovery.stats.ignored["wrong-room"] >= 2 &&
        a.discovery.stats.ignored["wrong-room"] >= 1 &&
        b.discovery.stats.ignored["wrong-room"] >= 1,
      3000,
      "the rooms to hear each other",
    );
    expect(stranger.dials).toEqual([]);
    expect(a.dials.some((d) => d.nodeIdHex === stranger.nodeIdHex)).toBe(false);
    expect(b.dials.some((d) => d.nodeIdHex === stranger.nodeIdHex)).toBe(false);
    expect(stranger.discovery.discovered()).toEqual([]);
  });

  test("lan - garbage on the discovery port is counted and ignored", async () => {
    const udp = freshPort();
    const a = peer(udp);
    await waitFor(() => a.discovery.stats.beaconsSent > 0, 3000, "a to start");
    const s = await sender();
    const tag = roomTag(roomKey("lan test room"), bucketOf(Date.now()));
    const portZero = encodeBeacon({ tag, nodeId: fromHex("77".repeat(32)), port: 0 });
    const garbage: Uint8Array[] = [
      new Uint8Array(0),
      Uint8Array.of(1, 2, 3),
      new TextEncoder().encode("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"),
      new Uint8Array(BEACON_BYTES + 1),
      new Uint8Array(9000).fill(0x50),
      portZero,
    ];
    for (const bytes of garbage) await send(s, bytes, udp);
    const { ignored } = a.discovery.stats;
    await waitFor(
      () => ignored.short >= 2 && ignored.magic >= 1 && ignored["too-big"] >= 2,
      3000,
      () => `the garbage to be counted: ${JSON.stringify(ignored)}`,
    );
    await waitFor(() => ignored["port-zero"] >= 1, 3000, "the port-0 beacon to be counted");
    expect(a.dials).toEqual([]);
    expect(a.discovery.stats.beaconsAccepted).toBe(0);
  });

  test("lan - a forged beacon of the room, sent to the group by anyone, is dialled", async () => {
    const udp = freshPort();
    const a = peer(udp);
    await waitFor(() => a.discovery.stats.beaconsSent > 0, 3000, "a to start");
    const s = await sender();
    const tag = roomTag(roomKey("lan test room"), bucketOf(Date.now()));
    const nodeIdHex = "55".repeat(32);
    await send(s, encodeBeacon({ tag, nodeId: fromHex(nodeIdHex), port: 4321 }), udp);
    await waitFor(() => a.dials.length > 0, 3000, "a to dial");
    expect(a.dials).toEqual([{ endpoint: { host: "127.0.0.1", port: 4321 }, nodeIdHex }]);
  });

  test("lan - a peer listening on every address and one on loopback find each other", async () => {
    const udp = freshPort();
    const wide = peer(udp, { listenHost: "0.0.0.0" });
    const local = peer(udp);
    await waitFor(() => dialled(wide, local, "127.0.0.1"), 3000, "the wide peer to dial");
    await waitFor(() => dialled(local, wide), 3000, "the loopback peer to dial");
  });

  test("lan - a port in use without reuse turns discovery off with one warning", async () => {
    const udp = freshPort();
    const blocker = createSocket({ type: "udp4" });
    open.push(blocker);
    await new Promise<void>((resolve) => blocker.bind(udp, "0.0.0.0", resolve));
    const a = peer(udp);
    await waitFor(() => a.log.find("LAN discovery is off").length > 0, 3000, "a warning");
    expect(a.log.find("LAN discovery is off")).toHaveLength(1);
    expect(a.log.find("LAN discovery is off")[0]?.type).toBe("warn");
    expect(a.discovery.stats.beaconsSent).toBe(0);
    a.discovery.close();
    a.discovery.close();
  });

  test.each(["fe80::1", "peer.example", "10.255.255.254"])(
    "lan - listening on %s: no IPv4 interface to use, discovery is off with one warning",
    (listenHost) => {
      const a = peer(freshPort(), { listenHost });
      expect(a.log.find("LAN discovery is off")).toHaveLength(1);
      expect(a.discovery.stats.beaconsSent).toBe(0);
    },
  );
});

describe("LAN discovery interfaces", () => {
  const info = (address: string, netmask: string, internal: boolean): NetworkInterfaceInfo => ({
    address,
    netmask,
    internal,
    family: "IPv4",
    mac: "00:00:00:00:00:00",
    cidr: null,
  });
  const nets = {
    lo: [
      info("127.0.0.1", "255.0.0.0", true),
      {
        ...info("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        family: "IPv6" as const,
        scopeid: 0,
      },
    ],
    eth0: [info("192.168.1.20", "255.255.255.0", false)],
    wg0: [info("10.8.0.2", "255.255.255.255", false)],
  };
  const lo = { address: "127.0.0.1", broadcast: "127.255.255.255" };
  const eth0 = { address: "192.168.1.20", broadcast: "192.168.1.255" };
  const wg0 = { address: "10.8.0.2", broadcast: undefined };

  test.each([
    ["127.0.0.1", [lo]],
    ["localhost", [lo]],
    ["::1", [lo]],
    ["0.0.0.0", [lo, eth0, wg0]],
    ["::", [lo, eth0, wg0]],
    ["192.168.1.20", [eth0]],
  ])("interfaces - a listener on %s beacons via %j", (host, expected) => {
    expect(beaconInterfaces(host, nets)).toEqual(expected);
  });

  test.each(["192.168.1.21", "fe80::1", "peer.example"])(
    "interfaces - a listener on %s has none, and a reason",
    (host) => {
      expect(typeof beaconInterfaces(host, nets)).toBe("string");
    },
  );

  test.each([
    ["192.168.1.20", "255.255.255.0", "192.168.1.255"],
    ["10.1.2.3", "255.0.0.0", "10.255.255.255"],
    ["172.16.5.4", "255.255.240.0", "172.16.15.255"],
    ["10.0.0.1", "255.255.255.252", "10.0.0.3"],
    ["10.0.0.1", "255.255.255.254", undefined],
    ["10.0.0.1", "255.255.255.255", undefined],
  ])("interfaces - %s/%s broadcasts to %p", (address, netmask, expected) => {
    expect(broadcastAddress(address, netmask)).toBe(expected);
  });
});
