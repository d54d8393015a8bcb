import { expect, test } from "bun:test";
import { ConnectionError } from "../../src/errors.ts";
import { PinnedPeers } from "../../src/mesh/pinned-peers.ts";
import { PeerNode } from "../../src/node/peer-node.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { createLinkPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

test("an unreachable pinned address is retried at 1, 2, 4 … 30 s, and joins once it is up", async () => {
  const clock = new FakeClock();
  const dials: number[] = [];
  let up: PeerNode | undefined;
  const log = testLogger(4);
  const node = new PeerNode({
    nick: "early",
    listenPort: 0,
    logger: log.logger,
    clock,
    dial: async () => {
      dials.push(clock.now());
      if (!up) return { ok: false, error: new ConnectionError("REFUSED", "connection refused") };
      const [out, inb] = createLinkPair();
      up.addConnection(inb);
      return { ok: true, connection: out };
    },
  });
  // random() = 0: no jitter, so the schedule is exact (jitter has its own test).
  const pinned = new PinnedPeers(node, log.logger, { clock, random: () => 0 });
  const first = await pinned.add({ host: "late", port: 9000 });
  expect(first.status).toBe("failed");
  expect(
    log.find("could not reach late:9000: connection refused; retrying in 1.0 s").map((e) => e.type),
  ).toEqual(["warn"]);

  const start = dials[0] as number;
  for (const wait of [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
    clock.advance(wait);
    await waitFor(
      () => dials.length > 0 && dials.at(-1) === clock.now(),
      1000,
      `dial after ${wait} ms`,
    );
  }
  expect(dials.map((t) => t - start)).toEqual([
    0, 1000, 3000, 7000, 15_000, 31_000, 61_000, 91_000,
  ]);
  // Only the first failure is a warning.
  expect(log.entries.filter((e) => e.type === "warn")).toHaveLength(1);

  up = new PeerNode({ nick: "late", listenPort: 9000, logger: log.logger });
  clock.advance(30_000);
  await waitFor(() => node.neighbours().length === 1, 2000, "joined");

  // Losing it redials after about a second.
  const before = dials.length;
  await up.close("restart");
  await waitFor(() => node.neighbours().length === 0);
  up = new PeerNode({ nick: "late again", listenPort: 9000, logger: log.logger });
  clock.advance(999);
  expect(dials.length).toBe(before);
  clock.advance(1);
  await waitFor(() => node.neighbours().some((n) => n.nick === "late again"), 2000, "rejoined");
  pinned.close();
  await Promise.all([node.close(), up.close()]);
});

test("asking for the same address again during a dial joins that dial instead of starting another", async () => {
  const clock = new FakeClock();
  const dials: number[] = [];
  const log = testLogger(4);
  let release: (() => void) | undefined;
  const node = new PeerNode({
    nick: "me",
    listenPort: 0,
    logger: log.logger,
    clock,
    dial: async () => {
      dials.push(clock.now());
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { ok: false, error: new ConnectionError("REFUSED", "connection refused") };
    },
  });
  const pinned = new PinnedPeers(node, log.logger, { clock, random: () => 0 });
  const first = pinned.add({ host: "slow", port: 1 });
  const second = pinned.add({ host: "slow", port: 1 });
  await waitFor(() => release !== undefined);
  release?.();
  expect(await first).toEqual(await second);
  for (const wait of [1000, 2000, 4000]) {
    clock.advance(wait);
    await waitFor(() => release !== undefined);
    release?.();
    await Bun.sleep(1);
  }
  // One chain of retries: 0, 1, 3, 7 s, not two interleaved ones.
  expect(dials).toEqual([0, 1000, 3000, 7000].map((t) => (dials[0] as number) + t));
  pinned.close();
  await node.close();
});
