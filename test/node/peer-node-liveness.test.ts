import { afterEach, expect, test } from "bun:test";
import { FrameConnection } from "../../src/link/connection.ts";
import { DEAD_AFTER_IDLE_MS, PING_AFTER_IDLE_MS } from "../../src/node/liveness.ts";
import type { PeerDown } from "../../src/node/node-events.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { decodeNonce, encodePong } from "../../src/protocol/control.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

const nodes: PeerNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

/** A node on a fake clock, and a hand-driven neighbour that has done its HELLO. */
async function setup() {
  const clock = new FakeClock();
  const node = new PeerNode({ nick: "me", listenPort: 0, logger: testLogger(3).logger, clock });
  nodes.push(node);
  const downs: PeerDown[] = [];
  node.events.on("peer-down", (d) => downs.push(d));
  const [out, inb] = createMemoryPair();
  node.addConnection(new FrameConnection(inb));
  const decoder = new FrameDecoder();
  const frames: Array<{ type: number; payload: Uint8Array }> = [];
  out.start({
    data: (chunk) => {
      for (const f of decoder.push(chunk))
        frames.push({ type: f.type, payload: f.payload.slice() });
    },
    close() {},
  });
  out.write(encodeHello({ nodeId: new Uint8Array(32).fill(7), listenPort: 0, nick: "frozen" }));
  await waitFor(() => node.neighbourCount === 1);
  const pings = () => frames.filter((f) => f.type === FrameType.Ping);
  // The PING that follows the handshake crosses the memory link a turn later.
  await waitFor(() => pings().length === 1);
  /** Advances the clock a second at a time, as the heartbeat ticks. */
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 1000) clock.advance(1000);
    await Bun.sleep(5);
  };
  return { clock, node, downs, out, pings, advance };
}

test(`a silent neighbour gets a PING after ${PING_AFTER_IDLE_MS / 1000} s and is dropped as dead after ${DEAD_AFTER_IDLE_MS / 1000} s`, async () => {
  const { node, downs, pings, advance } = await setup();
  expect(pings()).toHaveLength(1); // right after the handshake, for the round-trip time
  await advance(PING_AFTER_IDLE_MS - 1000);
  expect(pings()).toHaveLength(1);
  await advance(1000);
  expect(pings()).toHaveLength(2);
  await advance(DEAD_AFTER_IDLE_MS - PING_AFTER_IDLE_MS - 2000);
  expect(node.neighbourCount).toBe(1);
  await advance(2000);
  await waitFor(() => downs.length === 1, 1000, "dropped");
  expect(downs[0]?.reason).toBe("timed out: no frame for 30 s");
  expect(downs[0]?.by).toBe("remote");
  expect(downs[0]?.graceful).toBe(false);
});

test("any frame counts as life; a PONG gives the round-trip time", async () => {
  const { clock, node, downs, out, pings, advance } = await setup();
  for (let i = 0; i < 6; i++) {
    await advance(PING_AFTER_IDLE_MS);
    const ping = pings().at(-1);
    expect(ping).toBeDefined();
    clock.advance(37); // the neighbour takes 37 ms to answer
    out.write(encodePong(decodeNonce(ping?.payload as Uint8Array, "PING")));
    await waitFor(() => node.neighbours()[0]?.rttMs !== undefined);
  }
  // A minute has passed, but the answers kept the link alive.
  expect(downs).toEqual([]);
  expect(node.neighbours()[0]?.rttMs).toBe(37);
});

test("a busy link is still pinged now and then, to keep its round-trip time fresh", async () => {
  const { out, pings, advance } = await setup();
  for (let s = 0; s < 31; s++) {
    out.write(encodePong(0n)); // traffic every second: never idle
    await advance(1000);
  }
  expect(pings().length).toBeGreaterThanOrEqual(1);
});
