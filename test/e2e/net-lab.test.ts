import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import type { CliProcess } from "../helpers/cli.ts";
import { NetLab } from "../helpers/net-lab.ts";

// The lab itself (test/helpers/net-lab.ts): what the reach tests build on must behave
// like the networks it stands for. Never skipped: without root, `ip` and `iptables`
// NetLab.create() throws and these fail.

const PROBE = join(import.meta.dir, "..", "helpers", "net-probe.ts");

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

async function newLab(): Promise<NetLab> {
  lab = await NetLab.create();
  return lab;
}

function probe(host: string, ...args: Array<string | number>): CliProcess {
  return (lab as NetLab).spawn(host, [process.execPath, PROBE, ...args.map(String)]);
}

/** The value under `key` in the first stdout line that has it. */
async function said<T>(proc: CliProcess, key: string, timeoutMs = 10_000): Promise<T> {
  const line = await proc.waitForLine(`{"${key}":`, timeoutMs);
  return (JSON.parse(line) as Record<string, T>)[key] as T;
}

test("lab - hosts on one LAN reach each other over TCP and multicast", async () => {
  const net = await newLab();
  const lan = await net.lan("lan", ["H1", "H2", "H3"], "10.1.0.0/24");
  expect([...lan.hosts.values()].map((h) => h.address)).toEqual([
    "10.1.0.1",
    "10.1.0.2",
    "10.1.0.3",
  ]);
  const server = probe("H1", "serve", "0.0.0.0", 7000);
  await said(server, "listening");
  const listener = probe("H3", "mcast-listen", "239.255.70.77", 9077);
  await said(listener, "joined");

  const client = probe("H2", "connect", "10.1.0.1", 7000);
  expect(await said<{ localPort: number }>(client, "connected")).toHaveProperty("localPort");
  expect(await said<{ host: string }>(server, "accepted")).toMatchObject({ host: "10.1.0.2" });

  const sender = probe("H2", "mcast-send", "239.255.70.77", 9077, "beacon");
  expect(await said(sender, "sent")).toBe(true);
  expect(await said(listener, "heard")).toBe("beacon");
}, 30_000);

test("lab - behind port-preserving NAT, P sees the router's address and A's own port", async () => {
  const net = await newLab();
  const topology = await net.natTopology({ kind: "port-preserving" });
  expect(topology.sites.map((s) => s.publicAddress)).toEqual(["10.77.0.2", "10.77.0.3"]);
  expect(net.host("P").address).toBe("10.77.0.1");
  expect(net.host("A").address).toBe("192.168.1.2");
  expect(net.host("B").address).toBe("192.168.2.2");
  const server = probe("P", "serve", "0.0.0.0", 7000);
  await said(server, "listening");

  const a = probe("A", "connect", "10.77.0.1", 7000, 41234);
  expect(await said(a, "connected")).toEqual({ localPort: 41234 });
  expect(await said(server, "accepted")).toEqual({ host: "10.77.0.2", port: 41234 });

  const b = probe("B", "connect", "10.77.0.1", 7000, 42345);
  expect(await said(b, "connected")).toEqual({ localPort: 42345 });
  await server.waitForLine('"10.77.0.3"');
  expect(server.stdout).toContain(JSON.stringify({ accepted: { host: "10.77.0.3", port: 42345 } }));
}, 30_000);

test("lab - behind symmetric NAT, P sees the router's address and another port", async () => {
  const net = await newLab();
  await net.natTopology({ kind: "symmetric" });
  const server = probe("P", "serve", "0.0.0.0", 7000);
  await said(server, "listening");
  const a = probe("A", "connect", "10.77.0.1", 7000, 41234);
  expect(await said(a, "connected")).toEqual({ localPort: 41234 });
  const seen = await said<{ host: string; port: number }>(server, "accepted");
  expect(seen.host).toBe("10.77.0.2");
  expect(seen.port).not.toBe(41234);
}, 30_000);

test("lab - the internet cannot open a connection to a host behind a router: dropped", async () => {
  const net = await newLab();
  await net.natTopology();
  const server = probe("A", "serve", "0.0.0.0", 7000);
  await said(server, "listening");
  // A is up: its own router reaches it.
  expect(await said(probe("RA", "connect", "192.168.1.2", 7000), "connected")).toBeDefined();
  // Straight at the private address, routed through the router as by a neighbour on the
  // ISP's segment: dropped on the way through.
  const route = await net.exec("P", ["ip", "route", "add", "192.168.1.0/24", "via", "10.77.0.2"]);
  expect(route.code).toBe(0);
  // And to the router's public address: no forward, no answer (not even a reset).
  const [toRouter, toHost] = await Promise.all([
    said(probe("P", "connect", "10.77.0.2", 7000, 0, 1500), "error"),
    said(probe("P", "connect", "192.168.1.2", 7000, 0, 1500), "error"),
  ]);
  expect(toRouter).toBe("TIMEOUT");
  expect(toHost).toBe("TIMEOUT");
}, 30_000);

test("lab - destroy removes its namespaces; create sweeps those of a dead process", async () => {
  const exited = Bun.spawn(["true"]);
  await exited.exited;
  const stale = `pc${exited.pid}-0-stale`;
  await Bun.spawn(["ip", "netns", "add", stale]).exited;
  const namespaces = async () =>
    (await new Response(Bun.spawn(["ip", "netns", "list"]).stdout).text())
      .split("\n")
      .map((line) => line.split(" ")[0]);

  const net = await newLab();
  expect(await namespaces()).not.toContain(stale);
  await net.lan("lan", ["X", "Y"], "10.2.0.0/24");
  const mine = net.host("X").ns;
  expect(await namespaces()).toContain(mine);
  const sleeper = net.spawn("Y", ["sleep", "60"]);
  await net.destroy();
  expect(await sleeper.exited).not.toBe(0);
  const left = await namespaces();
  expect(left).not.toContain(mine);
  expect(left.filter((ns) => ns?.startsWith(`pc${process.pid}-`))).toEqual([]);
}, 30_000);
