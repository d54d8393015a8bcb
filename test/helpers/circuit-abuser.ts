/**
 * A peer that abuses a relay's circuits, for relay-limits.test.ts: run inside a lab
 * namespace (net-lab.ts) as `bun circuit-abuser.ts RELAY_HOST RELAY_PORT TARGET_HEX MODE N`.
 * It starts an in-process peer (room lobby, reach on, nothing logged on stdout), links to
 * the relay P at RELAY_HOST:RELAY_PORT, waits until P lists TARGET_HEX among its
 * neighbours, prints `{"ready":{nodeId,relay,held}}`, then by MODE:
 *
 * - `circuits N`: opens N circuits to the target through P at once; prints
 *   `{"opened":k,"refused":m,"codes":[...],"reasons":[...],"held":h}`: `codes` and
 *   `reasons` for each open that failed (code null when no CLOSE said why), `held` the
 *   relayed streams this peer held just before (the planner's, if it opened one).
 * - `bytes MiB`: opens one circuit, brings a peer link up over it end to end (Noise, as
 *   the planner's relayed links are), and pushes MiB mebibytes through it, at
 *   {@link PUSH_BYTES_PER_S}, as frames of a type nobody handles (the target's node skips
 *   them, so only the relay can stop them);
 *   prints `{"closed":true,"code":c,"reason":r,"sent":bytes,"written":bytes,"seconds":s}`
 *   when the circuit closes (`sent`: DATA bytes that left for P; `written`: frame bytes
 *   handed to the link), or `{"closed":false,...}` if it has not within 30 s.
 * - `raw MiB`: the same circuit without the link: MiB mebibytes of raw bytes straight
 *   into the stream, which the target reads as a Noise handshake; prints as `bytes`.
 *
 * Then it stays up until stdin ends, printing `{"chat":text,"nick":nick}` for each chat
 * message it receives. Failures print `{"error":message}` and exit 1.
 *
 * Its own planner is kept out of the way so that the test alone decides its circuits:
 * degree 0 (it never wants more links, so it plans none) and a node id below the
 * target's (the planner's higher end waits for the lower to open, so the target's
 * planner opens none either). Its cap on relayed streams is raised past the relay's
 * per-peer limit, so that the relay, not this peer, is what says no.
 */

import { createConsola } from "consola/core";
import { secureLinks } from "../../src/link/secure-links.ts";
import { MAX_FRAME_BYTES } from "../../src/protocol/constants.ts";
import { hex } from "../../src/protocol/hex.ts";
import type { CircuitStream } from "../../src/relay/circuit-stream.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM } from "../../src/secure/room.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";

/** A frame type no version assigns (0x0d–0xff are skipped by the node when unhandled). */
const UNHANDLED_FRAME_TYPE = 0xee;
/** Relayed streams this peer may hold: past the relay's 8 per peer. */
const MAX_ENDS = 64;
const WAIT_MS = 15_000;
const CLOSE_WAIT_MS = 30_000;
const MIB = 1024 * 1024;
/**
 * How fast `bytes` and `raw` push. Flat out, the writer runs megabytes ahead of the relay
 * (socket buffers on both sides) and has written everything before the relay's CLOSE
 * comes back; at a rate the path easily carries, it sees the CLOSE while still writing,
 * which shows that the rest never went through.
 */
const PUSH_BYTES_PER_S = 4 * MIB;

const [relayHost = "", relayPortText = "", targetHex = "", mode = "", countText = ""] =
  process.argv.slice(2);

function say(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function fail(message: string): never {
  say({ error: message });
  process.exit(1);
}

/** A fresh identity whose node id sorts below `other` (see the module comment). */
function identityBelow(other: string): Identity {
  for (let i = 0; i < 100_000; i++) {
    const identity = generateIdentity();
    if (hex(identity.publicKey) < other) return identity;
  }
  return generateIdentity();
}

async function until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) fail(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

async function main(): Promise<void> {
  const relayPort = Number(relayPortText);
  const count = Number(countText);
  if (!relayHost || !relayPort || !/^[0-9a-f]{64}$/.test(targetHex) || !(count > 0))
    fail("usage: circuit-abuser.ts RELAY_HOST RELAY_PORT TARGET_HEX circuits|bytes|raw N");
  const identity = identityBelow(targetHex);
  const logger = createConsola({
    level: process.env.ABUSER_LOGS === "1" ? 4 : 3,
    reporters: [
      { log: (entry) => process.stderr.write(`${entry.type}: ${entry.args.join(" ")}\n`) },
    ],
  });
  const peer = startPeer({
    host: "0.0.0.0",
    port: 0,
    nick: "abuser",
    room: DEFAULT_ROOM,
    degree: 0,
    identity,
    logger,
    reach: { circuitLimits: { maxEnds: MAX_ENDS } },
  });
  const reach = peer.reach;
  if (!reach) fail("reach is off");
  peer.node.events.on("message", (m) => say({ chat: m.text, nick: m.nick }));
  // Who listed the target: P's first PEERS may come before connect() has returned.
  const listedBy = new Set<string>();
  peer.node.events.on("peers", ({ from, peers }) => {
    if (peers.some((p) => hex(p.nodeId) === targetHex)) listedBy.add(from.nodeId);
  });
  const outcome = await peer.connect({ host: relayHost, port: relayPort });
  if (outcome.status !== "connected" && outcome.status !== "already-connected")
    fail(
      `could not link to the relay: ${outcome.status === "failed" ? outcome.reason : outcome.status}`,
    );
  const relay = outcome.peer.nodeId;
  await until(() => listedBy.has(relay), WAIT_MS, "the relay to list the target");
  say({ ready: { nodeId: peer.node.nodeIdHex, relay, held: reach.circuits.stats.ends } });

  if (mode === "circuits") await flood(peer, relay, count);
  else if (mode === "bytes" || mode === "raw")
    await push(peer, identity, relay, count * MIB, mode === "raw");
  else fail(`unknown mode ${mode}`);

  for await (const _ of Bun.stdin.stream()) {
    // Nothing is read: the test ends stdin to stop us.
  }
  await peer.close();
  process.exit(0);
}

/** `circuits N`: N OPENs at once, and how each ended. */
async function flood(peer: RunningPeer, relay: string, n: number): Promise<void> {
  const circuits = (peer.reach as NonNullable<RunningPeer["reach"]>).circuits;
  const held = circuits.stats.ends;
  const outcomes = await Promise.all(
    Array.from({ length: n }, () => circuits.open(relay, targetHex)),
  );
  const failed = outcomes.flatMap((o) => (o.ok ? [] : [o]));
  say({
    opened: outcomes.length - failed.length,
    refused: failed.length,
    codes: failed.map((o) => o.code ?? null),
    reasons: failed.map((o) => o.reason),
    held,
  });
}

/** `bytes`/`raw`: one circuit, `total` bytes pushed into it, and how it ended. */
async function push(
  peer: RunningPeer,
  identity: Identity,
  relay: string,
  total: number,
  raw: boolean,
) {
  const circuits = (peer.reach as NonNullable<RunningPeer["reach"]>).circuits;
  const opened = await circuits.open(relay, targetHex);
  if (!opened.ok) fail(`the circuit did not open: ${opened.reason}`);
  const stream = opened.stream;
  const started = performance.now();
  const written = raw
    ? await pushRaw(stream, total)
    : await pushFrames(peer, identity, stream, total);
  const closedAt = await closedWithin(stream, CLOSE_WAIT_MS);
  const seconds = ((closedAt ?? performance.now()) - started) / 1000;
  say({
    closed: closedAt !== undefined,
    code: stream.cause?.code ?? null,
    reason: stream.cause?.reason ?? null,
    by: stream.cause?.by ?? null,
    sent: stream.bytesSent,
    written,
    seconds: Number(seconds.toFixed(2)),
  });
}

/** Brings the link up over `stream`, then writes unhandled frames until `total` or the close. */
async function pushFrames(
  peer: RunningPeer,
  identity: Identity,
  stream: CircuitStream,
  total: number,
) {
  const links = secureLinks(identity, DEFAULT_ROOM);
  const linked = await peer.node.connect(stream.remote, async () => ({
    ok: true,
    connection: links.accept(stream),
  }));
  if (linked.status !== "connected")
    fail(`no link to the target over the circuit: ${linked.status}`);
  const payload = MAX_FRAME_BYTES - 1;
  const frame = new Uint8Array(5 + payload);
  new DataView(frame.buffer).setUint32(0, 1 + payload);
  frame[4] = UNHANDLED_FRAME_TYPE;
  let written = 0;
  const started = performance.now();
  while (written < total && !stream.closed) {
    await pace(written, started);
    if (peer.node.congested(targetHex) || !peer.node.sendTo(targetHex, frame)) {
      await Bun.sleep(2);
      continue;
    }
    written += frame.length;
  }
  return written;
}

/** Writes raw bytes into `stream`, waiting while it is full, until `total` or the close. */
async function pushRaw(stream: CircuitStream, total: number) {
  stream.start({ data: () => {}, close: () => {} });
  const chunk = new Uint8Array(64 * 1024).fill(0x5a);
  let written = 0;
  const started = performance.now();
  while (written < total && !stream.closed) {
    await pace(written, started);
    const n = Math.min(chunk.length, total - written);
    const status = stream.write(chunk, 0, n);
    if (status === "overflow") await Bun.sleep(2);
    else if (status === "closed") break;
    else written += n;
  }
  return written;
}

/** Waits until `written` bytes since `started` are within {@link PUSH_BYTES_PER_S}. */
async function pace(written: number, started: number): Promise<void> {
  const aheadMs = (written / PUSH_BYTES_PER_S) * 1000 - (performance.now() - started);
  if (aheadMs > 0) await Bun.sleep(aheadMs);
}

async function closedWithin(stream: CircuitStream, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (!stream.closed) {
    if (performance.now() > deadline) return undefined;
    await Bun.sleep(10);
  }
  return performance.now();
}

await main().catch((error) => fail(String(error?.stack ?? error)));
