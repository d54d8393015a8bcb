import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { FrameType, MAX_REASON_BYTES } from "./constants.ts";

/** Encodes a PING frame. */
export function encodePing(nonce: bigint): Uint8Array {
  return ByteWriter.frame(FrameType.Ping, 8).u64BigInt(nonce).done();
}

/** Encodes a PONG frame echoing a PING's nonce. */
export function encodePong(nonce: bigint): Uint8Array {
  return ByteWriter.frame(FrameType.Pong, 8).u64BigInt(nonce).done();
}

/** Decodes a PING or PONG payload: the nonce. */
export function decodeNonce(payload: Uint8Array, what: "PING" | "PONG"): bigint {
  const r = new ByteReader(payload);
  const nonce = r.u64BigInt();
  r.end(what);
  return nonce;
}

/** Encodes a BYE frame: a graceful leave. */
export function encodeBye(reason: string): Uint8Array {
  const bytes = truncateUtf8(reason, MAX_REASON_BYTES);
  return ByteWriter.frame(FrameType.Bye, 2 + bytes.length)
    .str(bytes)
    .done();
}

/** Decodes a BYE payload: the reason. */
export function decodeBye(payload: Uint8Array): string {
  const r = new ByteReader(payload);
  const reason = r.str("BYE reason");
  r.end("BYE");
  return reason;
}

/** An ERROR frame's content. */
export interface WireError {
  readonly code: number;
  readonly message: string;
}

/** Encodes an ERROR frame, sent best-effort before closing on a protocol error. */
export function encodeError(error: WireError): Uint8Array {
  const bytes = truncateUtf8(error.message, MAX_REASON_BYTES);
  return ByteWriter.frame(FrameType.Error, 2 + 2 + bytes.length)
    .u16(error.code)
    .str(bytes)
    .done();
}

/** Decodes an ERROR payload. */
export function decodeError(payload: Uint8Array): WireError {
  const r = new ByteReader(payload);
  const code = r.u16();
  const message = r.str("ERROR message");
  r.end("ERROR");
  return { code, message };
}

/** UTF-8 bytes of `s`, cut at a character boundary to at most `max` bytes. */
export function truncateUtf8(s: string, max: number): Uint8Array {
  const bytes = encodeUtf8(s);
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back up over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
