import type { ConsolaInstance } from "consola";
import type { Connection } from "../link/connection.ts";
import { describeFrame } from "../protocol/describe.ts";
import { formatEndpoint } from "../protocol/endpoint.ts";
import { FLOOD_PAYLOAD_OFFSET, floodId } from "../protocol/flood.ts";
import type { Frame } from "../protocol/frame-decoder.ts";
import { hex } from "../protocol/hex.ts";
import { type Link, linkAddress } from "./link.ts";
import type { RelayOutcome } from "./relay.ts";

/** Observes every frame in and out, for tests and tooling. Must not throw. */
export interface WireTap {
  frameIn?(neighbour: string | undefined, connection: Connection, frame: Frame): void;
  frameOut?(neighbour: string | undefined, connection: Connection, frame: Uint8Array): void;
}

/** No links: where a message that was not forwarded went. */
export const NOBODY: readonly Link[] = [];

const DROPPED: Readonly<Record<string, string>> = {
  duplicate: "duplicate, dropped",
  stale: "outside the time window, dropped",
  "origin-limited": "its author is over the rate limit, dropped",
};

/**
 * What `--trace` prints and the wire tap sees: every frame in and out, and what the
 * relay made of each FLOOD. Free when neither is on: the node asks {@link observing}
 * before it builds anything for it.
 */
export class NodeTrace {
  /** `--trace`: log every frame and relay decision. */
  readonly tracing: boolean;
  /** Something watches frames: the tap or the trace. */
  readonly observing: boolean;

  constructor(
    private readonly log: ConsolaInstance,
    private readonly tap: WireTap | undefined,
  ) {
    this.tracing = log.level >= 5;
    this.observing = tap !== undefined || this.tracing;
  }

  frameIn(link: Link, frame: Frame): void {
    this.tap?.frameIn?.(link.key, link.conn, frame);
    if (this.tracing)
      this.log.trace(`← ${label(link)} ${describeFrame(frame.type, frame.payload)}`);
  }

  /** Every frame that leaves (BYE and ERROR included); `link` is unset for a refused connection. */
  frameOut(link: Link | undefined, conn: Connection, frame: Uint8Array): void {
    this.tap?.frameOut?.(link?.key, conn, frame);
    if (this.tracing) {
      const to = link ? label(link) : formatEndpoint(conn.remote);
      this.log.trace(`→ ${to} ${describeFrame(frame[4] ?? 0, frame.subarray(5))}`);
    }
  }

  /** What the relay decided about a FLOOD from `link`, and where it went. */
  flood(
    link: Link,
    frame: Frame,
    outcome: RelayOutcome,
    hops: number,
    sentTo: readonly Link[],
  ): void {
    if (!this.tracing) return;
    let what = DROPPED[outcome.status] ?? outcome.status;
    if (outcome.status === "accepted") {
      const where = outcome.forward
        ? `forwarded to ${names(sentTo)}`
        : "hop limit reached, not forwarded";
      what = `new (hops ${hops}), delivered, ${where}`;
    }
    const id = hex(floodId(frame.bytes, frame.start).subarray(0, 4));
    this.log.trace(`relay ${id} from ${label(link)}: ${what}`);
  }

  /** A FLOOD this node wrote, sent to `to`. */
  originated(frame: Uint8Array, to: Iterable<Link>): void {
    if (!this.tracing) return;
    const id = hex(floodId(frame, FLOOD_PAYLOAD_OFFSET)).slice(0, 8);
    this.log.trace(`relay ${id} originated, sent to ${names(to)}`);
  }

  duplicate(kept: Link, dropped: Link): void {
    if (!this.tracing) return;
    const { direction } = kept.conn;
    this.log.trace(
      `duplicate link to ${kept.hello?.nick}: keeping ${direction}, closing ${dropped.conn.direction}`,
    );
  }
}

/** A link as logs name it: `nick@host:port`, or the address before its HELLO. */
export function label(link: Link): string {
  const where = formatEndpoint(linkAddress(link));
  return link.hello ? `${link.hello.nick}@${where}` : where;
}

function names(links: Iterable<Link>): string {
  const all = [...links].map(label);
  return all.length > 0 ? all.join(", ") : "nobody";
}
