import { FrameType } from "../protocol/constants.ts";
import { decodeBye, decodeError } from "../protocol/control.ts";
import type { Frame } from "../protocol/frame-decoder.ts";

/** The reason in a BYE or ERROR, tolerating a malformed one (the link is ending anyway). */
export function describeFarewell(frame: Frame): string {
  try {
    if (frame.type === FrameType.Bye) return decodeBye(frame.payload) || "left";
    const error = decodeError(frame.payload);
    return error.message || `error ${error.code}`;
  } catch {
    return frame.type === FrameType.Bye ? "left (malformed BYE)" : "malformed ERROR";
  }
}
