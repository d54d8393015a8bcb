import { type NetworkInterfaceInfo, networkInterfaces } from "node:os";
import type { Endpoint } from "../protocol/endpoint.ts";
import { MAX_TICKET_ADDRESSES } from "./ticket.ts";

/** Listen hosts that mean "every interface": no one can dial them as written. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]", "::0", "0:0:0:0:0:0:0:0"]);

/**
 * Where others can dial a peer that listens on `listen`: the listen address itself, or,
 * for a wildcard listen (`0.0.0.0`, `::`), the IPv4 address of each interface that is up
 * and not loopback, with the listen port. Loopback only when there is nothing else
 * (a machine with no network still gets a ticket that works on itself). At most
 * {@link MAX_TICKET_ADDRESSES}, each once.
 *
 * @param interfaces the machine's interfaces; `os.networkInterfaces()` unless a test says
 */
export function invitationAddresses(
  listen: Endpoint,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): Endpoint[] {
  if (!WILDCARD_HOSTS.has(listen.host)) return [{ host: listen.host, port: listen.port }];
  const external: string[] = [];
  const loopback: string[] = [];
  for (const entries of Object.values(interfaces)) {
    for (const entry of entries ?? []) {
      if (entry.family !== "IPv4") continue;
      const list = entry.internal ? loopback : external;
      if (!list.includes(entry.address)) list.push(entry.address);
    }
  }
  const hosts = external.length > 0 ? external : loopback.length > 0 ? loopback : ["127.0.0.1"];
  return hosts.slice(0, MAX_TICKET_ADDRESSES).map((host) => ({ host, port: listen.port }));
}

/** True if every address is loopback: a ticket of them works on this machine only. */
export function onlyLoopback(addresses: readonly Endpoint[]): boolean {
  return addresses.every(
    (a) => a.host === "localhost" || a.host === "::1" || a.host.startsWith("127."),
  );
}
