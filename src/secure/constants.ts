/**
 * The secure channel's fixed strings (docs/PROTOCOL.md, "Secure channel"). Changing any
 * of them makes this peer unable to talk to every other.
 */

/** The Noise protocol every link runs. */
export const NOISE_PROTOCOL_NAME = "Noise_XXpsk0_25519_AESGCM_SHA256";

/** Mixed into the handshake hash by both sides: a handshake for anything else fails. */
export const NOISE_PROLOGUE = new TextEncoder().encode("peerchat");

/**
 * Signed, followed by the Noise static public key, by the identity key: binds the
 * identity to the link (as libp2p's `noise-libp2p-static-key:`).
 */
export const STATIC_KEY_SIGNATURE_PREFIX = new TextEncoder().encode("peerchat-noise-static-key:");

/** Bytes of the big-endian length before each Noise message. */
export const NOISE_LENGTH_BYTES = 2;

/**
 * What a dialler reports when the listener reset the connection without a byte in
 * answer: what another room's listener does (docs/PROTOCOL.md §2a, "Another room").
 */
export const HANDSHAKE_REFUSED_REASON = "different room or not a peerchat peer";

/**
 * What a dialler reports when the listener ended the connection (FIN) without a byte in
 * answer: it turned the connection away before its handshake (docs/PROTOCOL.md §2a,
 * "Turned away"), as a peer whose handshake places are taken does. Never another room:
 * that is a reset.
 */
export const HANDSHAKE_TURNED_AWAY_REASON =
  "closed without an answer: the peer is busy or shutting down, or not a peerchat peer";

/** Message 1 of XXpsk0 with its empty payload: `e` (32 bytes) and a 16-byte tag. */
export const FIRST_MESSAGE_BYTES = 48;

/**
 * Largest handshake message accepted: a HELLO (under 80 bytes), a signature, a static key
 * and tags fit many times over. Bigger is hostile, refused before it is buffered.
 */
export const MAX_HANDSHAKE_MESSAGE_BYTES = 1024;

/**
 * How long a responder refusing a connection before its handshake (a full peer) waits
 * for message 1, to answer it with its ERROR: the handshake deadline (§3).
 */
export const REFUSAL_WAIT_MS = 5000;

/** Refused connections a peer holds open at once, waiting for message 1 to answer. */
export const MAX_WAITING_REFUSALS = 32;

/**
 * Connections turned away before a byte that a peer holds open at once, half-closed,
 * until the dialler closes its end too (at most `CLOSE_FLUSH_TIMEOUT_MS`): past it, a
 * storm's extra connections are reset at once, and cost no descriptor.
 */
export const MAX_TURNING_AWAY = 128;
