/**
 * Turning away a protocol version 1 peer, which speaks frames in the clear
 * (docs/PROTOCOL.md §2a, "Errors before keys").
 */

import {
  FRAME_HEADER_BYTES,
  FrameType,
  HELLO_MAGIC,
  PROTOCOL_VERSION,
  WireErrorCode,
} from "../protocol/constants.ts";
import { encodeError } from "../protocol/control.ts";

/** What this side reports when it turns a version 1 peer away. */
export const VERSION_ONE_REASON = "peer speaks protocol version 1";

/** A v1 HELLO frame: `u32 length | 0x01 | "PCHT"`. A Noise message 1 never starts so. */
export function looksLikeV1Hello(buf: Uint8Array): boolean {
  if (buf.length < FRAME_HEADER_BYTES + 1 + HELLO_MAGIC.length) return false;
  if (buf[0] !== 0 || buf[FRAME_HEADER_BYTES] !== FrameType.Hello) return false;
  return HELLO_MAGIC.every((b, i) => buf[FRAME_HEADER_BYTES + 1 + i] === b);
}

/** The plaintext v1 ERROR 3 a v1 peer can read: why it is turned away. */
export function versionOneRefusal(): Uint8Array {
  const message = `this peer speaks protocol version ${PROTOCOL_VERSION}, not 1`;
  return encodeError({ code: WireErrorCode.VersionMismatch, message });
}
