/**
 * Where a peer is, and which side opened a link: facts every layer from the transport
 * up to the interfaces speaks of, so they live below all of them.
 */

/** Who opened the connection: `outbound` = we dialled, `inbound` = they dialled us. */
export type Direction = "inbound" | "outbound";

/** A host and port. IPv6 hosts are bare (`::1`), bracketed only when formatted. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Formats an endpoint as `host:port`, bracketing IPv6 hosts: `[::1]:9000`. */
export function formatEndpoint(e: Endpoint): string {
  return e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
