import { ConfigError } from "../errors.ts";
import type { Endpoint } from "../protocol/endpoint.ts";

/**
 * Parses a port. `allowZero` admits 0 (listen on any free port); a dial target must be
 * 1–65535.
 */
export function parsePort(text: string, what: string, allowZero: boolean): number {
  const min = allowZero ? 0 : 1;
  if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > 65_535) {
    throw new ConfigError(
      "BAD_ADDRESS",
      `${what} must be a number from ${min} to 65535, not "${text}"`,
    );
  }
  return Number(text);
}

/** Checks a host name or IP literal enough to reject typos before any socket is made. */
export function parseHost(text: string, what: string): string {
  const host = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (host.length === 0 || host.length > 253 || /[\s/\\@#?]/.test(host)) {
    throw new ConfigError("BAD_ADDRESS", `${what} "${text}" is not a host name or IP address`);
  }
  return host;
}

/** Parses `HOST:PORT`, with IPv6 hosts bracketed: `[::1]:9000`. */
export function parseEndpoint(text: string, what = "peer address"): Endpoint {
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (v6)
    return {
      host: parseHost(v6[1] as string, what),
      port: parsePort(v6[2] as string, `${what} port`, false),
    };
  const colon = text.lastIndexOf(":");
  if (colon <= 0 || colon === text.length - 1) {
    throw new ConfigError(
      "BAD_ADDRESS",
      `${what} "${text}" must look like HOST:PORT (IPv6 as [addr]:port)`,
    );
  }
  const host = text.slice(0, colon);
  if (host.includes(":")) {
    throw new ConfigError(
      "BAD_ADDRESS",
      `${what} "${text}": put IPv6 addresses in brackets, as [${host}]:${text.slice(colon + 1)}`,
    );
  }
  return {
    host: parseHost(host, what),
    port: parsePort(text.slice(colon + 1), `${what} port`, false),
  };
}
