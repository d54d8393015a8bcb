/**
 * Issue #14: "the room's owner prints a line for every attempt" of a dialler of another
 * room. One line per address every ten minutes; the rest in the verbose log.
 */

import { afterEach, expect, test } from "bun:test";
import { KNOCK_LOG_INTERVAL_MS, KnockLog } from "../../src/node/knock-log.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";
import { FakeClock } from "../helpers/fake-clock.ts";
import { testLogger } from "../helpers/logger.ts";
import { waitFor } from "../helpers/wait-for.ts";

const running: RunningPeer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.close()));
});

test("knock log - the first knock from an address in ten minutes gets a line", () => {
  const knocks = new KnockLog();
  const t = 1_000_000;
  expect(knocks.first("10.0.0.1", t)).toBe(true);
  expect(knocks.first("10.0.0.1", t + 1)).toBe(false);
  expect(knocks.first("10.0.0.2", t + 2)).toBe(true);
  expect(knocks.first("10.0.0.1", t + KNOCK_LOG_INTERVAL_MS - 1)).toBe(false);
  expect(knocks.first("10.0.0.1", t + KNOCK_LOG_INTERVAL_MS)).toBe(true);
});

test("knock log - bounded: past its count the oldest address is forgotten", () => {
  const knocks = new KnockLog(KNOCK_LOG_INTERVAL_MS, 3);
  for (const host of ["a", "b", "c", "d"]) expect(knocks.first(host, 0)).toBe(true);
  expect(knocks.first("a", 1)).toBe(true);
  expect(knocks.first("d", 1)).toBe(false);
});

test("a peer of another room dialling three times gets one info line at the owner, then one after ten minutes", async () => {
  const log = testLogger(4);
  const clock = new FakeClock(Date.now());
  const owner = startPeer({
    host: "127.0.0.1",
    port: 0,
    room: "alpha",
    degree: 0,
    logger: log.logger,
    clock,
  });
  const outsider = startPeer({
    host: "127.0.0.1",
    port: 0,
    room: "beta",
    degree: 0,
    logger: testLogger(4).logger,
  });
  running.push(owner, outsider);
  const knocks = () => log.find("closed before the handshake: different room");
  for (let i = 1; i <= 3; i++) {
    expect((await outsider.node.connect(owner.listen)).status).toBe("failed");
    await waitFor(() => knocks().length === i, 5000, `knock ${i} at the owner`);
  }
  clock.advance(KNOCK_LOG_INTERVAL_MS);
  expect((await outsider.node.connect(owner.listen)).status).toBe("failed");
  await waitFor(() => knocks().length === 4, 5000, "knock 4 at the owner");
  expect(knocks().map((e) => e.type)).toEqual(["info", "debug", "debug", "info"]);
});
