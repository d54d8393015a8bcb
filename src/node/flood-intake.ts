import type { ConsolaInstance } from "consola";
import { FloodKind } from "../protocol/constants.ts";
import { FLOOD_PAYLOAD_OFFSET, floodHops, floodKind, forwardFlood } from "../protocol/flood.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import type { AbuseGuard } from "./abuse-guard.ts";
import { Delivery } from "./delivery.ts";
import type { Emitter } from "./emitter.ts";
import type { Link } from "./link.ts";
import type { LinkTable } from "./link-table.ts";
import type { NodeEvents } from "./node-events.ts";
import type { HistoryWindow, Relay, RelayOutcome } from "./relay.ts";
import { label, NOBODY, type NodeTrace } from "./trace.ts";

/** What the intake needs of the node: its parts, and its one way of sending. */
export interface FloodIntakeDeps {
  readonly relay: Relay;
  readonly guard: AbuseGuard;
  readonly links: LinkTable;
  readonly trace: NodeTrace;
  readonly log: ConsolaInstance;
  readonly events: Emitter<NodeEvents>;
  /** The node's send: flow control and tracing included; false if the link did not take it. */
  readonly send: (link: Link, bytes: Uint8Array, start: number, end: number) => boolean;
}

/**
 * The node's FLOOD path, carried out: the relay decides (accepted, duplicate, invalid,
 * forged, throttled…), the abuse guard judges what a refusal says of the neighbour, and
 * the intake forwards, delivers, warns or closes as they say.
 */
export class FloodIntake {
  constructor(private readonly d: FloodIntakeDeps) {}

  /** A FLOOD that `link` sent live. */
  receive(link: Link, frame: Frame, now: number): void {
    const { bytes, start, end } = frame;
    const { relay, trace, links } = this.d;
    const outcome = relay.receive(bytes, start, end, now, link.guard.bucket);
    const hops = floodHops(bytes, start);
    if (outcome.status !== "accepted") {
      this.refused(link, outcome, now);
      trace.flood(link, frame, outcome, hops, NOBODY);
      return;
    }
    const sentTo: Link[] | undefined = trace.tracing ? [] : undefined;
    // Forward only if somebody other than the sender will get it. The frame goes on as
    // it arrived, its hops byte raised in place: no copy is made unless the frame had
    // to be reassembled from several chunks (then its length prefix is not in `bytes`).
    const others =
      links.neighbourCount - (link.state === "established" && !link.superseded ? 1 : 0);
    if (outcome.forward && others > 0) {
      const out = forwardFlood(bytes, start, end, frame.framed, hops + 1);
      const from = out === bytes ? start - FLOOD_PAYLOAD_OFFSET : 0;
      const to = out === bytes ? end : out.length;
      for (const other of links.neighbours()) {
        // Not back to the sender, nor to its new link if this one is a drained duplicate.
        if (other === link || other.key === link.key) continue;
        if (this.d.send(other, out, from, to)) sentTo?.push(other);
      }
    }
    trace.flood(link, frame, outcome, hops, sentTo ?? NOBODY);
    const delivery = new Delivery(bytes, start, end, now, hops + 1, outcome.presence);
    this.d.events.emit("flood", delivery);
    if (floodKind(bytes, start) === FloodKind.Chat) this.d.events.emit("message", delivery);
  }

  /**
   * A stored message that `link`'s neighbour sent by sync: checked like a live FLOOD, a
   * forgery counted against it. Returns it, marked late, if it is new to us.
   */
  stored(link: Link, frame: Frame, window: HistoryWindow, now: number): Delivery | undefined {
    const outcome = this.d.relay.receiveStored(frame.bytes, frame.start, frame.end, now, window);
    if (outcome.status !== "accepted") return this.refused(link, outcome, now);
    return new Delivery(frame.bytes, frame.start, frame.end, now, 1, undefined, true);
  }

  /** A FLOOD the relay did not accept: what it means for the neighbour that sent it. */
  private refused(link: Link, outcome: RelayOutcome, now: number): undefined {
    const verdict = this.d.guard.judge(outcome, link.guard, link.key, now);
    if (verdict.action === "warn") this.d.log.warn(`${label(link)} ${verdict.message}`);
    else if (verdict.action === "disconnect") link.conn.close(verdict.close);
    return undefined;
  }
}
