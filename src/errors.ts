/**
 * The few error classes peerchat throws. Each carries a stable `code` that tests and
 * callers branch on; the message is for people and may change.
 *
 * Expected outcomes (a duplicate message, a refused dial) are returned as values, not
 * thrown. These classes are for input that breaks the protocol, I/O failures and bad
 * configuration.
 */

/** Codes for {@link ProtocolError}: the remote broke the wire protocol. */
export type ProtocolErrorCode =
  | "FRAME_TOO_LARGE"
  | "FRAME_EMPTY"
  | "BAD_FRAME_TYPE"
  | "TRUNCATED"
  | "TRAILING_BYTES"
  | "BAD_UTF8"
  | "BAD_FIELD"
  | "BAD_HANDSHAKE"
  | "VERSION_MISMATCH";

/** The remote peer sent bytes that do not follow docs/PROTOCOL.md. Closes that link only. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes for {@link ConnectionError}: a socket could not be opened or was lost. */
export type ConnectionErrorCode =
  | "ADDRESS_IN_USE"
  | "ADDRESS_UNAVAILABLE"
  | "BAD_ADDRESS"
  | "REFUSED"
  | "UNREACHABLE"
  | "TIMEOUT"
  | "CLOSED";

/** A listen or dial failed at the operating-system level. */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  constructor(
    readonly code: ConnectionErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes for {@link ConfigError}: the user asked for something that cannot work. */
export type ConfigErrorCode =
  | "BAD_ARGUMENT"
  | "BAD_ADDRESS"
  | "BAD_NICK"
  | "BAD_TEXT"
  | "BAD_IDENTITY"
  /** An invitation ticket that is damaged or not one: the message says which. */
  | "BAD_TICKET";

/** Invalid command-line arguments or options; the CLI exits with status 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly code: ConfigErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes for {@link NoiseError}: local code misused the Noise handshake or a cipher. */
export type NoiseErrorCode =
  | "BAD_PROTOCOL_NAME"
  | "BAD_KEY"
  | "BAD_PSK"
  | "MISSING_KEY"
  | "OUT_OF_ORDER"
  | "HANDSHAKE_FAILED"
  | "MESSAGE_TOO_LARGE"
  | "NONCE_EXHAUSTED";

/**
 * A Noise handshake or cipher state was configured or called wrongly: a bug on this
 * side. Bad bytes from the remote are not thrown; `readMessage` and `decrypt` return
 * them as `{ ok: false, reason }` values.
 */
export class NoiseError extends Error {
  override readonly name = "NoiseError";
  constructor(
    readonly code: NoiseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes for {@link StoreError}: the message store on disk cannot be used. */
export type StoreErrorCode =
  /** The file is not a peerchat store (or not a database at all). */
  | "CORRUPT"
  /** The file or its directory cannot be read or created. */
  | "UNREADABLE"
  /** The directory or file cannot be written. */
  | "READ_ONLY"
  /** Another peerchat holds this store. */
  | "IN_USE";

/** The history store cannot be opened; the CLI exits with status 1 and says what to do. */
export class StoreError extends Error {
  override readonly name = "StoreError";
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
