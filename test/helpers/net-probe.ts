/**
 * Small network probes that tests run inside lab namespaces (net-lab.ts), each printing
 * JSON lines on stdout:
 *
 * - `serve HOST PORT`: listens; prints `{"listening":port}`, then `{"accepted":{host,port}}`
 *   for each connection (the address this side sees for the dialler).
 * - `connect HOST PORT [LOCAL_PORT] [TIMEOUT_MS]`: one TCP connection, through node:net
 *   when a local port is given; prints `{"connected":{localPort}}` or `{"error":CODE}`.
 * - `mcast-listen GROUP PORT`: prints `{"joined":true}`, then `{"heard":text}` per datagram.
 * - `mcast-send GROUP PORT TEXT`: sends TEXT once, prints `{"sent":true}` or `{"error":CODE}`.
 * - `punch [LOCAL_HOST]`: reserves a port and prints `{"ready":{localPort}}`; reads one
 *   JSON line on stdin, `{remoteHost, remotePort, timeoutMs, sendBytes, seed, expectBytes,
 *   expectSeed}`, punches (punch-dial.ts), prints `{"punched":{ok,...}}`; on success sends
 *   `sendBytes` of {@link pattern}`(seed)`, reads `expectBytes`, prints
 *   `{"received":{bytes,matches}}`, ends, and prints `{"closed":info}`.
 */

import type { ByteStream, StreamClosed } from "../../src/transport/byte-stream.ts";

const [command, ...args] = process.argv.slice(2);

function say(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Bytes a side sends, reproducible from the seed on the other side. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function firstStdinLine(): Promise<string> {
  for await (const line of console) return line;
  throw new Error("stdin ended before a line");
}

async function serve(host: string, port: number): Promise<void> {
  const listener = Bun.listen({
    hostname: host,
    port,
    socket: {
      open(socket) {
        say({ accepted: { host: socket.remoteAddress, port: socket.remotePort } });
      },
      data() {},
    },
  });
  say({ listening: listener.port });
  await new Promise(() => {});
}

async function connect(host: string, port: number, localPort: number, timeoutMs: number) {
  const net = await import("node:net");
  const socket = net.connect({ host, port, ...(localPort > 0 ? { localPort } : {}) });
  const timer = setTimeout(() => {
    say({ error: "TIMEOUT" });
    process.exit(0);
  }, timeoutMs);
  socket.once("connect", () => {
    clearTimeout(timer);
    say({ connected: { localPort: socket.localPort } });
    socket.end();
    setTimeout(() => process.exit(0), 100);
  });
  socket.once("error", (error: Error & { code?: string }) => {
    clearTimeout(timer);
    say({ error: error.code ?? error.message });
    process.exit(0);
  });
}

async function mcastListen(group: string, port: number): Promise<void> {
  const dgram = await import("node:dgram");
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  socket.on("message", (message) => say({ heard: message.toString() }));
  socket.bind(port, () => {
    socket.addMembership(group);
    say({ joined: true });
  });
}

async function mcastSend(group: string, port: number, text: string): Promise<void> {
  const dgram = await import("node:dgram");
  const socket = dgram.createSocket("udp4");
  socket.send(text, port, group, (error) => {
    say(
      error
        ? { error: (error as Error & { code?: string }).code ?? error.message }
        : { sent: true },
    );
    socket.close();
  });
}

interface PunchOrder {
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly timeoutMs: number;
  readonly sendBytes: number;
  readonly seed: number;
  readonly expectBytes: number;
  readonly expectSeed: number;
}

async function punch(localHost: string | undefined): Promise<void> {
  const { punchDial, reservePort } = await import("../../src/transport/punch-dial.ts");
  const localPort = reservePort(localHost);
  say({ ready: { localPort } });
  const order = JSON.parse(await firstStdinLine()) as PunchOrder;
  const started = performance.now();
  const result = await punchDial({
    remote: { host: order.remoteHost, port: order.remotePort },
    localPort,
    ...(localHost ? { localHost } : {}),
    timeoutMs: order.timeoutMs,
  });
  const elapsedMs = Math.round(performance.now() - started);
  if (!result.ok) {
    say({
      punched: { ok: false, code: result.error.code, message: result.error.message, elapsedMs },
    });
    process.exit(0);
  }
  const stream: ByteStream = result.stream;
  say({
    punched: {
      ok: true,
      local: stream.local,
      remote: stream.remote,
      direction: stream.direction,
      elapsedMs,
    },
  });
  const expected = pattern(order.expectBytes, order.expectSeed);
  let got = 0;
  let matches = true;
  const closed = new Promise<StreamClosed>((resolve) => {
    stream.start({
      data(chunk) {
        for (const byte of chunk) {
          if (expected[got] !== byte) matches = false;
          got++;
        }
        if (got >= order.expectBytes) {
          say({ received: { bytes: got, matches: matches && got === order.expectBytes } });
          stream.end(undefined, { drain: true });
        }
      },
      close: resolve,
    });
  });
  stream.write(pattern(order.sendBytes, order.seed));
  say({ closed: await closed });
  process.exit(0);
}

async function main(): Promise<void> {
  switch (command) {
    case "serve":
      await serve(args[0] ?? "0.0.0.0", Number(args[1] ?? 0));
      break;
    case "connect":
      await connect(
        args[0] as string,
        Number(args[1]),
        Number(args[2] ?? 0),
        Number(args[3] ?? 3000),
      );
      break;
    case "mcast-listen":
      await mcastListen(args[0] as string, Number(args[1]));
      break;
    case "mcast-send":
      await mcastSend(args[0] as string, Number(args[1]), args[2] ?? "");
      break;
    case "punch":
      await punch(args[0]);
      break;
    default:
      console.error(`unknown probe ${command}`);
      process.exit(2);
  }
}

if (import.meta.main) await main();
