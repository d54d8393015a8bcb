import { describe, expect, test } from "bun:test";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { type KeyPair, keyPairFromPrivate } from "../../src/noise/primitives.ts";
import { concatBytes } from "../../src/protocol/bytes.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { decodeHello } from "../../src/protocol/hello.ts";
import { fromHex, hex } from "../../src/protocol/hex.ts";
import { NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from "../../src/secure/constants.ts";
import { signedHandshakePayload } from "../../src/secure/handshake-payload.ts";
import { type Identity, identityFromSeed } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM, roomKey } from "../../src/secure/room.ts";
import { secureStream } from "../../src/secure/secure-stream.ts";
import type { ByteStream } from "../../src/transport/byte-stream.ts";
import { createMemoryPair } from "../helpers/memory-stream.ts";
import { waitFor } from "../helpers/wait-for.ts";

/**
 * The secure channel's test vector lives in docs/PROTOCOL.md, §9, and only there: this
 * test reads its inputs (keys, seeds, HELLO payloads) from the document, recomputes every
 * other line with the real code, renders the block again and compares it with the
 * document's, byte for byte. On a mismatch the failure shows the block the code gives.
 */
const DOC_PATH = new URL("../../docs/PROTOCOL.md", import.meta.url);
const HEADING = "### Secure channel test vector";

/** The block's lines, in order; the inputs are the ones `compute` reads. */
const KEYS = [
  "psk",
  "prologue",
  ...["initiator", "responder"].flatMap((side) => [
    `${side} identity seed`,
    `${side} node id`,
    `${side} static private`,
    `${side} static public`,
    `${side} ephemeral private`,
    `${side} ephemeral public`,
    `${side} hello payload`,
    `${side} signature`,
  ]),
  "message 1",
  "message 2",
  "message 3",
  "confirmation",
  "handshake hash",
] as const;
type Key = (typeof KEYS)[number];
type Side = "initiator" | "responder";

const KEY_COLUMN = 30;
const HEX_PER_LINE = 64;

/** The text of the first fenced block after the vector's heading. */
function docBlock(markdown: string): string {
  const at = markdown.indexOf(`\n${HEADING}\n`);
  if (at < 0) throw new Error(`docs/PROTOCOL.md has no "${HEADING}" section`);
  const open = markdown.indexOf("\n```\n", at);
  const close = markdown.indexOf("\n```\n", open + 1);
  if (open < 0 || close < 0) throw new Error(`no fenced block under "${HEADING}"`);
  return markdown.slice(open + 5, close + 1);
}

/** `name  hex` lines; a long value goes on in lines that start with spaces. */
function parseBlock(block: string): Map<string, string> {
  const values = new Map<string, string>();
  let last: string | undefined;
  for (const line of block.split("\n")) {
    if (line.trim() === "") continue;
    const continued = /^ +([0-9a-f]+)$/.exec(line);
    if (continued && last !== undefined) {
      values.set(last, `${values.get(last)}${continued[1]}`);
      continue;
    }
    const field = /^(\S+(?: \S+)*) {2,}([0-9a-f]+)$/.exec(line);
    if (!field) throw new Error(`cannot read vector line: ${JSON.stringify(line)}`);
    last = field[1] as string;
    values.set(last, field[2] as string);
  }
  return values;
}

function renderBlock(values: ReadonlyMap<string, string>): string {
  const lines: string[] = [];
  for (const key of KEYS) {
    const value = values.get(key) ?? "";
    for (let at = 0; at === 0 || at < value.length; at += HEX_PER_LINE) {
      const label = at === 0 ? key : "";
      lines.push(`${label.padEnd(KEY_COLUMN)}${value.slice(at, at + HEX_PER_LINE)}`);
    }
    if (key === "prologue" || key === "initiator signature" || key === "responder signature")
      lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

/** `stream`, with every byte written to it also appended to `wire`. */
function recorded(stream: ByteStream, wire: Uint8Array[]): ByteStream {
  return {
    direction: stream.direction,
    remote: stream.remote,
    local: stream.local,
    get pendingBytes() {
      return stream.pendingBytes;
    },
    get bytesSent() {
      return stream.bytesSent;
    },
    get closed() {
      return stream.closed;
    },
    start: (handler) => stream.start(handler),
    write: (bytes, start = 0, end = bytes.length) => {
      wire.push(bytes.slice(start, end));
      return stream.write(bytes, start, end);
    },
    end: (final) => {
      if (final) wire.push(final.slice());
      stream.end(final);
    },
    destroy: () => stream.destroy(),
    pause: () => stream.pause(),
    resume: () => stream.resume(),
  };
}

/** The Noise messages in `wire`: each `u16 length | message`, the length dropped. */
function noiseMessages(wire: readonly Uint8Array[]): Uint8Array[] {
  const bytes = concatBytes(wire);
  const messages: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
    messages.push(bytes.slice(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return messages;
}

function helloFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + payload.length);
  new DataView(frame.buffer).setUint32(0, 1 + payload.length);
  frame[4] = FrameType.Hello;
  frame.set(payload, 5);
  return frame;
}

interface Party {
  readonly identity: Identity;
  readonly staticKey: KeyPair;
  readonly ephemeralKey: KeyPair;
  readonly hello: Uint8Array;
  readonly payload: Uint8Array;
}

/** Every line of the vector, from its inputs, through the real secure channel. */
async function compute(inputs: ReadonlyMap<string, string>): Promise<Map<Key, string>> {
  const input = (key: Key) => fromHex(inputs.get(key) ?? "");
  const out = new Map<Key, string>();
  const psk = roomKey(DEFAULT_ROOM);
  out.set("psk", hex(psk));
  out.set("prologue", hex(NOISE_PROLOGUE));
  const party = (side: Side): Party => {
    const identity = identityFromSeed(input(`${side} identity seed`));
    const staticKey = keyPairFromPrivate(input(`${side} static private`));
    const ephemeralKey = keyPairFromPrivate(input(`${side} ephemeral private`));
    const hello = input(`${side} hello payload`);
    const payload = signedHandshakePayload(hello, identity, staticKey.publicKey);
    out.set(`${side} identity seed`, inputs.get(`${side} identity seed`) ?? "");
    out.set(`${side} node id`, hex(identity.publicKey));
    out.set(`${side} static private`, inputs.get(`${side} static private`) ?? "");
    out.set(`${side} static public`, hex(staticKey.publicKey));
    out.set(`${side} ephemeral private`, inputs.get(`${side} ephemeral private`) ?? "");
    out.set(`${side} ephemeral public`, hex(ephemeralKey.publicKey));
    out.set(`${side} hello payload`, hex(hello));
    out.set(`${side} signature`, hex(payload.subarray(hello.length)));
    return { identity, staticKey, ephemeralKey, hello, payload };
  };
  const initiator = party("initiator");
  const responder = party("responder");

  // The real channel, both ends, over an in-memory pair: what each end puts on the wire.
  const [dialler, listener] = createMemoryPair();
  const toResponder: Uint8Array[] = [];
  const toInitiator: Uint8Array[] = [];
  const received = new Map<Side, Uint8Array[]>([
    ["initiator", []],
    ["responder", []],
  ]);
  let closed: string | undefined;
  const ends: Array<[Side, ByteStream, Party]> = [
    ["initiator", recorded(dialler, toResponder), initiator],
    ["responder", recorded(listener, toInitiator), responder],
  ];
  const streams = ends.map(([side, inner, p]) => {
    const options = { identity: p.identity, staticKey: p.staticKey, roomKey: psk };
    const stream = secureStream(inner, options, { ephemeralKey: p.ephemeralKey });
    stream.start({
      data: (chunk) => received.get(side)?.push(chunk.slice()),
      close: (info) => {
        closed ??= `${side}: ${info.reason ?? info.error ?? info.by}`;
      },
    });
    stream.write(helloFrame(p.hello));
    return stream;
  });
  // The dialler hands the listener's HELLO up only on the confirmation: then all is sent.
  await waitFor(() => (received.get("initiator")?.length ?? 0) > 0 || closed, 5000, "link up");
  expect(closed).toBeUndefined();
  for (const stream of streams) stream.destroy();
  expect(concatBytes(received.get("initiator") ?? [])).toEqual(helloFrame(responder.hello));
  expect(concatBytes(received.get("responder") ?? [])).toEqual(helloFrame(initiator.hello));
  const [m1, m3, ...moreOut] = noiseMessages(toResponder);
  const [m2, confirmation, ...moreBack] = noiseMessages(toInitiator);
  expect([moreOut.length, moreBack.length]).toEqual([0, 0]);
  for (const [key, message] of [
    ["message 1", m1],
    ["message 2", m2],
    ["message 3", m3],
    ["confirmation", confirmation],
  ] as const)
    out.set(key, hex(message ?? new Uint8Array(0)));

  // The bare Noise handshake with the same keys and payloads writes the same messages,
  // and gives the handshake hash.
  const bare = (initiatorSide: boolean, p: Party) =>
    new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: initiatorSide,
      prologue: NOISE_PROLOGUE,
      s: p.staticKey,
      e: p.ephemeralKey,
      psks: [psk],
    });
  const init = bare(true, initiator);
  const resp = bare(false, responder);
  const bareMessages = [
    [init, resp, new Uint8Array(0)],
    [resp, init, responder.payload],
    [init, resp, initiator.payload],
  ] as const;
  const written = bareMessages.map(([writer, reader, payload]) => {
    const w = writer.writeMessage(payload);
    if (!w.ok) throw new Error(`bare handshake: ${w.reason}`);
    expect(reader.readMessage(w.message).ok).toBe(true);
    return hex(w.message);
  });
  const streamed = (["message 1", "message 2", "message 3"] as const).map((k) => out.get(k) ?? "");
  expect(written).toEqual(streamed);
  expect(hex(init.handshakeHash)).toBe(hex(resp.handshakeHash));
  out.set("handshake hash", hex(init.handshakeHash));
  return out;
}

describe("the secure channel's test vector (docs/PROTOCOL.md §9)", () => {
  test("the code reproduces every line of the document's vector, byte for byte", async () => {
    const block = docBlock(await Bun.file(DOC_PATH).text());
    const inputs = parseBlock(block);
    expect([...inputs.keys()]).toEqual([...KEYS]);
    expect(renderBlock(await compute(inputs))).toBe(block);
  });

  test("the vector's HELLO payloads name the vector's identities", async () => {
    const inputs = parseBlock(docBlock(await Bun.file(DOC_PATH).text()));
    for (const side of ["initiator", "responder"] as const) {
      const hello = decodeHello(fromHex(inputs.get(`${side} hello payload`) ?? ""));
      expect(hex(hello.nodeId)).toBe(inputs.get(`${side} node id`) as string);
    }
  });
});
