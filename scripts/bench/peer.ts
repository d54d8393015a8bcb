/**
 * A peerchat peer as a benchmark worker: the real node (startPeer: transport, relay,
 * seen-cache, presence), driven over stdin. Terminal and JSON output are not part of
 * it: the benchmark measures the relay, not the printing of messages.
 */

import { join } from "node:path";
import { createConsola } from "consola/core";
import type { ChatMessage } from "../../src/node/delivery.ts";
import { NO_FLOOD_LIMITS } from "../../src/node/flood-limits.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, FrameType, MESSAGE_ID_BYTES } from "../../src/protocol/constants.ts";
import { encodeFlood, signFloodFrame } from "../../src/protocol/flood.ts";
import { generateIdentity } from "../../src/secure/identity.ts";
import { startPeer } from "../../src/start-peer.ts";
import { type Command, rssBytes, serve, wallMs, yieldToLoop } from "./control.ts";

const HIGH_WATER_BYTES = 4 * 1024 * 1024;
// Warnings (a slow consumer dropped, a protocol error) go to stderr: a benchmark that
// loses messages must say why.
const quiet = createConsola({
  level: 1,
  reporters: [
    {
      log: (entry) =>
        process.stderr.write(
          `[bench peer ${process.pid}] ${entry.type}: ${entry.args.join(" ")}\n`,
        ),
    },
  ],
});

// Echo detection for the mesh scenario: a copy sent back to the neighbour it came from.
let watchEchoes = false;
let echoes = 0;
const firstFrom = new Map<string, string>();
const idKey = (frame: Uint8Array, at: number) =>
  Buffer.from(frame.subarray(at, at + MESSAGE_ID_BYTES)).toString("latin1");

// The wire tap (echo detection) is installed only for the mesh scenario: a tap makes
// the node hand it a view of every frame, which would slow the throughput scenarios.
const tap = process.env.BENCH_ECHOES === "1";
// Bytes of sync on the wire (the catch-up scenario): counted by the same tap.
const countSync = process.env.BENCH_SYNC_BYTES === "1";
const syncBytes = { in: 0, out: 0, historyIn: 0 };
// History on disk when a directory is given (the store scenario), else in memory.
const historyDir = process.env.BENCH_HISTORY_DIR;
const peer = startPeer({
  host: "127.0.0.1",
  port: 0,
  nick: "bench",
  degree: 0,
  maxPeers: 128,
  logger: quiet,
  // The benchmark floods on purpose to measure capacity: exactly what the FLOOD rate
  // limits exist to stop. Encryption and signatures stay on.
  floodLimits: NO_FLOOD_LIMITS,
  ...(historyDir ? { history: { path: join(historyDir, `${process.pid}.db`) } } : {}),
  tap: countSync
    ? {
        frameIn(_neighbour, _conn, frame) {
          if (frame.type === FrameType.Sync) syncBytes.in += frame.payload.length + 5;
          if (frame.type === FrameType.History) syncBytes.historyIn += frame.payload.length + 5;
        },
        frameOut(_neighbour, _conn, frame) {
          if (frame[4] === FrameType.Sync) syncBytes.out += frame.length;
        },
      }
    : tap
      ? {
          frameIn(neighbour, _conn, frame) {
            if (!watchEchoes || frame.type !== FrameType.Flood || neighbour === undefined) return;
            const key = idKey(frame.bytes, frame.start);
            if (!firstFrom.has(key)) firstFrom.set(key, neighbour);
          },
          frameOut(neighbour, _conn, frame) {
            if (!watchEchoes || frame[4] !== FrameType.Flood || neighbour === undefined) return;
            if (firstFrom.get(idKey(frame, 5)) === neighbour) echoes++;
          },
        }
      : undefined,
});
const node = peer.node;

let received = 0;
let firstAt = 0;
let lastAt = 0;
let arrivals: Array<[number, number]> | undefined; // [origin seq, wall ms]
let waiting: { count: number; resolve: () => void } | undefined;
let maxPending = 0;

node.events.on("message", (m: ChatMessage) => {
  if (m.own) return;
  const now = wallMs();
  if (received === 0) firstAt = now;
  lastAt = now;
  received++;
  arrivals?.push([m.seq, now]);
  if (waiting && received >= waiting.count) {
    waiting.resolve();
    waiting = undefined;
  }
});

// Sampled, so "bounded pending bytes" can be checked without touching the hot path.
setInterval(() => {
  maxPending = Math.max(maxPending, node.pendingBytes);
}, 5).unref();

let late = 0;
let lateLastAt = 0;
peer.history.events.on("late", () => {
  late++;
  lateLastAt = wallMs();
});

/** `count` CHAT messages by `authors` authors over the last hour, straight into the store. */
function seed(count: number, authors: number, textBytes: number): number {
  const people = Array.from({ length: authors }, () => generateIdentity());
  const text = "x".repeat(textBytes);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const author = people[i % authors] as (typeof people)[number];
    const frame = encodeFlood({
      id: crypto.getRandomValues(new Uint8Array(MESSAGE_ID_BYTES)),
      origin: author.publicKey,
      seq: Math.floor(i / authors) + 1,
      sentAt: now - 3_600_000 + Math.floor((i * 3_600_000) / count),
      hops: 0,
      kind: FloodKind.Chat,
      signature: new Uint8Array(64),
      body: encodeChatBody({ nick: "bench", text }),
    });
    signFloodFrame(frame, (m) => author.sign(m));
    peer.store.add(frame, 5, frame.length, now);
  }
  peer.store.flush();
  return peer.store.size;
}

async function handle(c: Command): Promise<Record<string, unknown>> {
  switch (c.op) {
    case "info":
      return { port: peer.listen.port, nodeId: node.nodeIdHex };
    case "connect": {
      const outcome = await peer.connect({ host: "127.0.0.1", port: c.port as number });
      return { status: outcome.status };
    }
    case "neighbours":
      return { count: node.neighbourCount };
    case "seed":
      return { stored: seed(c.count as number, c.authors as number, c.textBytes as number) };
    case "late": {
      const started = wallMs();
      while (late < (c.count as number) && wallMs() - started < ((c.timeoutMs as number) ?? 60_000))
        await Bun.sleep(5);
      return { late, lateLastAt, ...syncBytes };
    }
    case "reset":
      received = 0;
      firstAt = 0;
      lastAt = 0;
      maxPending = 0;
      arrivals = c.arrivals ? [] : undefined;
      watchEchoes = c.echoes === true;
      echoes = 0;
      firstFrom.clear();
      return {};
    case "send": {
      // As fast as the transport takes them (paced only by our own queue), or spaced.
      const count = c.count as number;
      const text = "x".repeat(c.textBytes as number);
      const interval = (c.intervalMs as number | undefined) ?? 0;
      const sent: Array<[number, number]> = [];
      const start = wallMs();
      for (let i = 0; i < count; i++) {
        if (interval > 0) {
          const due = start + i * interval;
          while (wallMs() < due) await Bun.sleep(Math.max(0, due - wallMs() - 0.5));
          const at = wallMs();
          const outcome = node.sendChat(text);
          if (outcome.status === "sent") sent.push([outcome.message.seq, at]);
        } else {
          if ((i & 127) === 0) while (node.pendingBytes > HIGH_WATER_BYTES) await yieldToLoop();
          node.sendChat(text);
        }
      }
      while (node.pendingBytes > 0) await yieldToLoop();
      return { sent: count, ms: wallMs() - start, stamps: interval > 0 ? sent : undefined };
    }
    case "expect": {
      const count = c.count as number;
      if (received < count) {
        await Promise.race([
          new Promise<void>((resolve) => {
            waiting = { count, resolve };
          }),
          Bun.sleep((c.timeoutMs as number | undefined) ?? 60_000),
        ]);
      }
      return { received, firstAt, lastAt };
    }
    case "report":
      return {
        received,
        firstAt,
        lastAt,
        arrivals,
        echoes,
        maxPending: Math.max(maxPending, node.pendingBytes),
        accepted: node.stats.accepted,
        duplicates: node.stats.duplicates,
        rss: rssBytes(),
      };
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

await serve(handle);
