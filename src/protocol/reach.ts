import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { FrameType } from "./constants.ts";
import type { Endpoint } from "./endpoint.ts";
import { isIP } from "./ip.ts";

/**
 * REACH (0x0A) and PUNCH (0x0C): how a peer learns the address others see it at and
 * whether they can dial it, and how two peers linked through a relay coordinate a TCP
 * simultaneous open (as libp2p DCUtR). Every frame is `op:u8 | body`; an endpoint is
 * `host:str | port:u16`, the host an IP literal, the port 1–65535. This module only lays
 * out bytes; the decisions are in src/reach/.
 */
export const ReachOp = {
  /** `host:str | port:u16`: the remote address of the link's socket as the sender sees it. */
  Observed: 1,
  /** `port:u16`: "dial me on this port at the IP you see me from". */
  DialBack: 2,
  /** `port:u16 | ok:u8`: how that dial went (1: it connected). */
  DialBackResult: 3,
} as const;
export type ReachOp = (typeof ReachOp)[keyof typeof ReachOp];

/** PUNCH ops. `attempt` counts from 1. */
export const PunchOp = {
  /** `attempt:u8 | count:u8 (1–4) | count × endpoint`: the sender's predicted public addresses. */
  Connect: 1,
  /** `attempt:u8`: the initiator's go; the responder dials at once. */
  Sync: 2,
  /** `attempt:u8`: the sender stops punching; the link stays relayed. */
  GiveUp: 3,
} as const;
export type PunchOp = (typeof PunchOp)[keyof typeof PunchOp];

/** At most this many addresses in one PUNCH CONNECT. */
export const MAX_PUNCH_ADDRESSES = 4;

/** A decoded REACH frame. */
export type ReachMessage =
  | { readonly op: typeof ReachOp.Observed; readonly host: string; readonly port: number }
  | { readonly op: typeof ReachOp.DialBack; readonly port: number }
  | { readonly op: typeof ReachOp.DialBackResult; readonly port: number; readonly ok: boolean };

/** A decoded PUNCH frame. */
export type PunchMessage =
  | {
      readonly op: typeof PunchOp.Connect;
      readonly attempt: number;
      readonly addresses: readonly Endpoint[];
    }
  | { readonly op: typeof PunchOp.Sync; readonly attempt: number }
  | { readonly op: typeof PunchOp.GiveUp; readonly attempt: number };

/** OBSERVED: the neighbour's address as this side sees it (an IPv4-mapped host unmapped first). */
export function encodeReachObserved(seen: Endpoint): Uint8Array {
  checkEndpoint(seen);
  const host = encodeUtf8(seen.host);
  return ByteWriter.frame(FrameType.Reach, 1 + 2 + host.length + 2)
    .u8(ReachOp.Observed)
    .str(host)
    .u16(seen.port)
    .done();
}

/** DIALBACK: asks the neighbour to dial `port` at the IP it sees us from. */
export function encodeReachDialBack(port: number): Uint8Array {
  checkPort(port);
  return ByteWriter.frame(FrameType.Reach, 1 + 2)
    .u8(ReachOp.DialBack)
    .u16(port)
    .done();
}

/** DIALBACK_RESULT: whether a TCP connect to `port` at the asker's IP succeeded. */
export function encodeReachDialBackResult(port: number, ok: boolean): Uint8Array {
  checkPort(port);
  return ByteWriter.frame(FrameType.Reach, 1 + 2 + 1)
    .u8(ReachOp.DialBackResult)
    .u16(port)
    .u8(ok ? 1 : 0)
    .done();
}

/** Decodes a REACH payload; an unknown op, a host that is not an IP or port 0 is a protocol error. */
export function decodeReach(payload: Uint8Array): ReachMessage {
  const r = new ByteReader(payload);
  const op = r.u8();
  let message: ReachMessage;
  switch (op) {
    case ReachOp.Observed: {
      const { host, port } = readEndpoint(r, "REACH observed");
      message = { op, host, port };
      break;
    }
    case ReachOp.DialBack:
      message = { op, port: readPort(r, "REACH dial-back") };
      break;
    case ReachOp.DialBackResult: {
      const port = readPort(r, "REACH dial-back result");
      const ok = r.u8();
      if (ok > 1) throw new ProtocolError("BAD_FIELD", "REACH dial-back result: ok is not 0 or 1");
      message = { op, port, ok: ok === 1 };
      break;
    }
    default:
      throw new ProtocolError("BAD_FIELD", `REACH op ${op} is not defined`);
  }
  r.end("REACH");
  return message;
}

/** CONNECT: `attempt` (1–255) and 1–4 addresses the sender predicts it can be dialled at. */
export function encodePunchConnect(attempt: number, addresses: readonly Endpoint[]): Uint8Array {
  checkAttempt(attempt);
  if (addresses.length < 1 || addresses.length > MAX_PUNCH_ADDRESSES)
    throw new Error(`a PUNCH connect carries 1 to ${MAX_PUNCH_ADDRESSES} addresses`);
  for (const a of addresses) checkEndpoint(a);
  const hosts = addresses.map((a) => encodeUtf8(a.host));
  const size = 1 + 1 + 1 + hosts.reduce((n, h) => n + 2 + h.length + 2, 0);
  const w = ByteWriter.frame(FrameType.Punch, size)
    .u8(PunchOp.Connect)
    .u8(attempt)
    .u8(addresses.length);
  addresses.forEach((a, i) => {
    w.str(hosts[i] as Uint8Array).u16(a.port);
  });
  return w.done();
}

/** SYNC: the initiator's go for `attempt`. */
export function encodePunchSync(attempt: number): Uint8Array {
  return attemptFrame(PunchOp.Sync, attempt);
}

/** GIVE_UP: the sender stops punching after `attempt`. */
export function encodePunchGiveUp(attempt: number): Uint8Array {
  return attemptFrame(PunchOp.GiveUp, attempt);
}

/**
 * Decodes a PUNCH payload. An unknown op, attempt 0, a count outside 1–4, a host that is
 * not an IP literal or port 0 is a protocol error: the addresses are dialled as they are.
 */
export function decodePunch(payload: Uint8Array): PunchMessage {
  const r = new ByteReader(payload);
  const op = r.u8();
  const attempt = r.u8();
  if (attempt === 0) throw new ProtocolError("BAD_FIELD", "PUNCH attempt 0");
  let message: PunchMessage;
  switch (op) {
    case PunchOp.Connect: {
      const count = r.u8();
      if (count < 1 || count > MAX_PUNCH_ADDRESSES)
        throw new ProtocolError("BAD_FIELD", `PUNCH connect with ${count} addresses`);
      const addresses: Endpoint[] = [];
      for (let i = 0; i < count; i++) addresses.push(readEndpoint(r, "PUNCH connect"));
      message = { op, attempt, addresses };
      break;
    }
    case PunchOp.Sync:
      message = { op, attempt };
      break;
    case PunchOp.GiveUp:
      message = { op, attempt };
      break;
    default:
      throw new ProtocolError("BAD_FIELD", `PUNCH op ${op} is not defined`);
  }
  r.end("PUNCH");
  return message;
}

function attemptFrame(op: PunchOp, attempt: number): Uint8Array {
  checkAttempt(attempt);
  return ByteWriter.frame(FrameType.Punch, 2).u8(op).u8(attempt).done();
}

function readEndpoint(r: ByteReader, what: string): Endpoint {
  const host = r.str(`${what} host`);
  if (!isIP(host))
    throw new ProtocolError(
      "BAD_FIELD",
      `${what}: host ${JSON.stringify(host.slice(0, 64))} is not an IP address`,
    );
  return { host, port: readPort(r, what) };
}

function readPort(r: ByteReader, what: string): number {
  const port = r.u16();
  if (port === 0) throw new ProtocolError("BAD_FIELD", `${what}: port 0`);
  return port;
}

// Encoders refuse what decoders would: a bug here must not cost us the link.
function checkEndpoint(e: Endpoint): void {
  if (!isIP(e.host)) throw new Error(`${JSON.stringify(e.host)} is not an IP address`);
  checkPort(e.port);
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new Error(`bad port ${port}`);
}

function checkAttempt(attempt: number): void {
  if (!Number.isInteger(attempt) || attempt < 1 || attempt > 0xff)
    throw new Error(`bad punch attempt ${attempt}`);
}
