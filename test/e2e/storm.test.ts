import { afterEach, describe, expect, test } from "bun:test";
import net from "node:net";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { startPeer } from "../../src/start-peer.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { testLogger } from "../helpers/logger.ts";
import { waitFor } from "../helpers/wait-for.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/**
 * What a slowloris sends: nothing, or the length of a message 1 and a few of its bytes,
 * so that the listener waits for the rest until its handshake deadline.
 */
const SLOW_START = Uint8Array.of(0, 48, 1, 2, 3, 4, 5, 6);

/**
 * A reconnect flood: `perSource` sockets from each of `sources` (other loopback
 * addresses than the joiner's 127.0.0.1), each one silent or slow, each reopened the
 * moment it closes, for as long as the storm lasts.
 */
class ReconnectFlood {
  /** Connections the victim has closed on us (turned away, reset or timed out). */
  closed = 0;
  private readonly sockets = new Set<net.Socket>();
  private stopped = false;

  constructor(
    private readonly at: Endpoint,
    sources: readonly string[],
    perSource: number,
  ) {
    for (const source of sources)
      for (let i = 0; i < perSource; i++) this.open(source, i % 2 === 1);
  }

  private open(source: string, slow: boolean): void {
    if (this.stopped) return;
    const socket = net.connect({ host: this.at.host, port: this.at.port, localAddress: source });
    this.sockets.add(socket);
    socket.on("connect", () => {
      if (slow) socket.write(SLOW_START);
    });
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (this.stopped) return;
      this.closed++;
      this.open(source, slow);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const socket of this.sockets) socket.destroy();
  }
}

describe("a reconnect flood", () => {
  test("256 slowloris sockets from 8 addresses, each reopened as it closes: a new peer from another address still joins within 5 s", async () => {
    const victim = new CliProcess(fromSource, ["127.0.0.1", "0", "--quiet", "--nick", "victim"]);
    cleanup.push(() => victim.stop());
    const at = { host: "127.0.0.1", port: await listenPortOf(victim) };

    const sources = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
    const flood = new ReconnectFlood(at, sources, 32);
    cleanup.push(() => flood.stop());
    // Every handshake place is taken: the victim has been turning connections away.
    await waitFor(
      () => flood.closed >= 500,
      10_000,
      () => `the storm (${flood.closed} closed)`,
    );

    const log = testLogger(4);
    const joiner = startPeer({
      host: "127.0.0.1",
      port: 0,
      nick: "joiner",
      degree: 0,
      logger: log.logger,
      peers: [at],
    });
    cleanup.push(() => joiner.close());
    const started = performance.now();
    await waitFor(
      () => joiner.node.neighbourCount === 1,
      5000,
      () =>
        `the joiner's link (${flood.closed} storm connections closed); joiner said:\n${log.entries.map(log.text).join("\n")}`,
    );
    console.log(
      `joined ${(performance.now() - started).toFixed(0)} ms into a storm of 256 sockets from 8 addresses (${flood.closed} storm connections closed so far)`,
    );
    expect(joiner.node.neighbours()[0]?.nick).toBe("victim");
    // It joined during the storm, not after: the victim is still turning connections away.
    const atJoin = flood.closed;
    await waitFor(() => flood.closed >= atJoin + 100, 5000, "the storm going on");
    expect(joiner.node.neighbourCount).toBe(1);
    flood.stop();
    expect(await victim.stop()).toBe(0);
  }, 30_000);
});
