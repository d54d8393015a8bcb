import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { FrameType, NODE_ID_BYTES } from "./constants.ts";
import { isIP } from "./ip.ts";

/** At most this many entries in one PEERS frame. */
export const MAX_PEERS_PER_FRAME = 64;

/** A peer another node can dial: its id and the address it accepts connections on. */
export interface PeerAddress {
  readonly nodeId: Uint8Array;
  /** An IP literal (v4 or v6, without brackets). */
  readonly host: string;
  /** 1–65535: peers that do not listen are never advertised. */
  readonly port: number;
}

/** Encodes a PEERS frame: `count:u16 | count × (nodeId:key32 | host:str | port:u16)`. */
export function encodePeers(peers: readonly PeerAddress[]): Uint8Array {
  if (peers.length > MAX_PEERS_PER_FRAME)
    throw new Error(`at most ${MAX_PEERS_PER_FRAME} peers per frame`);
  const hosts = peers.map((p) => encodeUtf8(p.host));
  const size = 2 + hosts.reduce((n, h) => n + NODE_ID_BYTES + 2 + h.length + 2, 0);
  const w = ByteWriter.frame(FrameType.Peers, size).u16(peers.length);
  peers.forEach((p, i) => {
    w.bytes(p.nodeId)
      .str(hosts[i] as Uint8Array)
      .u16(p.port);
  });
  return w.done();
}

/**
 * Decodes a PEERS payload. More than 64 entries, a host that is not an IP literal, or
 * port 0 is a protocol error: an address book fed from the network must only ever hold
 * addresses that honest peers could have advertised.
 */
export function decodePeers(payload: Uint8Array): PeerAddress[] {
  const r = new ByteReader(payload);
  const count = r.u16();
  if (count > MAX_PEERS_PER_FRAME) {
    throw new ProtocolError(
      "BAD_FIELD",
      `PEERS lists ${count} peers, more than ${MAX_PEERS_PER_FRAME}`,
    );
  }
  const peers: PeerAddress[] = [];
  for (let i = 0; i < count; i++) {
    const nodeId = r.bytes(NODE_ID_BYTES).slice();
    const host = r.str("PEERS host");
    const port = r.u16();
    if (!isIP(host))
      throw new ProtocolError(
        "BAD_FIELD",
        `PEERS host ${JSON.stringify(host.slice(0, 64))} is not an IP address`,
      );
    if (port === 0) throw new ProtocolError("BAD_FIELD", "PEERS entry with port 0");
    peers.push({ nodeId, host, port });
  }
  r.end("PEERS");
  return peers;
}
