/**
 * The payload of Noise messages 2 and 3 (docs/PROTOCOL.md §2a, "Identity"): the sender's
 * HELLO payload, then a signature by its identity key over its Noise static key. (A
 * message 2 may carry a refusal instead: handshake-refusal.ts.)
 */

import { concatBytes } from "../protocol/bytes.ts";
import {
  FRAME_HEADER_BYTES,
  FrameType,
  HELLO_MAGIC,
  NODE_ID_BYTES,
  PROTOCOL_VERSION,
  SIGNATURE_BYTES,
} from "../protocol/constants.ts";
import { STATIC_KEY_SIGNATURE_PREFIX } from "./constants.ts";
import { type Identity, verifySignature } from "./identity.ts";

// Offset of the node id inside a HELLO payload: magic, then the version byte.
const HELLO_NODE_ID_OFFSET = HELLO_MAGIC.length + 1;

/** What the identity key signs: the link's Noise static key, domain-separated. */
function staticKeyStatement(staticPublicKey: Uint8Array): Uint8Array {
  return concatBytes([STATIC_KEY_SIGNATURE_PREFIX, staticPublicKey]);
}

/**
 * This side's handshake payload: `hello` (a HELLO payload, without length and type byte)
 * followed by `identity`'s signature over `staticPublicKey`.
 */
export function signedHandshakePayload(
  hello: Uint8Array,
  identity: Identity,
  staticPublicKey: Uint8Array,
): Uint8Array {
  return concatBytes([hello, identity.sign(staticKeyStatement(staticPublicKey))]);
}

/** Outcome of {@link checkHandshakePayload}: the remote's HELLO as a whole frame, or why not. */
export type RemoteHello =
  | { readonly ok: true; readonly frame: Uint8Array }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks the remote's handshake payload: the signature (its last 64 bytes) must verify
 * with the node id its HELLO names, over the static key Noise authenticated. Returns the
 * HELLO as a frame (`u32 length | 0x01 | payload`) for the node. A HELLO whose magic or
 * version differs is returned unchecked (another version may lay it out differently):
 * the node refuses it with an ERROR that names both versions.
 */
export function checkHandshakePayload(
  payload: Uint8Array,
  remoteStatic: Uint8Array | undefined,
): RemoteHello {
  if (payload.length < SIGNATURE_BYTES + HELLO_NODE_ID_OFFSET || !remoteStatic) {
    return { ok: false, reason: "handshake carried no HELLO" };
  }
  const hello = payload.subarray(0, payload.length - SIGNATURE_BYTES);
  const signature = payload.subarray(payload.length - SIGNATURE_BYTES);
  const sameVersion =
    HELLO_MAGIC.every((b, i) => hello[i] === b) && hello[HELLO_MAGIC.length] === PROTOCOL_VERSION;
  if (sameVersion) {
    const nodeId = hello.subarray(HELLO_NODE_ID_OFFSET, HELLO_NODE_ID_OFFSET + NODE_ID_BYTES);
    if (
      nodeId.length !== NODE_ID_BYTES ||
      !verifySignature(nodeId, staticKeyStatement(remoteStatic), signature)
    ) {
      return { ok: false, reason: "handshake: the identity signature does not match the node id" };
    }
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + 1 + hello.length);
  new DataView(frame.buffer).setUint32(0, 1 + hello.length);
  frame[FRAME_HEADER_BYTES] = FrameType.Hello;
  frame.set(hello, FRAME_HEADER_BYTES + 1);
  return { ok: true, frame };
}

/**
 * Splits the node's first frame, its HELLO, off the plaintext it has queued: the HELLO
 * payload and the bytes after it, or undefined while the frame is incomplete. Throws if
 * that frame is not a HELLO (a bug in the layer above: nothing the remote sent).
 */
export function takeHelloFrame(
  queued: Uint8Array,
): { readonly hello: Uint8Array; readonly rest: Uint8Array } | undefined {
  if (queued.length < FRAME_HEADER_BYTES) return undefined;
  const length = new DataView(queued.buffer, queued.byteOffset, queued.byteLength).getUint32(0);
  if (queued.length < FRAME_HEADER_BYTES + length) return undefined;
  if (queued[FRAME_HEADER_BYTES] !== FrameType.Hello) {
    throw new Error("the first frame written to a secure stream must be HELLO");
  }
  return {
    hello: queued.slice(FRAME_HEADER_BYTES + 1, FRAME_HEADER_BYTES + length),
    rest: queued.subarray(FRAME_HEADER_BYTES + length),
  };
}
