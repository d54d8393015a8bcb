/**
 * IP literal checks, for PEERS entries: only addresses, never names a receiver would
 * have to resolve. (Written here rather than taken from `node:net`, which costs a
 * peer some 6 MB of resident memory to load for this one function.)
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** True for a dotted-quad IPv4 address (no leading zeros). */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** True for an IPv6 address in any RFC 4291 text form (`::1`, `fe80::1`, `::ffff:1.2.3.4`). */
export function isIPv6(text: string): boolean {
  if (text.length < 2 || text.length > 45) return false;
  let rest = text;
  let groups = 8;
  // An embedded IPv4 address takes the place of the last two groups.
  const lastColon = rest.lastIndexOf(":");
  if (rest.includes(".")) {
    if (!isIPv4(rest.slice(lastColon + 1))) return false;
    rest = rest.slice(0, lastColon + 1);
    rest = rest.endsWith("::") ? rest : rest.slice(0, -1);
    groups = 6;
  }
  const halves = rest.split("::");
  if (halves.length > 2) return false;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0] as string);
  const tail = halves.length === 2 ? parse(halves[1] as string) : [];
  if (![...head, ...tail].every((g) => HEXTET.test(g))) return false;
  return halves.length === 2 ? head.length + tail.length < groups : head.length === groups;
}

/** True for an IPv4 or IPv6 literal (IPv6 without brackets). */
export function isIP(text: string): boolean {
  return isIPv4(text) || isIPv6(text);
}

/**
 * The group a connection's source address counts in when handshake places are shared
 * between sources (docs/PROTOCOL.md §7): an IPv4 address is its own group (an
 * IPv4-mapped IPv6 address counts as its IPv4 address); an IPv6 address counts by its
 * /64, the block one subscriber is commonly given, so that one host does not get a
 * share per address of its block. Anything else (a test's name for a stream) is its own.
 */
export function sourceGroup(host: string): string {
  const bare = host.split("%")[0] as string; // a zone (fe80::1%eth0) is not part of it
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return host;
  const mapped = /^::ffff:([\d.]+)$/i.exec(bare)?.[1];
  if (mapped !== undefined) return mapped;
  return `${ipv6Groups(bare).slice(0, 4).join(":")}::/64`;
}

/** The eight groups of a valid IPv6 literal, in lower-case hex without leading zeros. */
function ipv6Groups(text: string): string[] {
  const halves = text.split("::");
  const parse = (part: string | undefined) => (part ? part.split(":") : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  // An embedded IPv4 address stands for two groups; its value does not matter here.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const zeros = halves.length === 2 ? 8 - width(head) - width(tail) : 0;
  const groups = [...head, ...Array<string>(zeros).fill("0"), ...tail];
  return groups.map((g) => (g.includes(".") ? g : Number.parseInt(g, 16).toString(16)));
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`. */
export function unmapIPv4(host: string): string {
  return host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host;
}
