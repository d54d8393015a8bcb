import { afterEach, expect, test } from "bun:test";
import { NO_FLOOD_LIMITS } from "../../src/node/flood-limits.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { MAX_PENDING_BYTES } from "../../src/transport/limits.ts";
import { TestNetwork } from "../helpers/network.ts";
import { type RawClient, rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
let slow: RawClient | undefined;
afterEach(async () => {
  slow?.terminate();
  await net?.close();
  net = undefined;
});

test("a neighbour that stops reading while 50 MB is published is dropped; the others receive everything", async () => {
  // Peer 0 is the hub; 1 publishes; 2 and 3 read normally; a raw client joins and never reads.
  let maxPendingToSlow = 0;
  let slowPort = -1;
  net = new TestNetwork();
  // 50 MB in 13,000 messages is a transport test, far past what the FLOOD rate limits let
  // one author send: they are off here (their own tests are in flood-limits.test.ts).
  net.add({
    floodLimits: NO_FLOOD_LIMITS,
    // Sampled before every send towards the slow reader: everything queued so far.
    onFrameOut: (conn) => {
      if (conn.remote.port === slowPort)
        maxPendingToSlow = Math.max(maxPendingToSlow, conn.pendingBytes);
    },
  });
  for (let i = 0; i < 3; i++) net.add({ floodLimits: NO_FLOOD_LIMITS });
  await net.link([
    [1, 0],
    [2, 0],
    [3, 0],
  ]);
  const hub = net.peer(0);
  slow = await rawConnect(hub.peer.listen, { paused: true });
  slowPort = slow.localPort;
  slow.write(encodeHello({ nodeId: slow.nodeId, listenPort: 0, nick: "sloth" }));
  await waitFor(() => hub.peer.node.neighbours().length === 4, 5000, "slow reader linked");

  const text = "x".repeat(4000);
  const count = 13_000; // 13,000 × ~4.1 kB ≈ 53 MB
  const publisher = net.peer(1).peer.node;
  for (let i = 0; i < count; i++) {
    // Pace on our own queue, as piped input does: never more than 1 MiB waiting.
    while (publisher.pendingBytes > 1024 * 1024) await Bun.sleep(1);
    publisher.sendChat(`${i} ${text}`);
  }
  await waitFor(
    () => net?.peer(2).messages.length === count && net?.peer(3).messages.length === count,
    60_000,
    "all messages at the good readers",
  );

  // The drop is decided at the cap; the link is reported closed once its (bounded) flush deadline passes.
  const down = await waitFor(
    () => hub.downs.find((d) => d.nick === "sloth"),
    5000,
    "sloth dropped",
  );
  expect(down.reason).toContain("slow consumer");
  expect(down.by).toBe("local");
  expect(hub.log.find("slow consumer").some((e) => e.type === "warn")).toBe(true);
  console.log(
    `max pending towards the stopped reader: ${maxPendingToSlow} bytes (cap ${MAX_PENDING_BYTES})`,
  );
  expect(maxPendingToSlow).toBeGreaterThan(MAX_PENDING_BYTES / 2);
  expect(maxPendingToSlow).toBeLessThanOrEqual(MAX_PENDING_BYTES);
  for (const good of [net.peer(2), net.peer(3)]) {
    expect(new Set(good.messages.map((m) => m.id)).size).toBe(count);
    expect(good.downs).toEqual([]);
  }
  expect(
    hub.peer.node
      .neighbours()
      .map((n) => n.nick)
      .sort(),
  ).toEqual(["peer1", "peer2", "peer3"]);
}, 90_000);
