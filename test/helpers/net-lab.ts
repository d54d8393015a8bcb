/**
 * Networks of Linux network namespaces for tests that need real routing: LANs on
 * bridges, home routers that NAT and firewall, hosts behind them. Each host is a
 * namespace; processes run in it through `ip netns exec`.
 *
 * Nothing is made in the root namespace: every bridge lives in a namespace of its own and
 * every veth pair is created inside a lab namespace with its peer placed straight into
 * another, so deleting the lab's namespaces removes all it built. Namespace names are
 * `pc<pid>-<n>-<name>`: unique per process, and a later run can tell the leftovers of a
 * process that died (its pid is gone) and sweep them.
 *
 * Needs root, `ip` (iproute2) and `iptables`. {@link NetLab.create} throws when they are
 * missing: a test that needs the lab fails loudly rather than passing unchecked.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliProcess, fromSource } from "./cli.ts";

/** How a router maps private source ports to its public address. */
export type NatKind =
  /** Linux MASQUERADE: keeps the source port when free (endpoint-independent in practice). */
  | "port-preserving"
  /** MASQUERADE `--random-fully`: a fresh random public port for every connection. */
  | "symmetric";

/** A host of the lab: one namespace. */
export interface LabHost {
  /** The name the test gave it ("A", "P"). */
  readonly name: string;
  /** The namespace, for `ip netns exec`. */
  readonly ns: string;
  /** Its address on the first LAN it joined. */
  readonly address: string;
  /** Address on each LAN it is on, by LAN name. */
  readonly addresses: ReadonlyMap<string, string>;
  /** Its interface on each LAN it is on (`eth0`, `eth1`, …), by LAN name. */
  readonly interfaces: ReadonlyMap<string, string>;
}

/** A LAN: a bridge in a namespace of its own, and the hosts on it. */
export interface LabLan {
  readonly name: string;
  /** The bridge's namespace. */
  readonly ns: string;
  /** CIDR, e.g. `10.1.0.0/24`. */
  readonly subnet: string;
  readonly hosts: ReadonlyMap<string, LabHost>;
}

/** A host on a LAN: a name, given the next free address, or a name and an address. */
export type HostSpec = string | { readonly name: string; readonly address: string };

/** Options for {@link NetLab.lan}. */
export interface LanOptions {
  /** A router address on this LAN: hosts route everything (multicast too) through it. */
  readonly gateway?: string;
}

/** One home network in {@link NetLab.natTopology}. */
export interface NatSiteSpec {
  /** Router host name ("RA"). */
  readonly router: string;
  /** The hosts behind it ("A"). */
  readonly hosts: readonly string[];
  readonly kind?: NatKind;
}

/** What {@link NetLab.natTopology} builds. */
export interface NatTopology {
  readonly internet: LabLan;
  /** Public hosts by name (P first: 10.77.0.1). */
  readonly publicHosts: ReadonlyMap<string, LabHost>;
  readonly sites: readonly NatSite[];
}

/** A router and the private LAN behind it. */
export interface NatSite {
  readonly router: LabHost;
  /** The router's public address: what the internet sees for every host behind it. */
  readonly publicAddress: string;
  readonly lan: LabLan;
  readonly hosts: ReadonlyMap<string, LabHost>;
  readonly kind: NatKind;
}

/** What {@link NetLab.exec} returns. */
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Prefix of every namespace a lab makes; followed by the pid of the process that made it. */
const PREFIX = "pc";
const OWNED = /^pc(\d+)-/;
/** The internet of {@link NetLab.natTopology}. */
const INTERNET_SUBNET = "10.77.0.0/24";

let nextId = 0;
/** Namespaces made and not yet deleted, for the exit hook. */
const liveNamespaces = new Set<string>();

/** True when this process can build labs: root, with `ip` and `iptables` on the PATH. */
export function hasNetLab(): boolean {
  return process.getuid?.() === 0 && !!Bun.which("ip") && !!Bun.which("iptables");
}

/** A set of namespaces and the processes in them; dispose it to remove them all. */
export class NetLab implements AsyncDisposable {
  private readonly namespaces: string[] = [];
  private readonly hostsByName = new Map<string, MutableHost>();
  private readonly processes: CliProcess[] = [];
  private destroyed = false;
  /** Identity files of {@link chatPeer}'s peers. */
  private keys: string | undefined;
  private identities = 0;

  private constructor() {}

  /**
   * A new, empty lab. Sweeps first what crashed runs left behind. Throws, saying what is
   * missing, when the machine cannot run one ({@link hasNetLab}).
   */
  static async create(): Promise<NetLab> {
    if (!hasNetLab()) {
      throw new Error(
        "the network lab needs root and the `ip` (iproute2) and `iptables` commands: run the tests as root with both installed (.ci/run installs them)",
      );
    }
    await sweepLeftovers();
    return new NetLab();
  }

  /** A host made earlier, by name. Throws if there is none. */
  host(name: string): LabHost {
    const host = this.hostsByName.get(name);
    if (!host) throw new Error(`no host ${name} in this lab`);
    return host;
  }

  /**
   * A LAN: a bridge, and each host (made now if new, with `lo` up) on it through a veth
   * named `eth<k>`, given an address in `subnet` (the next free one from `.1`, skipping
   * addresses given explicitly). Hosts route multicast (224.0.0.0/4) onto the LAN; with
   * `gateway` their default route goes through it instead.
   */
  async lan(
    name: string,
    hosts: readonly HostSpec[],
    subnet: string,
    options: LanOptions = {},
  ): Promise<LabLan> {
    const { base, prefix } = parseSubnet(subnet);
    const ns = await this.namespace(name);
    await run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"]);
    // No snooping: without an IGMP querier on the LAN a snooping bridge may stop
    // forwarding multicast, and discovery must see every beacon.
    await run(["ip", "-n", ns, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"]);
    await run(["ip", "-n", ns, "link", "set", "br0", "up"]);
    const taken = new Set(
      hosts.flatMap((h) => (typeof h === "string" ? [] : [ipToNumber(h.address)])),
    );
    let next = base + 1;
    const members = new Map<string, LabHost>();
    for (const [index, spec] of hosts.entries()) {
      let address: string;
      if (typeof spec === "string") {
        while (taken.has(next)) next++;
        address = numberToIp(next);
        taken.add(next);
      } else {
        address = spec.address;
      }
      const hostName = typeof spec === "string" ? spec : spec.name;
      const host = await this.ensureHost(hostName);
      const iface = `eth${host.interfaces.size}`;
      const port = `p${index}`;
      await run([
        "ip",
        "-n",
        ns,
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        iface,
        "netns",
        host.ns,
      ]);
      await run(["ip", "-n", ns, "link", "set", port, "master", "br0", "up"]);
      await run(["ip", "-n", host.ns, "addr", "add", `${address}/${prefix}`, "dev", iface]);
      await run(["ip", "-n", host.ns, "link", "set", iface, "up"]);
      if (options.gateway && address !== options.gateway) {
        await run(["ip", "-n", host.ns, "route", "add", "default", "via", options.gateway]);
      } else if (!options.gateway && !host.multicastRoute) {
        // Without any route to 224.0.0.0/4 a multicast send fails with ENETUNREACH.
        await run(["ip", "-n", host.ns, "route", "add", "224.0.0.0/4", "dev", iface]);
        host.multicastRoute = true;
      }
      host.addresses.set(name, address);
      host.interfaces.set(name, iface);
      if (!host.address) host.address = address;
      members.set(hostName, host as LabHost);
    }
    return { name, ns, subnet, hosts: members };
  }

  /**
   * The internet and home networks behind NAT routers:
   *
   * - the internet, `10.77.0.0/24`: public hosts (`P` = 10.77.0.1 by default, more from
   *   10.77.0.10) and each router's public side (10.77.0.2, .3, …);
   * - site `i` (from 1): a LAN `192.168.i.0/24` with the router at `.1` and its hosts from
   *   `.2`, default route through the router.
   *
   * Each router is a home router: forwarding on, MASQUERADE out of its public side
   * (`--random-fully` when symmetric), and from the internet only replies get in. The
   * rest is dropped, not rejected, on the way through and to the router itself: an
   * unsolicited SYN goes unanswered, as at home. Defaults: sites RA (host A) and RB
   * (host B), port-preserving.
   */
  async natTopology(
    options: {
      readonly kind?: NatKind;
      readonly sites?: readonly NatSiteSpec[];
      readonly publicHosts?: readonly string[];
    } = {},
  ): Promise<NatTopology> {
    const specs = options.sites ?? [
      { router: "RA", hosts: ["A"] },
      { router: "RB", hosts: ["B"] },
    ];
    const publicNames = options.publicHosts ?? ["P"];
    const publicSpecs: HostSpec[] = publicNames.map((name, i) => ({
      name,
      address: `10.77.0.${i === 0 ? 1 : 9 + i}`,
    }));
    const routerSpecs: HostSpec[] = specs.map((s, i) => ({
      name: s.router,
      address: `10.77.0.${2 + i}`,
    }));
    if (specs.length > 7 || publicNames.length > 200) throw new Error("too many sites or hosts");
    const internet = await this.lan("inet", [...publicSpecs, ...routerSpecs], INTERNET_SUBNET);
    const sites: NatSite[] = [];
    for (const [i, spec] of specs.entries()) {
      const kind = spec.kind ?? options.kind ?? "port-preserving";
      const lanAddress = `192.168.${i + 1}.1`;
      const lan = await this.lan(
        `lan${i + 1}`,
        [{ name: spec.router, address: lanAddress }, ...spec.hosts],
        `192.168.${i + 1}.0/24`,
        { gateway: lanAddress },
      );
      const router = this.host(spec.router);
      await this.homeRouter(
        router,
        router.interfaces.get("inet") as string,
        router.interfaces.get(lan.name) as string,
        kind,
      );
      const hosts = new Map([...lan.hosts].filter(([name]) => name !== spec.router));
      sites.push({
        router,
        publicAddress: router.addresses.get("inet") as string,
        lan,
        hosts,
        kind,
      });
    }
    const publicHosts = new Map(publicNames.map((name) => [name, this.host(name)]));
    return { internet, publicHosts, sites };
  }

  /**
   * A stateful host firewall on `host`, as most desktop systems have: replies and
   * loopback get in, anything unsolicited is dropped (not rejected).
   */
  async firewall(host: string): Promise<void> {
    const ns = this.host(host).ns;
    const ipt = (...rule: string[]) => runIn(ns, ["iptables", "-w", ...rule], true);
    await ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT");
    await ipt("-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT");
    await ipt("-P", "INPUT", "DROP");
  }

  /**
   * Starts `argv` in `host`'s namespace with the hermetic environment of every test
   * process (testEnv), stdin piped, stdout and stderr collected line by line. The lab
   * kills it when destroyed.
   */
  spawn(host: string, argv: readonly string[], options: { env?: Record<string, string> } = {}) {
    const ns = this.host(host).ns;
    const proc = new CliProcess((args) => ["ip", "netns", "exec", ns, ...args], [...argv], options);
    this.processes.push(proc);
    return proc;
  }

  /**
   * A chat peer from source, in `host`'s namespace: {@link peer} with `--ephemeral` and an
   * identity file of its own (two peers sharing one would make the second temporary),
   * kept in a directory the lab removes.
   */
  chatPeer(host: string, args: readonly string[], options: { env?: Record<string, string> } = {}) {
    this.keys ??= mkdtempSync(join(tmpdir(), "peerchat-lab-keys-"));
    const identity = join(this.keys, `identity-${++this.identities}`);
    return this.peer(host, [...args, "--ephemeral", "--identity", identity], options);
  }

  /** A peerchat from source, in `host`'s namespace: {@link spawn} of `src/bin.ts args`. */
  peer(host: string, args: readonly string[], options: { env?: Record<string, string> } = {}) {
    return this.spawn(host, fromSource([...args]), options);
  }

  /** Runs `argv` in `host`'s namespace to the end. */
  async exec(host: string, argv: readonly string[]): Promise<ExecResult> {
    return runIn(this.host(host).ns, argv);
  }

  /** Kills what the lab started and deletes its namespaces (and so their interfaces). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const proc of this.processes) proc.signal("SIGKILL");
    await Promise.all(this.processes.map((p) => p.exited));
    await Promise.all(this.namespaces.map((ns) => removeNamespace(ns)));
    if (this.keys) rmSync(this.keys, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }

  private async namespace(name: string): Promise<string> {
    if (this.destroyed) throw new Error("this lab was destroyed");
    const ns = `${PREFIX}${process.pid}-${nextId++}-${name}`;
    await run(["ip", "netns", "add", ns]);
    this.namespaces.push(ns);
    liveNamespaces.add(ns);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return ns;
  }

  private async ensureHost(name: string): Promise<MutableHost> {
    const known = this.hostsByName.get(name);
    if (known) return known;
    const host: MutableHost = {
      name,
      ns: await this.namespace(name),
      address: "",
      addresses: new Map(),
      interfaces: new Map(),
      multicastRoute: false,
    };
    this.hostsByName.set(name, host);
    return host;
  }

  private async homeRouter(router: LabHost, wan: string, lan: string, kind: NatKind) {
    const sh = (script: string) => runIn(router.ns, ["sh", "-c", script], true);
    await sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
    const ipt = (...rule: string[]) => runIn(router.ns, ["iptables", "-w", ...rule], true);
    await ipt(
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-o",
      wan,
      "-j",
      "MASQUERADE",
      ...(kind === "symmetric" ? ["--random-fully"] : []),
    );
    await ipt("-A", "FORWARD", "-i", lan, "-j", "ACCEPT");
    await ipt(
      "-A",
      "FORWARD",
      "-m",
      "conntrack",
      "--ctstate",
      "ESTABLISHED,RELATED",
      "-j",
      "ACCEPT",
    );
    await ipt("-P", "FORWARD", "DROP");
    // The router's own address too: a SYN to a port nobody forwards is dropped, not
    // answered with a reset (which would end the other side's hole-punch attempt).
    await ipt("-A", "INPUT", "-i", "lo", "-j", "ACCEPT");
    await ipt("-A", "INPUT", "-i", lan, "-j", "ACCEPT");
    await ipt("-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT");
    await ipt("-P", "INPUT", "DROP");
  }
}

interface MutableHost {
  readonly name: string;
  readonly ns: string;
  address: string;
  readonly addresses: Map<string, string>;
  readonly interfaces: Map<string, string>;
  multicastRoute: boolean;
}

async function runIn(ns: string, argv: readonly string[], check = false): Promise<ExecResult> {
  return run(["ip", "netns", "exec", ns, ...argv], check);
}

/** Runs a command to the end; `check` (the default for setup) throws when it fails. */
async function run(argv: readonly string[], check = true): Promise<ExecResult> {
  const proc = Bun.spawn([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (check && code !== 0) {
    throw new Error(`\`${argv.join(" ")}\` failed (${code}): ${stderr.trim()}`);
  }
  return { code, stdout, stderr };
}

/** Kills every process still in `ns` (all started by a lab), then deletes it. */
async function removeNamespace(ns: string): Promise<void> {
  const pids = await run(["ip", "netns", "pids", ns], false);
  for (const pid of pids.stdout.split("\n").map(Number)) {
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
  await run(["ip", "netns", "del", ns], false);
  liveNamespaces.delete(ns);
}

function removeNamespaceSync(ns: string): void {
  const pids = Bun.spawnSync(["ip", "netns", "pids", ns]).stdout.toString();
  for (const pid of pids.split("\n").map(Number)) {
    if (pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
  Bun.spawnSync(["ip", "netns", "del", ns]);
  liveNamespaces.delete(ns);
}

/** Deletes lab namespaces whose making process is gone (a run that crashed). */
async function sweepLeftovers(): Promise<void> {
  const listed = await run(["ip", "netns", "list"], false);
  const stale = listed.stdout
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((ns) => {
      const pid = Number(OWNED.exec(ns)?.[1]);
      return pid > 0 && pid !== process.pid && !alive(pid);
    });
  await Promise.all(stale.map((ns) => removeNamespace(ns)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

// A test that forgot to dispose its lab, or a run cut short: remove what is left at exit.
process.once("exit", () => {
  for (const ns of [...liveNamespaces]) removeNamespaceSync(ns);
});

function parseSubnet(subnet: string): { base: number; prefix: number } {
  const [address, bits] = subnet.split("/");
  const prefix = Number(bits);
  if (!address || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw new Error(`bad subnet ${subnet}`);
  }
  return { base: ipToNumber(address), prefix };
}

function ipToNumber(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`bad IPv4 address ${ip}`);
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}
