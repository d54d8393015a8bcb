/**
 * Invitation tickets: one line of text that carries everything a newcomer needs to join
 * a room (its name, a peer's node id, the addresses it listens on). Pure codec: no I/O.
 *
 * Text: `pc1` + base32 (RFC 4648, lower case, no padding) of `payload | checksum`, the
 * checksum the first {@link TICKET_CHECKSUM_BYTES} bytes of SHA-256(payload).
 * payload = `version:u8 = 1 | room:str | nodeId:32 | count:u8 (1–8) | count × (host:str | port:u16)`.
 *
 * A ticket holds the room name, which is the room's only secret: it is never quoted in
 * a reason, and whoever holds a ticket can join the room.
 */

import { createHash } from "node:crypto";
import { ProtocolError } from "../errors.ts";
import { ByteReader, decodeUtf8 } from "../protocol/byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "../protocol/byte-writer.ts";
import { NODE_ID_BYTES } from "../protocol/constants.ts";
import type { Endpoint } from "../protocol/endpoint.ts";
import { isIP } from "../protocol/ip.ts";
import { MAX_ROOM_BYTES, roomNameProblem } from "../secure/room.ts";
import { base32Length, decodeBase32, encodeBase32 } from "./base32.ts";

/** What every ticket starts with; `1` is not a base32 symbol, so it cannot be mistaken for data. */
export const TICKET_PREFIX = "pc1";

/** The ticket layout this peerchat writes and reads. */
export const TICKET_VERSION = 1;

/** Most addresses one ticket lists. */
export const MAX_TICKET_ADDRESSES = 8;

/** Bytes of SHA-256(payload) appended to the payload: a typo passes unnoticed once in 2^32. */
export const TICKET_CHECKSUM_BYTES = 4;

/** Longest host in a ticket, in bytes: a DNS name's limit (RFC 1035), and more than any IP literal. */
export const MAX_TICKET_HOST_BYTES = 253;

/** Bytes of the largest payload: every field at its limit. */
const MAX_PAYLOAD_BYTES =
  1 +
  2 +
  MAX_ROOM_BYTES +
  NODE_ID_BYTES +
  1 +
  MAX_TICKET_ADDRESSES * (2 + MAX_TICKET_HOST_BYTES + 2);

/** Longest ticket text, prefix included (3,767 characters); anything longer is refused unread. */
export const MAX_TICKET_CHARS =
  TICKET_PREFIX.length + base32Length(MAX_PAYLOAD_BYTES + TICKET_CHECKSUM_BYTES);

/** What a ticket says: the room, a peer in it, and where that peer listens. */
export interface Ticket {
  /** The room's name (NFC): its secret. */
  readonly room: string;
  /** The inviting peer's node id (its public key). */
  readonly nodeId: Uint8Array;
  /** Where the inviting peer listens: IP literals or host names; 1 to {@link MAX_TICKET_ADDRESSES}. */
  readonly addresses: readonly Endpoint[];
}

/** Why a text is not a usable ticket. */
export type TicketProblemCode =
  /** It does not start with {@link TICKET_PREFIX}, or is far too long to be one. */
  | "NOT_A_TICKET"
  /** A character is wrong, missing or extra: the checksum or the base32 says so. */
  | "DAMAGED"
  /** Written by a peerchat with a ticket layout this one does not know. */
  | "UNSUPPORTED_VERSION"
  /** Intact, but a field breaks the rules (a room name, an address): made by no peerchat. */
  | "BAD_FIELD";

/** {@link decodeTicket}'s answer; `reason` is a sentence for the user, never quoting the room. */
export type TicketDecoding =
  | { readonly ok: true; readonly ticket: Ticket }
  | { readonly ok: false; readonly code: TicketProblemCode; readonly reason: string };

const NOT_A_TICKET = "not a peerchat ticket (it should start with pc1)";
const DAMAGED =
  "this ticket is damaged: a character is wrong or missing (its checksum does not match); copy it again";

/**
 * The ticket text for `ticket`. Throws if a field breaks the rules a decoder checks (a
 * bug in the caller: the addresses come from this peer's own listener).
 */
export function encodeTicket(ticket: Ticket): string {
  const problem = ticketProblem(ticket);
  if (problem) throw new Error(`cannot make a ticket: ${problem}`);
  const room = encodeUtf8(ticket.room.normalize("NFC"));
  const hosts = ticket.addresses.map((a) => encodeUtf8(a.host));
  const size =
    1 + 2 + room.length + NODE_ID_BYTES + 1 + hosts.reduce((n, h) => n + 2 + h.length + 2, 0);
  const w = new ByteWriter(size + TICKET_CHECKSUM_BYTES)
    .u8(TICKET_VERSION)
    .str(room)
    .bytes(ticket.nodeId)
    .u8(ticket.addresses.length);
  ticket.addresses.forEach((a, i) => {
    w.str(hosts[i] as Uint8Array).u16(a.port);
  });
  w.bytes(checksum(w.buf.subarray(0, size)));
  return TICKET_PREFIX + encodeBase32(w.done());
}

/**
 * Reads a ticket as pasted: surrounding and embedded white space (a line wrapped by a
 * terminal) is ignored, and upper case reads as lower. Never throws: any text gets an
 * answer, and an intact ticket with a field out of bounds is refused like a damaged one.
 */
export function decodeTicket(text: string): TicketDecoding {
  // Bounded before any work: a pasted file is not decoded.
  if (text.length > MAX_TICKET_CHARS * 2) return refuse("NOT_A_TICKET", NOT_A_TICKET);
  const clean = text.replace(/\s+/g, "").toLowerCase();
  if (!clean.startsWith(TICKET_PREFIX)) return refuse("NOT_A_TICKET", NOT_A_TICKET);
  if (clean.length > MAX_TICKET_CHARS) return refuse("DAMAGED", DAMAGED);
  const decoded = decodeBase32(clean.slice(TICKET_PREFIX.length));
  if (!decoded.ok) {
    if (decoded.problem.kind === "length") return refuse("DAMAGED", DAMAGED);
    const bad = clean[TICKET_PREFIX.length + decoded.problem.index] as string;
    return refuse(
      "DAMAGED",
      `this ticket is damaged: it holds ${JSON.stringify(bad)}, which no ticket has (only a–z and 2–7 follow pc1); copy it again`,
    );
  }
  const bytes = decoded.bytes;
  if (bytes.length <= TICKET_CHECKSUM_BYTES) return refuse("DAMAGED", DAMAGED);
  const payload = bytes.subarray(0, bytes.length - TICKET_CHECKSUM_BYTES);
  const sum = checksum(payload);
  for (let i = 0; i < TICKET_CHECKSUM_BYTES; i++)
    if (sum[i] !== bytes[payload.length + i]) return refuse("DAMAGED", DAMAGED);
  const version = payload[0] as number;
  if (version !== TICKET_VERSION) {
    return refuse(
      "UNSUPPORTED_VERSION",
      version > TICKET_VERSION
        ? `this ticket is from a newer peerchat (ticket version ${version}; this one reads version ${TICKET_VERSION}): update peerchat to use it`
        : `this ticket has version ${version}, which no peerchat writes`,
    );
  }
  let ticket: Ticket;
  try {
    ticket = readPayload(payload);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    const why = error.code === "TRUNCATED" ? "it ends in the middle of a field" : error.message;
    return refuse("BAD_FIELD", `this ticket is not valid: ${why}`);
  }
  const problem = ticketProblem(ticket);
  if (problem) return refuse("BAD_FIELD", `this ticket is not valid: ${problem}`);
  return { ok: true, ticket };
}

/** Reads the fields after the checksum and version are known to be right; throws {@link ProtocolError}. */
function readPayload(payload: Uint8Array): Ticket {
  const r = new ByteReader(payload);
  r.u8();
  const roomLength = r.u16();
  // Checked before reading: the bounds hold for the bytes, not only for the text.
  if (roomLength > MAX_ROOM_BYTES)
    throw new ProtocolError("BAD_FIELD", `the room name is longer than ${MAX_ROOM_BYTES} bytes`);
  const room = decodeUtf8(r.bytes(roomLength), "the room name");
  const nodeId = r.bytes(NODE_ID_BYTES).slice();
  const count = r.u8();
  if (count === 0 || count > MAX_TICKET_ADDRESSES)
    throw new ProtocolError("BAD_FIELD", addressCountProblem(count));
  const addresses: Endpoint[] = [];
  for (let i = 0; i < count; i++) {
    const hostLength = r.u16();
    if (hostLength > MAX_TICKET_HOST_BYTES)
      throw new ProtocolError(
        "BAD_FIELD",
        `address ${i + 1}: the host is longer than ${MAX_TICKET_HOST_BYTES} bytes`,
      );
    const host = decodeUtf8(r.bytes(hostLength), `address ${i + 1}`);
    addresses.push({ host, port: r.u16() });
  }
  if (r.remaining !== 0)
    throw new ProtocolError("BAD_FIELD", `it has ${r.remaining} bytes after its last address`);
  return { room, nodeId, addresses };
}

/**
 * Why `ticket` cannot be written or used, or undefined if it can: the room name's
 * rules, a 32-byte node id, 1–8 addresses, each an IP literal or a host name with a
 * port from 1 to 65535.
 */
export function ticketProblem(ticket: Ticket): string | undefined {
  const room = roomNameProblem(ticket.room);
  if (room) return room;
  if (ticket.nodeId.length !== NODE_ID_BYTES) return `the node id is not ${NODE_ID_BYTES} bytes`;
  const count = ticket.addresses.length;
  if (count === 0 || count > MAX_TICKET_ADDRESSES) return addressCountProblem(count);
  for (const [i, a] of ticket.addresses.entries()) {
    const host = hostProblem(a.host);
    if (host) return `address ${i + 1}: ${host}`;
    if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65_535)
      return `address ${i + 1}: the port must be from 1 to 65535, not ${a.port}`;
  }
  return undefined;
}

/** A DNS label: letters, digits, inner hyphens, 1–63 characters. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Why `host` is neither an IP literal nor a host name, or undefined. Names follow the
 * preferred syntax of RFC 1123 (ASCII letters, digits, hyphens; dotted labels), with a
 * last label not all digits (RFC 3696 §2): `999.1.1.1` is no address and no name.
 */
function hostProblem(host: string): string | undefined {
  if (isIP(host)) return undefined;
  if (host.length === 0) return "the host is empty";
  if (host.length > MAX_TICKET_HOST_BYTES)
    return `the host is longer than ${MAX_TICKET_HOST_BYTES} bytes`;
  const labels = host.split(".");
  if (!labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1) as string))
    return "the host is not an IP address or a host name";
  return undefined;
}

function addressCountProblem(count: number): string {
  return count === 0
    ? "it lists no address"
    : `it lists ${count} addresses, more than ${MAX_TICKET_ADDRESSES}`;
}

function checksum(payload: Uint8Array): Uint8Array {
  return createHash("sha256").update(payload).digest().subarray(0, TICKET_CHECKSUM_BYTES);
}

function refuse(code: TicketProblemCode, reason: string): TicketDecoding {
  return { ok: false, code, reason };
}
