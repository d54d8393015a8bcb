import { hkdfSync } from "node:crypto";

/** The room every peer joins unless told otherwise. */
export const DEFAULT_ROOM = "lobby";

/** Longest room name, in UTF-8 bytes of its NFC form: a passphrase, not a document. */
export const MAX_ROOM_BYTES = 256;

/** Bytes of a Noise pre-shared key. */
export const ROOM_KEY_BYTES = 32;

// HKDF inputs (docs/PROTOCOL.md, "Rooms"). Changing either splits every room in two.
const ROOM_KEY_SALT = new TextEncoder().encode("peerchat room salt v2");
const ROOM_KEY_INFO = new TextEncoder().encode("peerchat room psk");

/**
 * The bytes a room name stands for: the UTF-8 of its NFC form, so that "é" as one code
 * point and as "e" plus a combining accent (NFD, as macOS file names hold it) name one
 * room. Nothing else is folded: case and spaces, leading and trailing ones too, count.
 */
function roomNameBytes(name: string): Uint8Array {
  return new TextEncoder().encode(name.normalize("NFC"));
}

/**
 * The Noise pre-shared key of room `name`: HKDF-SHA256 (RFC 5869) of the UTF-8 of its NFC
 * form. Peers that derive different keys fail the handshake at its first message, so a
 * secret room name keeps a room private. The name itself is a secret: never log it.
 */
export function roomKey(name: string): Uint8Array {
  return new Uint8Array(
    hkdfSync("sha256", roomNameBytes(name), ROOM_KEY_SALT, ROOM_KEY_INFO, ROOM_KEY_BYTES),
  );
}

/**
 * Why `name` cannot be a room name, or undefined if it can: empty, or longer than
 * {@link MAX_ROOM_BYTES} once normalised. The text never quotes the name (a secret).
 */
export function roomNameProblem(name: string): string | undefined {
  const bytes = roomNameBytes(name).length;
  if (bytes === 0) return "the room name is empty";
  if (bytes > MAX_ROOM_BYTES) return `the room name is longer than ${MAX_ROOM_BYTES} bytes`;
  return undefined;
}
