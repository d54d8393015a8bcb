/**
 * Which peers to reach through a relay (docs/PROTOCOL.md §5d). Pure: the driver feeds it
 * what the node learns and performs the circuit opens it asks for.
 *
 * A neighbour's PEERS frame lists the peers it is linked to directly; each of them can be
 * reached through that neighbour's circuits, even when its own address cannot be dialled
 * (it sits behind a NAT). A peer we know of, still not a neighbour a while after we
 * learned of it, is reached that way: of the two ends, the one with the lower node id
 * opens the circuit, so that both do not open one at once. A relayed link is a stepping
 * stone: the two ends then try to punch a direct link (punch-coordinator.ts), and a
 * direct link replaces the relayed one whenever it comes up (handshake.ts `survivor`).
 */

/** A peer not linked this long after we learned of it is reached through a relay. */
export const RELAY_AFTER_MS = 2_000;

/** First wait after a failed circuit; doubles on each failure, up to the ceiling. */
export const RELAY_RETRY_MS = 5_000;
export const RELAY_RETRY_MAX_MS = 60_000;

/** At most this many relayed neighbours at once (a relay's capacity is shared). */
export const MAX_RELAYED_NEIGHBOURS = 8;

/** At most this many peers remembered as reachable through a relay. */
export const MAX_RELAYED_TARGETS = 256;

/** A peer we may reach through a relay. */
interface Target {
  /** Neighbours that said they are linked to it, in the order they said so. */
  readonly relays: Set<string>;
  learnedAt: number;
  /** Not before this time: after a failure, the back-off. */
  retryAt: number;
  failures: number;
  opening: boolean;
}

/** What the planner needs to know of the node at each step. */
export interface PlannerView {
  /** Our own node id (hex). */
  readonly self: string;
  isNeighbour(nodeIdHex: string): boolean;
  /** Neighbours whose link runs through a relay. */
  readonly relayedNeighbours: number;
  /** The node wants more links (fewer neighbours than the mesh's degree). */
  readonly wantsMore: boolean;
}

/** Open a circuit to `target` through the neighbour `relay`. */
export interface OpenCircuit {
  readonly target: string;
  readonly relay: string;
}

/** Decides which circuits to open; see the module comment. */
export class RelayPlanner {
  private readonly targets = new Map<string, Target>();

  /** A neighbour listed the peers it is linked to: each can be reached through it. */
  listed(relay: string, peers: readonly string[], now: number): void {
    for (const peer of peers) {
      let target = this.targets.get(peer);
      if (!target) {
        if (this.targets.size >= MAX_RELAYED_TARGETS) {
          const oldest = this.targets.keys().next().value;
          if (oldest !== undefined) this.targets.delete(oldest);
        }
        target = { relays: new Set(), learnedAt: now, retryAt: now, failures: 0, opening: false };
        this.targets.set(peer, target);
      }
      target.relays.add(relay);
    }
  }

  /** A neighbour is gone: it relays no longer (and is a peer to reach again, if listed). */
  lost(neighbour: string, now: number): void {
    for (const target of this.targets.values()) target.relays.delete(neighbour);
    const target = this.targets.get(neighbour);
    if (target) target.learnedAt = now;
  }

  /** The circuits to open now. */
  due(view: PlannerView, now: number): OpenCircuit[] {
    const out: OpenCircuit[] = [];
    if (!view.wantsMore) return out;
    let room = MAX_RELAYED_NEIGHBOURS - view.relayedNeighbours;
    for (const [peer, target] of this.targets) {
      if (room <= 0) break;
      if (target.opening || peer === view.self || view.isNeighbour(peer)) continue;
      // The higher id waits for the lower to open: one circuit, not two.
      if (view.self > peer) continue;
      if (now < target.retryAt || now - target.learnedAt < RELAY_AFTER_MS) continue;
      const relay = [...target.relays].find((r) => r !== peer && view.isNeighbour(r));
      if (relay === undefined) continue;
      target.opening = true;
      room--;
      out.push({ target: peer, relay });
    }
    return out;
  }

  /** How the open of a circuit to `target` ended. */
  opened(target: string, ok: boolean, now: number): void {
    const t = this.targets.get(target);
    if (!t) return;
    t.opening = false;
    if (ok) {
      t.failures = 0;
      t.retryAt = now;
      return;
    }
    t.retryAt = now + Math.min(RELAY_RETRY_MAX_MS, RELAY_RETRY_MS * 2 ** t.failures);
    t.failures++;
  }

  /** Peers known to be reachable through a relay (for tests and `/peers`). */
  get size(): number {
    return this.targets.size;
  }
}
