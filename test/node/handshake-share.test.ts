import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import { secureLinks } from "../../src/link/secure-links.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { HANDSHAKE_TURNED_AWAY_REASON } from "../../src/secure/constants.ts";
import { generateIdentity } from "../../src/secure/identity.ts";
import { startPeer } from "../../src/start-peer.ts";
import { listenTcp } from "../../src/transport/tcp.ts";
import { testLogger } from "../helpers/logger.ts";
import { waitFor } from "../helpers/wait-for.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A listening peer with room for `maxPendingHandshakes` handshakes at once. */
function victim(maxPendingHandshakes: number): { node: PeerNode; at: Endpoint } {
  const identity = generateIdentity();
  const links = secureLinks(identity, "lobby");
  let node: PeerNode | undefined;
  const listener = listenTcp({
    host: "127.0.0.1",
    port: 0,
    onStream: (stream) => node?.addConnection(links.accept(stream)),
  });
  node = new PeerNode({
    nick: "victim",
    listenPort: listener.port,
    logger: testLogger(4).logger,
    identity,
    dial: links.dial,
    maxPendingHandshakes,
  });
  const self = node;
  cleanup.push(() => {
    listener.close();
    self.abort();
  });
  return { node, at: { host: "127.0.0.1", port: listener.port } };
}

/** A connection from `source` that sends nothing: it holds a handshake place until the deadline. */
interface Silent {
  readonly socket: net.Socket;
  /** Bytes the victim sent it. */
  received: number;
  /** The victim ended it with a FIN (not a reset). */
  fin: boolean;
  closed: boolean;
}

async function silent(at: Endpoint, source: string): Promise<Silent> {
  const socket = net.connect({ host: at.host, port: at.port, localAddress: source });
  const s: Silent = { socket, received: 0, fin: false, closed: false };
  socket.on("data", (chunk) => {
    s.received += chunk.length;
  });
  socket.on("end", () => {
    s.fin = true;
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    s.closed = true;
  });
  cleanup.push(() => socket.destroy());
  await new Promise((resolve) => socket.once("connect", resolve));
  return s;
}

function joiner() {
  const peer = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "joiner",
    degree: 0,
    logger: testLogger(4).logger,
  });
  cleanup.push(() => peer.close());
  return peer;
}

describe("handshake places shared between source addresses", () => {
  test("one address holding every place makes way: a dial from another address takes the place of its oldest, which is turned away with a FIN and not a byte", async () => {
    const { node, at } = victim(2);
    const older = await silent(at, "127.0.0.2");
    await waitFor(() => node.connectionCount === 1, 5000, "the first place taken");
    const newer = await silent(at, "127.0.0.2");
    await waitFor(() => node.connectionCount === 2, 5000, "both places taken");

    const outcome = await joiner().connect(at);
    expect(outcome.status).toBe("connected");
    await waitFor(() => older.closed, 5000, "the oldest handshake closed");
    expect(older).toMatchObject({ received: 0, fin: true });
    expect(newer.closed).toBe(false);
    expect(node.neighbourCount).toBe(1);
  });

  test("a dial from the address that holds every place is turned away at once, and the dialler is told the peer is busy, not that it is another room", async () => {
    const { node, at } = victim(2);
    await silent(at, "127.0.0.1");
    await silent(at, "127.0.0.1");
    await waitFor(() => node.connectionCount === 2, 5000, "both places taken");

    const outcome = await joiner().connect(at);
    expect(outcome).toMatchObject({ status: "failed", reason: HANDSHAKE_TURNED_AWAY_REASON });
    expect(node.neighbourCount).toBe(0);
  });
});
