import type { ConnectionClosed } from "../link/connection.ts";
import { type ClosedLink, holdsPeerDown } from "./close-report.ts";
import type { PeerDown } from "./node-events.ts";

/**
 * Neighbours that may be moving from one link to another. When both ends dial at once,
 * the remote can close the old link before the new link's HELLO reaches us: shown as it
 * happens, that is a leave and a join that never were. So a neighbour's link closed by
 * the remote without a goodbye, while another connection from its host is still in its
 * handshake, has its `peer-down` held until that handshake ends: taken over (nothing to
 * report) if the same node comes up, reported otherwise. Pure: the driver asks and emits.
 */
export class LinkHandover {
  private readonly held = new Map<string, { down: PeerDown; host: string }>();

  /**
   * A neighbour's link closed, and `down` reports it: returns it to report now, or
   * undefined if it is held (`handshakesFromHost`: connections from its host still in
   * their handshake).
   */
  closed(
    link: ClosedLink,
    info: ConnectionClosed,
    down: PeerDown,
    handshakesFromHost: number,
  ): PeerDown | undefined {
    if (!holdsPeerDown(link, info, handshakesFromHost)) return down;
    this.held.set(down.nodeId, { down, host: down.address.host });
    return undefined;
  }

  /** A link to `nodeId` is up: the held `peer-down` it takes over (it moved links), if any. */
  resumed(nodeId: string): PeerDown | undefined {
    const held = this.held.get(nodeId);
    this.held.delete(nodeId);
    return held?.down;
  }

  /** The held `peer-down`s whose host has no handshake left that could take them over. */
  released(handshakesFrom: (host: string) => number): PeerDown[] {
    const due: PeerDown[] = [];
    for (const [nodeId, { down, host }] of this.held) {
      if (handshakesFrom(host) > 0) continue;
      this.held.delete(nodeId);
      due.push(down);
    }
    return due;
  }

  /** Forgets everything held: the node is closing, and reports nothing more. */
  clear(): void {
    this.held.clear();
  }
}
