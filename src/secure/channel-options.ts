import { generateKeyPair, type KeyPair } from "../noise/primitives.ts";
import type { Identity } from "./identity.ts";
import { roomKey } from "./room.ts";

/** What a secure channel needs to know about this peer. */
export interface SecureChannelOptions {
  /** Signs the Noise static key, binding the identity (the node id) to the link. */
  readonly identity: Identity;
  /** This process's X25519 key pair for Noise. */
  readonly staticKey: KeyPair;
  /** The room's pre-shared key (room.ts): peers in other rooms fail at message 1. */
  readonly roomKey: Uint8Array;
}

/**
 * A test-vector seam (docs/PROTOCOL.md §9): fixes the ephemeral key of one stream's
 * handshake, so that its bytes can be reproduced. Never for real links: an ephemeral key
 * used twice voids the forward secrecy of both sessions.
 */
export interface FixedEphemeral {
  readonly ephemeralKey: KeyPair;
}

/** The options for a peer's secure channels: a fresh Noise static key, the room's PSK. */
export function channelOptions(identity: Identity, room: string): SecureChannelOptions {
  // The Noise static key lives as long as the process; the identity signs it per link.
  return { identity, staticKey: generateKeyPair(), roomKey: roomKey(room) };
}
