/**
 * Wire protocol constants. docs/PROTOCOL.md is the contract; every number here is
 * quoted from it.
 */

/** Version carried in HELLO. */
export const PROTOCOL_VERSION = 2;

/** HELLO starts with these four bytes: ASCII "PCHT". */
export const HELLO_MAGIC = Uint8Array.of(0x50, 0x43, 0x48, 0x54);

/** Bytes of the u32 length prefix that starts every frame. */
export const FRAME_HEADER_BYTES = 4;

/** Largest value of the length prefix (type byte + payload). */
export const MAX_FRAME_BYTES = 65_536;

/** Size of a node identifier (will become an Ed25519 public key). */
export const NODE_ID_BYTES = 32;

/** Size of an Ed25519 signature (FLOOD, handshake). */
export const SIGNATURE_BYTES = 64;

/** Size of a FLOOD message identifier. */
export const MESSAGE_ID_BYTES = 16;

/** Nick length limits, in UTF-8 bytes. */
export const MIN_NICK_BYTES = 1;
export const MAX_NICK_BYTES = 32;

/** Chat text length limits, in UTF-8 bytes. */
export const MIN_TEXT_BYTES = 1;
export const MAX_TEXT_BYTES = 4096;

/** Longest LEAVE reason, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 256;

/** A FLOOD is not forwarded once `hops + 1` would reach this. */
export const MAX_HOPS = 16;

/** Frame type byte (the byte after the length prefix). */
export const FrameType = {
  Hello: 0x01,
  Flood: 0x02,
  Peers: 0x03,
  Ping: 0x04,
  Pong: 0x05,
  Bye: 0x06,
  Error: 0x07,
  /** Reconciliation of the messages two neighbours hold (§5c). */
  Sync: 0x08,
  /** A stored message delivered by sync: a FLOOD payload, never relayed as a FLOOD. */
  History: 0x09,
  /** Reachability: the address a neighbour sees us at, and dial-backs. */
  Reach: 0x0a,
  /** Relay circuits: a byte stream between two neighbours of a relay, which reads none of it. */
  Circuit: 0x0b,
  /** Hole punching: coordination of a TCP simultaneous open over a relayed link. */
  Punch: 0x0c,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Human-readable names, for traces and logs. */
export const FRAME_TYPE_NAMES: Readonly<Record<number, string>> = {
  [FrameType.Hello]: "HELLO",
  [FrameType.Flood]: "FLOOD",
  [FrameType.Peers]: "PEERS",
  [FrameType.Ping]: "PING",
  [FrameType.Pong]: "PONG",
  [FrameType.Bye]: "BYE",
  [FrameType.Error]: "ERROR",
  [FrameType.Sync]: "SYNC",
  [FrameType.History]: "HISTORY",
  [FrameType.Reach]: "REACH",
  [FrameType.Circuit]: "CIRCUIT",
  [FrameType.Punch]: "PUNCH",
};

/** FLOOD `kind` byte. Relays forward every kind, known or not. */
export const FloodKind = {
  Chat: 0x01,
  /** Presence: a peer joined the network. Body: `nick:str`. */
  Join: 0x02,
  /** Presence: a peer is leaving. Body: `reason:str`. */
  Leave: 0x03,
  /** Presence: a peer changed its nick. Body: the new `nick:str`. */
  Nick: 0x04,
  /** Presence: a peer is still here (every 30 s). Body: `nick:str`. */
  Alive: 0x05,
  /** A direct message or receipt, sealed to one recipient (§6a); origin is a one-time key. */
  Direct: 0x06,
} as const;
export type FloodKind = (typeof FloodKind)[keyof typeof FloodKind];

/** Human-readable FLOOD kind names, for traces. */
export const FLOOD_TYPE_NAMES_BY_KIND: Readonly<Record<number, string>> = {
  [FloodKind.Chat]: "CHAT",
  [FloodKind.Join]: "JOIN",
  [FloodKind.Leave]: "LEAVE",
  [FloodKind.Nick]: "NICK",
  [FloodKind.Alive]: "ALIVE",
  [FloodKind.Direct]: "DIRECT",
};

/** Codes carried in an ERROR frame (u16). Stable: other implementations match on them. */
export const WireErrorCode = {
  /** Length prefix of 0 or above MAX_FRAME_BYTES, or a frame whose fields do not parse. */
  BadFrame: 1,
  /** First frame was not a valid HELLO. */
  BadHandshake: 2,
  /** HELLO carried a version this peer does not speak. */
  VersionMismatch: 3,
  /** No HELLO arrived within the handshake deadline. */
  HandshakeTimeout: 4,
  /** A field broke a limit: nick or text length, control characters, invalid UTF-8. */
  BadMessage: 5,
  /** The peer is at its connection cap. */
  TooManyPeers: 6,
  /** The receiver did not keep up; its backlog passed the cap. */
  SlowConsumer: 7,
  /** A bug on the sending side; the link is closed as a precaution. */
  Internal: 8,
  /** The neighbour kept relaying FLOODs whose signatures do not verify. */
  BadSignature: 9,
  /** The neighbour kept sending FLOODs faster than the documented rate limits. */
  RateLimited: 10,
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

/** Names of the ERROR codes, for logs: `ERROR 5 BAD_MESSAGE`. */
export const WIRE_ERROR_NAMES: Readonly<Record<number, string>> = {
  [WireErrorCode.BadFrame]: "BAD_FRAME",
  [WireErrorCode.BadHandshake]: "BAD_HANDSHAKE",
  [WireErrorCode.VersionMismatch]: "VERSION_MISMATCH",
  [WireErrorCode.HandshakeTimeout]: "HANDSHAKE_TIMEOUT",
  [WireErrorCode.BadMessage]: "BAD_MESSAGE",
  [WireErrorCode.TooManyPeers]: "TOO_MANY_PEERS",
  [WireErrorCode.SlowConsumer]: "SLOW_CONSUMER",
  [WireErrorCode.Internal]: "INTERNAL",
  [WireErrorCode.BadSignature]: "BAD_SIGNATURE",
  [WireErrorCode.RateLimited]: "RATE_LIMITED",
};
