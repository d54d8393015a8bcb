/**
 * The benchmark's baseline: what moving the same bytes costs with nothing on top. A
 * minimal forwarder on Bun.listen / Bun.connect, with correct batching (writes of one
 * tick go out in one syscall) and partial-write handling (the remainder waits for
 * `drain`), but no protocol, no parsing, no seen-cache: every byte that arrives on one
 * link is forwarded to every other link. Messages are fixed-size records (the size of
 * a peerchat chat frame) carrying a sequence number and a send time, so the far end can
 * count them and time them.
 */
import type { Socket } from "bun";
import { type Command, rssBytes, serve, wallMs, yieldToLoop } from "./control.ts";

const HIGH_WATER_BYTES = 4 * 1024 * 1024;

class Link {
  private queue: Uint8Array[] = [];
  pending = 0;
  private scheduled = false;
  private blocked = false;
  constructor(readonly socket: Socket<Link>) {}

  write(bytes: Uint8Array): void {
    this.queue.push(bytes);
    this.pending += bytes.length;
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const batch =
      this.queue.length === 1 ? (this.queue[0] as Uint8Array) : Buffer.concat(this.queue);
    const written = this.socket.write(batch);
    if (written >= batch.length) {
      this.queue = [];
      this.pending = 0;
      this.blocked = false;
    } else {
      const rest = batch.subarray(Math.max(0, written));
      this.queue = [rest];
      this.pending = rest.length;
      this.blocked = true;
    }
  }

  drained(): void {
    this.blocked = false;
    this.flush();
  }
}

const links: Link[] = [];
let recordBytes = 176;
let receivedBytes = 0;
let firstAt = 0;
let lastAt = 0;
let arrivals: Array<[number, number]> | undefined;
let waiting: { count: number; resolve: () => void } | undefined;
let maxPending = 0;

function onData(from: Link, chunk: Uint8Array): void {
  for (const link of links) if (link !== from) link.write(chunk);
  const now = wallMs();
  if (receivedBytes === 0) firstAt = now;
  lastAt = now;
  const before = Math.floor(receivedBytes / recordBytes);
  receivedBytes += chunk.length;
  const after = Math.floor(receivedBytes / recordBytes);
  if (arrivals) for (let r = before; r < after; r++) arrivals.push([r + 1, now]);
  if (waiting && after >= waiting.count) {
    waiting.resolve();
    waiting = undefined;
  }
}

const handlers = {
  binaryType: "uint8array" as const,
  data(socket: Socket<Link>, chunk: Uint8Array) {
    onData(socket.data, chunk);
  },
  drain(socket: Socket<Link>) {
    socket.data.drained();
  },
  close(socket: Socket<Link>) {
    const i = links.indexOf(socket.data);
    if (i >= 0) links.splice(i, 1);
  },
};

const listener = Bun.listen<Link>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    ...handlers,
    open(socket) {
      socket.data = new Link(socket);
      socket.setNoDelay(true);
      links.push(socket.data);
    },
  },
});

setInterval(() => {
  for (const l of links) maxPending = Math.max(maxPending, l.pending);
}, 5).unref();

async function handle(c: Command): Promise<Record<string, unknown>> {
  switch (c.op) {
    case "info":
      return { port: listener.port };
    case "connect": {
      await Bun.connect<Link>({
        hostname: "127.0.0.1",
        port: c.port as number,
        socket: {
          ...handlers,
          open(socket) {
            socket.data = new Link(socket);
            socket.setNoDelay(true);
            links.push(socket.data);
          },
        },
      });
      return { status: "connected" };
    }
    case "neighbours":
      return { count: links.length };
    case "reset":
      receivedBytes = 0;
      firstAt = 0;
      lastAt = 0;
      maxPending = 0;
      recordBytes = c.recordBytes as number;
      arrivals = c.arrivals ? [] : undefined;
      return {};
    case "send": {
      const count = c.count as number;
      const interval = (c.intervalMs as number | undefined) ?? 0;
      const record = new Uint8Array(recordBytes).fill(0x78);
      const view = new DataView(record.buffer);
      const sent: Array<[number, number]> = [];
      const start = wallMs();
      for (let i = 0; i < count; i++) {
        if (interval > 0) {
          const due = start + i * interval;
          while (wallMs() < due) await Bun.sleep(Math.max(0, due - wallMs() - 0.5));
          sent.push([i + 1, wallMs()]);
        } else if ((i & 127) === 0) {
          while (links.some((l) => l.pending > HIGH_WATER_BYTES)) await yieldToLoop();
        }
        view.setUint32(0, i + 1);
        // A fresh record each time, as a real sender would build each message.
        const copy = record.slice();
        for (const link of links) link.write(copy);
      }
      while (links.some((l) => l.pending > 0)) await yieldToLoop();
      return { sent: count, ms: wallMs() - start, stamps: interval > 0 ? sent : undefined };
    }
    case "expect": {
      const count = c.count as number;
      const have = () => Math.floor(receivedBytes / recordBytes);
      if (have() < count) {
        await Promise.race([
          new Promise<void>((resolve) => {
            waiting = { count, resolve };
          }),
          Bun.sleep((c.timeoutMs as number | undefined) ?? 60_000),
        ]);
      }
      return { received: have(), firstAt, lastAt };
    }
    case "report":
      return {
        received: Math.floor(receivedBytes / recordBytes),
        firstAt,
        lastAt,
        arrivals,
        echoes: 0,
        maxPending: Math.max(maxPending, ...links.map((l) => l.pending)),
        rss: rssBytes(),
      };
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

await serve(handle);
