import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ChatMessage } from "../../src/node/delivery.ts";
import type { PeerDown } from "../../src/node/node-events.ts";
import { ByteWriter } from "../../src/protocol/byte-writer.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import {
  FloodKind,
  FrameType,
  PROTOCOL_VERSION,
  WireErrorCode,
} from "../../src/protocol/constants.ts";
import { decodeError } from "../../src/protocol/control.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { encodeFlood } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { testLogger } from "../helpers/logger.ts";
import { randomBytes, seededRandom, testSeed } from "../helpers/random.ts";
import { type RawClient, rawConnect } from "../helpers/raw-client.ts";
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

/** A HELLO from `from`, whose node id must be its identity's key for the signature to hold. */
const hello = (from: RawClient, nick: string | Uint8Array = "mallory") => {
  if (typeof nick === "string") return encodeHello({ nodeId: from.nodeId, listenPort: 0, nick });
  const w = ByteWriter.frame(FrameType.Hello, 4 + 1 + 32 + 2 + 2 + nick.length);
  return w
    .bytes(Uint8Array.of(0x50, 0x43, 0x48, 0x54, PROTOCOL_VERSION))
    .bytes(from.nodeId)
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
    // Never checked: these bodies are refused before the (dearer) signature is.
    signature: new Uint8Array(64),
    body,
  });
const rawBody = (nick: number[], text: number[]) =>
  Uint8Array.from([0, nick.length, ...nick, 0, text.length, ...text]);
const ascii = (s: string) => [...new TextEncoder().encode(s)];
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** Attacks from inside the secure channel: the attacker is in the room, and misbehaves. */
const ATTACKS: Array<[string, (from: RawClient) => Uint8Array, RegExp, number]> = [
  [
    "random bytes after the HELLO",
    (a) => concat(hello(a), randomBytes(seededRandom(testSeed(99)), 4096)),
    /protocol error/,
    WireErrorCode.BadFrame,
  ],
  [
    "a 0xFFFFFFFF length",
    (a) => concat(hello(a), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3)),
    /frame length 4294967295 exceeds the maximum of 65536/,
    WireErrorCode.BadFrame,
  ],
  [
    "a zero length",
    (a) => concat(hello(a), Uint8Array.of(0, 0, 0, 0)),
    /frame length 0/,
    WireErrorCode.BadFrame,
  ],
  [
    "a HELLO with a bad magic",
    (a) => {
      const h = hello(a);
      h[5] = 0x58;
      return h;
    },
    /HELLO magic is not PCHT/,
    WireErrorCode.BadHandshake,
  ],
  [
    "a HELLO of protocol version 3",
    (a) => {
      const h = hello(a);
      h[9] = 3;
      return h;
    },
    /peer speaks protocol version 3, this peer speaks version 2/,
    WireErrorCode.VersionMismatch,
  ],
  [
    "invalid UTF-8 in a HELLO nick",
    (a) => hello(a, Uint8Array.of(0x6d, 0xc3, 0x28)),
    /nick is not valid UTF-8/,
    WireErrorCode.BadMessage,
  ],
  [
    "a nick with ANSI escape codes in HELLO",
    (a) => hello(a, "\u001b[2J\u001b[Hroot"),
    /HELLO nick contains control characters/,
    WireErrorCode.BadMessage,
  ],
  [
    "invalid UTF-8 in a chat text",
    (a) => concat(hello(a), flood(0x75, rawBody(ascii("m"), [0x68, 0xff]))),
    /text is not valid UTF-8/,
    WireErrorCode.BadMessage,
  ],
  [
    "a chat nick with ANSI escape codes",
    (a) => concat(hello(a), flood(0x76, rawBody([0x1b, ...ascii("[31mroot")], ascii("hi")))),
    /CHAT nick contains control characters/,
    WireErrorCode.BadMessage,
  ],
  [
    "a truncated FLOOD",
    (a) => concat(hello(a), ByteWriter.frame(FrameType.Flood, 10).bytes(new Uint8Array(10)).done()),
    /FLOOD of 10 bytes, shorter than its 126-byte header/,
    WireErrorCode.BadFrame,
  ],
];

/**
 * Attacks on the handshake itself, in the clear. The victim has no keys to answer with,
 * so it just closes (a v1 peer gets a v1 ERROR, which it can read).
 */
const PLAIN_ATTACKS: Array<[string, (from: RawClient) => Uint8Array]> = [
  ["random bytes instead of a handshake", () => randomBytes(seededRandom(testSeed(98)), 4096)],
  ["a Noise length of 0xFFFF", () => Uint8Array.of(0xff, 0xff, 1, 2, 3)],
  ["a zero Noise length", () => Uint8Array.of(0, 0)],
  ["a v1 FLOOD in the clear", () => flood(0x71, encodeChatBody({ nick: "m", text: "hi" }))],
];

describe("hostile input against a live peer", () => {
  test.each(ATTACKS)(
    "%s closes only that connection, with a logged reason",
    async (_name, bytes, reason, code) => {
      const attacker = await rawConnect(victimAt);
      attacker.write(bytes(attacker));
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

  test.each(PLAIN_ATTACKS)(
    "%s: closed before the handshake, nothing learned",
    async (_name, bytes) => {
      const attacker = await rawConnect(victimAt, { plain: true });
      attacker.write(bytes(attacker));
      await waitFor(() => attacker.closed, 5000, "attacker disconnected");
      expect(attacker.wireBytes).toBe(0);
      await victim.waitForLog(
        new RegExp(`127\\.0\\.0\\.1:${attacker.localPort} closed before the handshake: `),
      );
      await stillRelays();
    },
    15_000,
  );

  test("a v1 peer is told, in v1, that this peer speaks version 2", async () => {
    const old = await rawConnect(victimAt, { plain: true });
    old.write(encodeHello({ nodeId: old.nodeId, listenPort: 0, nick: "oldtimer", version: 1 }));
    await waitFor(() => old.closed, 5000, "v1 peer disconnected");
    const error = old.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload)).toEqual({
      code: WireErrorCode.VersionMismatch,
      message: "this peer speaks protocol version 2, not 1",
    });
    await stillRelays();
  }, 15_000);

  test("a peer of another room is refused at message 1 and learns nothing", async () => {
    const outsider = await rawConnect(victimAt, { room: "not the lobby" });
    outsider.write(hello(outsider));
    await waitFor(() => outsider.closed, 5000, "outsider disconnected");
    // Not a byte came back: no ephemeral key, no static key, no HELLO, no nick.
    expect(outsider.wireBytes).toBe(0);
    expect(outsider.frames).toEqual([]);
    await victim.waitForLog(
      new RegExp(
        `127\\.0\\.0\\.1:${outsider.localPort} closed before the handshake: different room or not a peerchat peer`,
      ),
    );
    await stillRelays();
  }, 15_000);

  for (const plain of [true, false]) {
    test(`a HELLO that never comes is closed after 5 s (${plain ? "silent TCP" : "Noise message 1 only"})`, async () => {
      const attacker = await rawConnect(victimAt, { plain });
      const opened = performance.now();
      const closedAt = await attacker.closedAt;
      const seconds = (closedAt - opened) / 1000;
      expect(seconds).toBeGreaterThan(4.5);
      expect(seconds).toBeLessThan(7);
      await victim.waitForLog(
        new RegExp(`closed 127\\.0\\.0\\.1:${attacker.localPort}: no HELLO within 5 s`),
      );
      await stillRelays();
    }, 15_000);
  }

  test("hundreds of huge length prefixes do not move its memory", async () => {
    await stillRelays();
    const before = await victim.memoryKiB();
    for (let round = 0; round < 10; round++) {
      const attackers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => rawConnect(victimAt, { plain: i < 10 })),
      );
      // A third announce a 64 KiB handshake message; a third, inside the channel, a 4 GiB
      // frame; a third a legal 64 KiB frame, and then stall.
      for (const a of attackers.slice(0, 10)) a.write(Uint8Array.of(0xff, 0xff, 0xff, 0xfe));
      for (const a of attackers.slice(10, 20))
        a.write(concat(hello(a), Uint8Array.of(0xff, 0xff, 0xff, 0xfe)));
      for (const a of attackers.slice(20))
        a.write(concat(hello(a), Uint8Array.of(0x00, 0x01, 0x00, 0x00, 0x02)));
      await waitFor(() => attackers.slice(0, 20).every((a) => a.closed), 5000, "oversized closed");
      for (const a of attackers) a.terminate();
    }
    await stillRelays();
    const after = await victim.memoryKiB();
    console.log(
      `victim memory before → after 300 hostile connections: RSS ${before.rss} → ${after.rss} KiB, virtual ${before.size} → ${after.size} KiB`,
    );
    // 100 of those announced 4 GiB each. A buffer allocated for one, even untouched
    // (so invisible in RSS), would add 4 GiB to the virtual size.
    expect(after.size - before.size).toBeLessThan(1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(32 * 1024);
  }, 30_000);
});
