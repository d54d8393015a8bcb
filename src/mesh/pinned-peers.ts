import type { ConsolaInstance } from "consola";
import { type Clock, systemClock, type TimerHandle } from "../node/clock.ts";
import type { ConnectOutcome } from "../node/node-events.ts";
import type { PeerNode } from "../node/peer-node.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { HANDSHAKE_REFUSED_REASON } from "../secure/constants.ts";
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_MAX_MS,
  backoffMs,
  jitter,
  LOST_BACKOFF_MAX_MS,
} from "./backoff.ts";

/**
 * Handshakes a pinned address may refuse in a row, the way only a peer of another room
 * (or something that is not a peerchat peer) refuses every time, before it is given up.
 * A full peer says so in words, and an address where nothing listens is not a refusal.
 */
export const WRONG_ROOM_REFUSALS = 3;

interface Pin {
  readonly endpoint: Endpoint;
  readonly label: string;
  /** The dial under way, so a second request for the same address joins it. */
  inFlight: Promise<ConnectOutcome> | undefined;
  /** Failed attempts since the last success; drives the back-off. */
  failures: number;
  /** Handshakes refused in a row as another room refuses them. */
  refusals: number;
  /** It was linked once: lost now, it is retried at most {@link LOST_BACKOFF_MAX_MS} apart. */
  everLinked: boolean;
  /** The neighbour this address led to, while linked. */
  nodeId: string | undefined;
  timer: TimerHandle | undefined;
  /** When the retry timer fires (clock ms), while waiting. */
  dueAt: number;
  /**
   * `self`: the address is this peer. `given-up`: a peer of another room. Neither is
   * dialled again unless asked for again.
   */
  state: "dialling" | "linked" | "waiting" | "self" | "given-up";
  /** Unpinned: a dial still under way ends without a retry. */
  removed: boolean;
}

/** What {@link PinnedPeers.unpin} found at an address. */
export interface Unpinned {
  /** The neighbour the address is linked to, if it is. */
  readonly nodeId: string | undefined;
  /** A dial to it under way: it may still bring a link up. */
  readonly dialling: Promise<ConnectOutcome> | undefined;
}

/**
 * Addresses the user asked for (bootstrap peers, `/connect`): kept linked for as long
 * as the peer runs. A failed dial is retried with exponential back-off and jitter
 * (1 s doubling to 30 s); a lost link is redialled the same way. So a peer started
 * before its bootstrap peer joins on its own once that peer comes up. Two kinds of
 * address stop being dialled: this peer's own (however it is written: the handshake
 * tells), and a peer of another room, after {@link WRONG_ROOM_REFUSALS} refusals.
 */
export class PinnedPeers {
  private readonly pins = new Map<string, Pin>();
  private readonly clock: Clock;
  private readonly stopListening: () => void;
  private stopped = false;

  constructor(
    private readonly node: PeerNode,
    private readonly log: ConsolaInstance,
    options: { clock?: Clock; random?: () => number } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    const offDown = node.events.on("peer-down", (down) => {
      for (const pin of this.pins.values()) {
        if (pin.state === "linked" && pin.nodeId === down.nodeId) this.lost(pin);
      }
    });
    // A new link means the network changed (a partition healed, a router came back):
    // addresses waiting out a back-off grown long while it was down are tried within
    // about a second. Each try still counts towards the back-off.
    const offUp = node.events.on("peer-up", () => {
      const soon = this.clock.now() + BACKOFF_INITIAL_MS;
      for (const pin of this.pins.values())
        if (pin.state === "waiting" && pin.dueAt > soon) this.retry(pin, BACKOFF_INITIAL_MS);
    });
    this.stopListening = () => {
      offDown();
      offUp();
    };
  }

  private readonly random: () => number;

  /**
   * Pins `endpoint` and dials it. Resolves with the first attempt's outcome; on failure
   * the address keeps being retried in the background.
   */
  add(endpoint: Endpoint): Promise<ConnectOutcome> {
    const label = formatEndpoint(endpoint);
    const known = this.pins.get(label);
    if (known?.inFlight) return known.inFlight;
    if (known?.state === "self") return Promise.resolve({ status: "self" });
    if (known) {
      // Asked again while waiting to retry, or given up: try now, with a fresh back-off.
      this.clock.clearTimeout(known.timer);
      known.failures = 0;
      known.refusals = 0;
      return this.attempt(known);
    }
    const pin: Pin = {
      endpoint,
      label,
      inFlight: undefined,
      failures: 0,
      refusals: 0,
      everLinked: false,
      nodeId: undefined,
      timer: undefined,
      dueAt: 0,
      state: "dialling",
      removed: false,
    };
    this.pins.set(label, pin);
    return this.attempt(pin);
  }

  /** True if `endpoint` is pinned (its redials are ours, not the mesh's). */
  has(endpoint: Endpoint): boolean {
    return this.pins.has(formatEndpoint(endpoint));
  }

  /**
   * Forgets `endpoint`: it is not dialled again (a dial under way ends without a retry).
   * Returns what the address was linked to, or undefined if it was not pinned.
   */
  unpin(endpoint: Endpoint): Unpinned | undefined {
    const label = formatEndpoint(endpoint);
    const pin = this.pins.get(label);
    if (!pin) return undefined;
    this.pins.delete(label);
    pin.removed = true;
    this.clock.clearTimeout(pin.timer);
    return { nodeId: pin.state === "linked" ? pin.nodeId : undefined, dialling: pin.inFlight };
  }

  /** The pinned addresses linked to the neighbour `nodeId` (hex). */
  linkedTo(nodeId: string): Endpoint[] {
    const found: Endpoint[] = [];
    for (const pin of this.pins.values())
      if (pin.state === "linked" && pin.nodeId === nodeId) found.push(pin.endpoint);
    return found;
  }

  /** Stops all retries. */
  close(): void {
    this.stopped = true;
    this.stopListening();
    for (const pin of this.pins.values()) this.clock.clearTimeout(pin.timer);
  }

  private attempt(pin: Pin): Promise<ConnectOutcome> {
    pin.inFlight = this.dial(pin)
      .catch((error): ConnectOutcome => {
        // Never let a bug end the retries: log it and try again later.
        this.log.error(`dialling ${pin.label} failed:`, error);
        if (!pin.removed && !this.stopped) this.retry(pin);
        return { status: "failed", reason: "internal error" };
      })
      .finally(() => {
        pin.inFlight = undefined;
      });
    return pin.inFlight;
  }

  private async dial(pin: Pin): Promise<ConnectOutcome> {
    pin.state = "dialling";
    pin.timer = undefined;
    const outcome = await this.node.connect(pin.endpoint);
    if (this.stopped || pin.removed) return outcome;
    if (outcome.status !== "failed") pin.refusals = 0;
    switch (outcome.status) {
      case "connected":
      case "already-connected":
        pin.state = "linked";
        pin.nodeId = outcome.peer.nodeId;
        pin.failures = 0;
        pin.everLinked = true;
        // The link may already have dropped while the outcome travelled here.
        if (!this.node.isNeighbour(outcome.peer.nodeId)) this.lost(pin);
        break;
      case "self":
        pin.state = "self";
        this.log.info(`${pin.label} is this peer itself; not dialling it again`);
        break;
      case "failed": {
        pin.refusals = anotherRoom(outcome) ? pin.refusals + 1 : 0;
        if (pin.refusals >= WRONG_ROOM_REFUSALS) {
          this.giveUp(pin);
          break;
        }
        const delay = this.retry(pin);
        const verb = outcome.stage === "handshake" ? "could not join" : "could not reach";
        const message = `${verb} ${pin.label}: ${outcome.reason}; retrying in ${formatDelay(delay)}`;
        // Say it loudly once; later retries of the same address only in verbose mode.
        if (pin.failures === 1) this.log.warn(message);
        else this.log.debug(message);
        break;
      }
    }
    return outcome;
  }

  private giveUp(pin: Pin): void {
    pin.state = "given-up";
    pin.timer = undefined;
    this.log.warn(
      `gave up on ${pin.label}: it is a peer of another room (or not a peerchat peer): ${pin.refusals} handshakes refused in a row`,
    );
  }

  private lost(pin: Pin): void {
    pin.nodeId = undefined;
    const delay = this.retry(pin);
    this.log.debug(`redialling ${pin.label} in ${formatDelay(delay)}`);
  }

  private retry(pin: Pin, delayMs?: number): number {
    this.clock.clearTimeout(pin.timer);
    pin.state = "waiting";
    const cap = pin.everLinked ? LOST_BACKOFF_MAX_MS : BACKOFF_MAX_MS;
    const delay = jitter(delayMs ?? backoffMs(pin.failures, BACKOFF_INITIAL_MS, cap), this.random);
    if (delayMs === undefined) pin.failures++;
    pin.dueAt = this.clock.now() + delay;
    pin.timer = this.clock.setTimeout(() => {
      if (!this.stopped) void this.attempt(pin);
    }, delay);
    return delay;
  }
}

/**
 * The address answered, then reset the connection on our first handshake message with
 * not a byte back: what a peer of another room does (docs/PROTOCOL.md §2a, "Another
 * room"). A busy peer ends the connection (FIN), a full one refuses in words, and a
 * refused TCP connect is no handshake: none of them counts.
 */
function anotherRoom(outcome: ConnectOutcome): boolean {
  return (
    outcome.status === "failed" &&
    outcome.stage === "handshake" &&
    outcome.reason === HANDSHAKE_REFUSED_REASON
  );
}

function formatDelay(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
