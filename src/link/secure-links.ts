import type { Identity } from "../secure/identity.ts";
import { secureDialer } from "../secure/secure-dialer.ts";
import { channelOptions, secureStream } from "../secure/secure-stream.ts";
import type { ByteStream, StreamDial } from "../transport/byte-stream.ts";
import { dialTcp } from "../transport/tcp.ts";
import { type Connection, type Dial, FrameConnection } from "./connection.ts";

/** How one peer's links are built, for both directions. */
export interface LinkFactory {
  /** Dials an endpoint: a stream, the secure channel over it, frames over that. */
  readonly dial: Dial;
  /** Wraps an accepted stream the same way. */
  accept(stream: ByteStream): Connection;
}

/**
 * The one assembly of a link: transport → secure channel (Noise XXpsk0 with the room's
 * key, HELLO signed by `identity`) → frames. The chat and `peerchat send` both use it.
 *
 * @param dialStream opens the byte stream under the channel: TCP unless a test injects faults
 */
export function secureLinks(
  identity: Identity,
  room: string,
  dialStream: StreamDial = dialTcp,
): LinkFactory {
  const channel = channelOptions(identity, room);
  const dialSecure = secureDialer(dialStream, channel);
  return {
    async dial(endpoint) {
      const result = await dialSecure(endpoint);
      return result.ok
        ? { ok: true, connection: new FrameConnection(result.stream) }
        : { ok: false, error: result.error };
    },
    accept: (stream) => new FrameConnection(secureStream(stream, channel)),
  };
}
