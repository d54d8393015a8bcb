/**
 * What this peer learns of its own reach (REACH frames, src/protocol/reach.ts). Pure: the
 * driver (reach-driver.ts) feeds it the node's events and the frames that arrive, with
 * the time, and performs the sends and dials it returns.
 *
 * - Observed addresses: right after a link comes up, each end tells the other the remote
 *   address of the socket as it sees it (OBSERVED). The IPs we are seen at are the ones
 *   a hole punch predicts (punch-coordinator.ts).
 * - NAT behaviour: on a link we dialled, the port the neighbour saw is the source port
 *   our NAT gave the connection; equal to our socket's own port, the NAT preserves ports
 *   and a punch has a chance; different, it picks them (symmetric, or port-changing),
 *   and a predicted address is likely wrong.
 * - Reachability: once a neighbour is up, up to two of them (outbound links first: they
 *   never dialled us, so they do not already know our port is open) are asked to dial
 *   our listen port back at the IP they see us from (DIALBACK). Any success: "public";
 *   every answer a failure: "private". Asked again every {@link REACH_RECHECK_MS} and
 *   when we are seen at a new IP.
 * - Answering a DIALBACK: we dial only the IP the asker's link comes from, never an
 *   address it names, so a peer cannot turn us on a third party; at most once per
 *   neighbour per {@link DIALBACK_EVERY_MS}, {@link MAX_DIALBACKS_IN_FLIGHT} at once, and
 *   never over a relayed link, whose remote IP is the relay's.
 */

import type { Direction, Endpoint } from "../protocol/endpoint.ts";
import { isIP, isIPv4, unmapIPv4 } from "../protocol/ip.ts";
import {
  encodeReachDialBack,
  encodeReachDialBackResult,
  encodeReachObserved,
  type ReachMessage,
  ReachOp,
} from "../protocol/reach.ts";

/** Reachability is checked again this often. */
export const REACH_RECHECK_MS = 10 * 60_000;

/** A new observed IP starts a check, but not sooner than this after the last one. */
export const REACH_MIN_RECHECK_MS = 60_000;

/** Neighbours asked to dial us back in one check. */
export const DIALBACK_ASKS = 2;

/** At most this many asks in one check, counting those that went unanswered. */
export const MAX_DIALBACK_ASKS_PER_CHECK = 4;

/** An ask not answered in this long counts as unanswered; another neighbour may be asked. */
export const DIALBACK_ANSWER_TIMEOUT_MS = 10_000;

/** The dial of a dial-back gives up after this long. */
export const DIALBACK_DIAL_TIMEOUT_MS = 3_000;

/** We dial back for one neighbour at most once in this long. */
export const DIALBACK_EVERY_MS = 30_000;

/** Dial-backs of ours in flight at once, at most. */
export const MAX_DIALBACKS_IN_FLIGHT = 4;

/** Distinct observed IPs remembered, at most. */
export const MAX_OBSERVED_ADDRESSES = 8;

/** Neighbours remembered for the dial-back rate limit (they may reconnect to reset it). */
const MAX_SERVED_REMEMBERED = 256;

/**
 * `local`: we listen on a loopback address, so nothing outside this host can reach us
 * and nothing is checked. `private`: nobody could dial us (or we do not listen at all).
 */
export type ReachStatus = "unknown" | "public" | "private" | "local";

/**
 * `none`: neighbours see us at the IP of our own socket, no translation. The others
 * count only links we dialled through a translating NAT: the port they saw us at is our
 * socket's port (`port-preserving`) or not (`port-changing`, as a symmetric NAT).
 */
export type NatKind = "unknown" | "none" | "port-preserving" | "port-changing";

/** An IP neighbours saw us at. */
export interface ObservedAddress {
  readonly host: string;
  /** Links whose neighbour reported it. */
  readonly reports: number;
  /** Of our outbound links seen at it through a NAT: how many kept our port, how many not. */
  readonly preserving: number;
  readonly changing: number;
  /** Links seen at it with no translation (the IP of our own socket). */
  readonly direct: number;
  /** When it was last reported. */
  readonly lastAt: number;
}

/** What {@link Reachability} knows, for the driver's `status` and `/peers`. */
export interface ReachSummary {
  readonly reachability: ReachStatus;
  readonly natKind: NatKind;
  /** Most reported first. */
  readonly observed: readonly ObservedAddress[];
}

/** What the reachability part is told. */
export type ReachEvent =
  /**
   * A link is up. `local` is our end of its socket, `remote` the neighbour's as we see
   * it; for a relayed link `remote` is the relay, and is neither reported nor dialled.
   */
  | {
      readonly type: "up";
      readonly nodeIdHex: string;
      readonly direction: Direction;
      readonly local: Endpoint;
      readonly remote: Endpoint;
      readonly relayed: boolean;
    }
  | { readonly type: "down"; readonly nodeIdHex: string }
  /** A REACH frame from a neighbour, decoded. */
  | { readonly type: "frame"; readonly from: string; readonly message: ReachMessage }
  /** A dial-back the driver made for `nodeIdHex` ended. */
  | {
      readonly type: "dial-back-done";
      readonly nodeIdHex: string;
      readonly port: number;
      readonly ok: boolean;
    }
  | { readonly type: "tick" };

/** What the driver does for it. */
export type ReachAction =
  | { readonly type: "send"; readonly to: string; readonly frame: Uint8Array }
  /**
   * Connect to `endpoint` (the neighbour's own IP), close at once, and report the outcome
   * as a `dial-back-done` event. A connect proves the port is open, not that it is us.
   */
  | { readonly type: "dial-back"; readonly nodeIdHex: string; readonly endpoint: Endpoint }
  /** A DIALBACK we do not perform, and why (nothing is answered: the asker times out). */
  | { readonly type: "refused"; readonly nodeIdHex: string; readonly reason: string };

/** Where this peer listens. Port 0: it does not accept connections. */
export interface ReachabilityOptions {
  readonly listenHost: string;
  readonly listenPort: number;
}

interface Neighbour {
  readonly direction: Direction;
  readonly local: Endpoint;
  /** The IP its link comes from (unmapped); the only IP we dial back. */
  readonly remoteHost: string;
  readonly relayed: boolean;
  readonly upAt: number;
  /** It already told us how it sees us on this link. */
  observed: boolean;
}

interface ObservedEntry {
  host: string;
  reports: number;
  preserving: number;
  changing: number;
  direct: number;
  lastAt: number;
}

type Answer = "pending" | "open" | "closed" | "none";

interface Check {
  readonly startedAt: number;
  readonly asks: Map<string, { readonly sentAt: number; answer: Answer }>;
}

/** See the module comment. */
export class Reachability {
  private readonly neighbours = new Map<string, Neighbour>();
  private readonly observed = new Map<string, ObservedEntry>();
  private readonly served = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  private check: Check | undefined;
  /** Seen at a new IP since the last check began: check again once allowed. */
  private recheck = false;
  private current: ReachStatus;
  private readonly listenPort: number;

  constructor(options: ReachabilityOptions) {
    this.listenPort = options.listenPort;
    this.current = isLoopback(options.listenHost)
      ? "local"
      : options.listenPort === 0
        ? "private"
        : "unknown";
  }

  /** Whether others can dial us, as last learned. */
  get status(): ReachStatus {
    return this.current;
  }

  /** What we know: reachability, NAT kind, observed addresses. */
  summary(): ReachSummary {
    return { reachability: this.current, natKind: this.natKind(), observed: this.ranked() };
  }

  /**
   * The IPs we are seen at, most reported first, loopback last, at most `max`: the hosts
   * of the addresses a hole punch predicts.
   */
  observedHosts(max = MAX_OBSERVED_ADDRESSES): string[] {
    const ranked = this.ranked().map((o) => o.host);
    const outside = ranked.filter((h) => !isLoopback(h));
    return [...outside, ...ranked.filter((h) => isLoopback(h))].slice(0, max);
  }

  /** The kind of NAT the links we dialled went through, by majority (a tie: preserving). */
  natKind(): NatKind {
    let preserving = 0;
    let changing = 0;
    let direct = 0;
    for (const o of this.observed.values()) {
      preserving += o.preserving;
      changing += o.changing;
      direct += o.direct;
    }
    if (changing > preserving) return "port-changing";
    if (preserving > 0) return "port-preserving";
    return direct > 0 ? "none" : "unknown";
  }

  /** Takes one event; returns what to do. */
  handle(event: ReachEvent, now: number): ReachAction[] {
    const out: ReachAction[] = [];
    switch (event.type) {
      case "up":
        this.up(event, now, out);
        break;
      case "down":
        this.down(event.nodeIdHex, now, out);
        break;
      case "frame":
        this.frame(event.from, event.message, now, out);
        break;
      case "dial-back-done":
        this.inFlight.delete(event.nodeIdHex);
        if (this.neighbours.has(event.nodeIdHex)) {
          const frame = encodeReachDialBackResult(event.port, event.ok);
          out.push({ type: "send", to: event.nodeIdHex, frame });
        }
        break;
      case "tick":
        this.tick(now, out);
        break;
    }
    return out;
  }

  private up(event: Extract<ReachEvent, { type: "up" }>, now: number, out: ReachAction[]): void {
    const remoteHost = unmapIPv4(event.remote.host);
    this.neighbours.set(event.nodeIdHex, {
      direction: event.direction,
      local: { host: unmapIPv4(event.local.host), port: event.local.port },
      remoteHost,
      relayed: event.relayed,
      upAt: now,
      observed: false,
    });
    // Over a circuit, the socket's remote is the relay: nothing to tell about the neighbour.
    if (!event.relayed && isIP(remoteHost) && event.remote.port > 0) {
      const frame = encodeReachObserved({ host: remoteHost, port: event.remote.port });
      out.push({ type: "send", to: event.nodeIdHex, frame });
    }
    if (!this.checking) return;
    if (this.check === undefined) this.startCheck(now, out);
    else this.ask(now, out);
  }

  private down(nodeIdHex: string, now: number, out: ReachAction[]): void {
    this.neighbours.delete(nodeIdHex);
    const ask = this.check?.asks.get(nodeIdHex);
    if (ask?.answer === "pending") {
      ask.answer = "none";
      this.settle();
      this.ask(now, out);
    }
  }

  private frame(from: string, message: ReachMessage, now: number, out: ReachAction[]): void {
    const n = this.neighbours.get(from);
    if (n === undefined) return;
    switch (message.op) {
      case ReachOp.Observed:
        // Once per link; over a circuit the neighbour sees the relay, not us.
        if (n.observed || n.relayed) return;
        n.observed = true;
        this.learn(n, unmapIPv4(message.host), message.port, now, out);
        return;
      case ReachOp.DialBack:
        this.dialBack(from, n, message.port, now, out);
        return;
      case ReachOp.DialBackResult: {
        const ask = this.check?.asks.get(from);
        // Only the answer to what we asked: our port, in the current check.
        if (ask?.answer !== "pending" || message.port !== this.listenPort) return;
        ask.answer = message.ok ? "open" : "closed";
        this.settle();
        this.ask(now, out);
        return;
      }
    }
  }

  private learn(n: Neighbour, host: string, port: number, now: number, out: ReachAction[]): void {
    let entry = this.observed.get(host);
    const isNew = entry === undefined;
    if (entry === undefined) {
      if (this.observed.size >= MAX_OBSERVED_ADDRESSES) this.evictObserved();
      entry = { host, reports: 0, preserving: 0, changing: 0, direct: 0, lastAt: now };
      this.observed.set(host, entry);
    }
    entry.reports++;
    entry.lastAt = now;
    // Our socket's port unknown (no socket ends from the node): nothing learned of the NAT.
    if (n.direction === "outbound" && n.local.port !== 0) {
      if (host === n.local.host) entry.direct++;
      else if (port === n.local.port) entry.preserving++;
      else entry.changing++;
    }
    // Seen at a new IP (another network, a NAT that changed its address): ask again.
    if (isNew && this.observed.size > 1 && this.checking) {
      this.recheck = true;
      const last = this.check?.startedAt;
      if (last === undefined || now - last >= REACH_MIN_RECHECK_MS) this.startCheck(now, out);
    }
  }

  /** Makes room: the least reported address goes, the oldest of those. */
  private evictObserved(): void {
    let victim: ObservedEntry | undefined;
    for (const o of this.observed.values())
      if (
        victim === undefined ||
        o.reports < victim.reports ||
        (o.reports === victim.reports && o.lastAt < victim.lastAt)
      )
        victim = o;
    if (victim) this.observed.delete(victim.host);
  }

  private dialBack(
    from: string,
    n: Neighbour,
    port: number,
    now: number,
    out: ReachAction[],
  ): void {
    const refuse = (reason: string) => out.push({ type: "refused", nodeIdHex: from, reason });
    if (n.relayed) return void refuse("relayed link: its remote IP is the relay's");
    if (!isIP(n.remoteHost)) return void refuse(`no IP to dial (${n.remoteHost})`);
    const last = this.served.get(from);
    if (last !== undefined && now - last < DIALBACK_EVERY_MS)
      return void refuse(`asked again within ${DIALBACK_EVERY_MS / 1000} s`);
    if (this.inFlight.size >= MAX_DIALBACKS_IN_FLIGHT)
      return void refuse(`${MAX_DIALBACKS_IN_FLIGHT} dial-backs already in flight`);
    this.served.delete(from);
    this.served.set(from, now);
    if (this.served.size > MAX_SERVED_REMEMBERED) {
      const oldest = this.served.keys().next().value;
      if (oldest !== undefined) this.served.delete(oldest);
    }
    this.inFlight.set(from, now);
    out.push({ type: "dial-back", nodeIdHex: from, endpoint: { host: n.remoteHost, port } });
  }

  private tick(now: number, out: ReachAction[]): void {
    for (const [id, at] of this.served) {
      if (now - at < DIALBACK_EVERY_MS) break; // insertion order is time order
      this.served.delete(id);
    }
    // A dial-back the driver never reported (a bug) must not hold a place for ever.
    for (const [id, at] of this.inFlight)
      if (now - at > 2 * DIALBACK_ANSWER_TIMEOUT_MS) this.inFlight.delete(id);
    const check = this.check;
    if (!this.checking || check === undefined) return;
    const since = now - check.startedAt;
    if (since >= REACH_RECHECK_MS || (this.recheck && since >= REACH_MIN_RECHECK_MS)) {
      this.startCheck(now, out);
      return;
    }
    let expired = false;
    for (const ask of check.asks.values())
      if (ask.answer === "pending" && now - ask.sentAt >= DIALBACK_ANSWER_TIMEOUT_MS) {
        ask.answer = "none";
        expired = true;
      }
    if (expired) {
      this.settle();
      this.ask(now, out);
    }
  }

  /** True unless there is nothing to check: loopback only, or not listening. */
  private get checking(): boolean {
    return this.current !== "local" && this.listenPort !== 0;
  }

  private startCheck(now: number, out: ReachAction[]): void {
    this.check = { startedAt: now, asks: new Map() };
    this.recheck = false;
    this.ask(now, out);
  }

  /** Asks neighbours until {@link DIALBACK_ASKS} are asked (or answered) in this check. */
  private ask(now: number, out: ReachAction[]): void {
    const check = this.check;
    if (check === undefined) return;
    let live = 0;
    for (const a of check.asks.values()) if (a.answer !== "none") live++;
    while (live < DIALBACK_ASKS && check.asks.size < MAX_DIALBACK_ASKS_PER_CHECK) {
      const id = this.candidate(check);
      if (id === undefined) return;
      check.asks.set(id, { sentAt: now, answer: "pending" });
      out.push({ type: "send", to: id, frame: encodeReachDialBack(this.listenPort) });
      live++;
    }
  }

  /** The next neighbour to ask: direct links only, those we dialled first, oldest first. */
  private candidate(check: Check): string | undefined {
    let best: [string, Neighbour] | undefined;
    for (const entry of this.neighbours) {
      const [id, n] = entry;
      if (n.relayed || check.asks.has(id)) continue;
      if (
        best === undefined ||
        (n.direction === "outbound" && best[1].direction !== "outbound") ||
        (n.direction === best[1].direction && n.upAt < best[1].upAt)
      )
        best = entry;
    }
    return best?.[0];
  }

  /** Any dial-back that connected: public; every answer a failure, none pending: private. */
  private settle(): void {
    const asks = [...(this.check?.asks.values() ?? [])];
    if (asks.some((a) => a.answer === "open")) this.current = "public";
    else if (asks.some((a) => a.answer === "closed") && !asks.some((a) => a.answer === "pending"))
      this.current = "private";
  }

  private ranked(): ObservedAddress[] {
    return [...this.observed.values()]
      .sort((a, b) => b.reports - a.reports || b.lastAt - a.lastAt)
      .map((o) => ({ ...o }));
  }
}

/** True for a loopback address or name: 127.0.0.0/8, `::1`, `localhost`. */
export function isLoopback(host: string): boolean {
  const h = unmapIPv4(host.toLowerCase());
  if (h === "localhost" || h === "::1") return true;
  return isIPv4(h) && h.startsWith("127.");
}
