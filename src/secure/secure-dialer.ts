import type { Endpoint } from "../protocol/endpoint.ts";
import type { ByteStream } from "../transport/byte-stream.ts";
import type { SecureChannelOptions } from "./channel-options.ts";
import { secureStream } from "./secure-stream.ts";

/** Wraps a dialler so that every stream it opens runs the secure channel. */
export function secureDialer<R extends { ok: true; stream: ByteStream } | { ok: false }>(
  dial: (endpoint: Endpoint) => Promise<R>,
  options: SecureChannelOptions,
): (endpoint: Endpoint) => Promise<R> {
  return async (endpoint) => {
    const result = await dial(endpoint);
    return result.ok ? { ...result, stream: secureStream(result.stream, options) } : result;
  };
}
