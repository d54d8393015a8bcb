import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ChatMessage, PeerDown } from "../../src/node/peer-node.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, FrameType, WireErrorCode } from "../../src/protocol/constants.ts";
import { decodeError } from "../../src/protocol/control.ts";
import { encodeFlood } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";
import type { Endpoint } from "../../src/transport/byte-stream.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { testLogger } from "../helpers/logger.ts";
import { randomBytes, seededRandom, testSeed } from "../helpers/random.ts";
import { rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";

/**
 * A live peer (a real CLI process) between two honest neighbours, attacked through
 * fresh TCP connections. Each attack must close only the attacker's connection, with a
 * logged reason naming its address, while the peer keeps relaying.
 */
let victim: CliProcess;
let victimAt: Endpoint;
let alice: RunningPeer;
let bob: RunningPeer;
const bobInbox: ChatMessage[] = [];
const aliceInbox: ChatMessage[] = [];
const aliceDowns: PeerDown[] = [];
const bobDowns: PeerDown[] = [];

beforeAll(async () => {
  victim = new CliProcess(fromSource, [
    "127.0.0.1",
    "0",
    "--json",
    "--verbose",
    "--nick",
    "victim",
  ]);
  victimAt = { host: "127.0.0.1", port: await listenPortOf(victim) };
  // Degree 0: Alice and Bob must not link to each other; only the victim joins them.
  alice = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "alice",
    degree: 0,
    logger: testLogger(3).logger,
  });
  bob = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "bob",
    degree: 0,
    logger: testLogger(3).logger,
  });
  bob.node.events.on("message", (m) => bobInbox.push(m));
  alice.node.events.on("message", (m) => aliceInbox.push(m));
  alice.node.events.on("peer-down", (d) => aliceDowns.push(d));
  bob.node.events.on("peer-down", (d) => bobDowns.push(d));
  expect((await alice.connect(victimAt)).status).toBe("connected");
  expect((await bob.connect(victimAt)).status).toBe("connected");
  victimSince = [alice, bob].map(
    (p) => p.node.neighbours().find((n) => n.nick === "victim")?.since as number,
  );
});

afterAll(async () => {
  await Promise.all([alice.close(), bob.close()]);
  expect(await victim.stop()).toBe(0);
});

let sequence = 0;
let victimSince: number[] = [];
/**
 * The victim still relays both ways, and its links to Alice and Bob are the very links
 * made at the start: nothing but the attacker's connection was touched.
 */
async function stillRelays(): Promise<void> {
  const text = `still relaying ${++sequence}`;
  alice.node.sendChat(text);
  await waitFor(() => bobInbox.some((m) => m.text === text), 5000, `"${text}" at bob`);
  bob.node.sendChat(`${text}, back`);
  await waitFor(
    () => aliceInbox.some((m) => m.text === `${text}, back`),
    5000,
    `"${text}, back" at alice`,
  );
  expect(aliceDowns).toEqual([]);
  expect(bobDowns).toEqual([]);
  expect(
    [alice, bob].map((p) => p.node.neighbours().find((n) => n.nick === "victim")?.since),
  ).toEqual(victimSince);
}

const hello = (idByte: number, nick: string | Uint8Array = "mallory") => {
  if (typeof nick === "string")
    return encodeHello({ nodeId: new Uint8Array(32).fill(idByte), listenPort: 0, nick });
  const w = ByteWriter.frame(FrameType.Hello, 4 + 1 + 32 + 2 + 2 + nick.length);
  return w
    .bytes(Uint8Array.of(0x50, 0x43, 0x48, 0x54, 1))
    .bytes(new Uint8Array(32).fill(idByte))
    .u16(0)
    .str(nick)
    .done();
};
const flood = (idByte: number, body: Uint8Array) =>
  encodeFlood({
    id: new Uint8Array(16).fill(idByte),
    origin: new Uint8Array(32).fill(idByte),
    seq: 1,
    sentAt: Date.now(),
    hops: 0,
    kind: FloodKind.Chat,
    body,
  });
const rawBody = (nick: number[], text: number[]) =>
  Uint8Array.from([0, nick.length, ...nick, 0, text.length, ...text]);
const ascii = (s: string) => [...new TextEncoder().encode(s)];
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

const ATTACKS: Array<[string, () => Uint8Array, RegExp, number]> = [
  [
    "random bytes",
    () => randomBytes(seededRandom(testSeed(99)), 4096),
    /protocol error/,
    WireErrorCode.BadFrame,
  ],
  [
    "a 0xFFFFFFFF length",
    () => Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3),
    /frame length 4294967295 exceeds the maximum of 65536/,
    WireErrorCode.BadFrame,
  ],
  ["a zero length", () => Uint8Array.of(0, 0, 0, 0), /frame length 0/, WireErrorCode.BadFrame],
  [
    "FLOOD before HELLO",
    () => flood(0x71, encodeChatBody({ nick: "m", text: "hi" })),
    /expected HELLO first, got FLOOD/,
    WireErrorCode.BadHandshake,
  ],
  [
    "bad magic",
    () => {
      const h = hello(0x72);
      h[5] = 0x58;
      return h;
    },
    /HELLO magic is not PCHT/,
    WireErrorCode.BadHandshake,
  ],
  [
    "invalid UTF-8 in a HELLO nick",
    () => hello(0x73, Uint8Array.of(0x6d, 0xc3, 0x28)),
    /nick is not valid UTF-8/,
    WireErrorCode.BadMessage,
  ],
  [
    "a nick with ANSI escape codes in HELLO",
    () => hello(0x74, "\u001b[2J\u001b[Hroot"),
    /HELLO nick contains control characters/,
    WireErrorCode.BadMessage,
  ],
  [
    "invalid UTF-8 in a chat text",
    () => concat(hello(0x75), flood(0x75, rawBody(ascii("m"), [0x68, 0xff]))),
    /text is not valid UTF-8/,
    WireErrorCode.BadMessage,
  ],
  [
    "a chat nick with ANSI escape codes",
    () => concat(hello(0x76), flood(0x76, rawBody([0x1b, ...ascii("[31mroot")], ascii("hi")))),
    /CHAT nick contains control characters/,
    WireErrorCode.BadMessage,
  ],
  [
    "a truncated FLOOD",
    () =>
      concat(hello(0x77), ByteWriter.frame(FrameType.Flood, 10).bytes(new Uint8Array(10)).done()),
    /FLOOD of 10 bytes, shorter than its 62-byte header/,
    WireErrorCode.BadFrame,
  ],
];

describe("hostile input against a live peer", () => {
  test.each(ATTACKS)(
    "%s closes only that connection, with a logged reason",
    async (_name, bytes, reason, code) => {
      const attacker = await rawConnect(victimAt);
      attacker.write(bytes());
      await waitFor(() => attacker.closed, 5000, "attacker disconnected");
      const log = await victim.waitForLog(
        new RegExp(
          `closed (mallory \\()?127\\.0\\.0\\.1:${attacker.localPort}\\)?: .*${reason.source}`,
        ),
      );
      expect(log).toContain("warn");
      expect(log).toContain(`[ERROR ${code} `);
      const error = attacker.frames.find((f) => f.type === FrameType.Error);
      expect(error && decodeError(error.payload).code).toBe(code);
      // The JSON event on stdout says the same, with the address (stdout may trail stderr).
      const address = `127.0.0.1:${attacker.localPort}`;
      await waitFor(
        () =>
          victim
            .events()
            .some((e) => e.type === "error" && e.code === "protocol" && e.address === address),
        5000,
        `error event for ${address}`,
      );
      await stillRelays();
    },
    15_000,
  );

  test("a HELLO that never comes is closed after 5 s", async () => {
    const attacker = await rawConnect(victimAt);
    const opened = performance.now();
    const closedAt = await attacker.closedAt;
    const seconds = (closedAt - opened) / 1000;
    expect(seconds).toBeGreaterThan(4.5);
    expect(seconds).toBeLessThan(7);
    const error = attacker.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.HandshakeTimeout);
    await victim.waitForLog(
      new RegExp(`closed 127\\.0\\.0\\.1:${attacker.localPort}: no HELLO within 5 s`),
    );
    await stillRelays();
  }, 15_000);

  test("hundreds of huge length prefixes do not move its memory", async () => {
    await stillRelays();
    const before = await victim.memoryKiB();
    for (let round = 0; round < 10; round++) {
      const attackers = await Promise.all(Array.from({ length: 30 }, () => rawConnect(victimAt)));
      // Half announce 4 GiB; half announce a legal 64 KiB frame and then stall.
      for (const a of attackers.slice(0, 15)) a.write(Uint8Array.of(0xff, 0xff, 0xff, 0xfe));
      for (const a of attackers.slice(15)) a.write(Uint8Array.of(0x00, 0x01, 0x00, 0x00, 0x02));
      await waitFor(() => attackers.slice(0, 15).every((a) => a.closed), 5000, "oversized closed");
      for (const a of attackers) a.socket.terminate();
    }
    await stillRelays();
    const after = await victim.memoryKiB();
    console.log(
      `victim memory before → after 300 hostile connections: RSS ${before.rss} → ${after.rss} KiB, virtual ${before.size} → ${after.size} KiB`,
    );
    // 150 of those announced 4 GiB each. A buffer allocated for one, even untouched
    // (so invisible in RSS), would add 4 GiB to the virtual size.
    expect(after.size - before.size).toBeLessThan(1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(32 * 1024);
  }, 30_000);
});
