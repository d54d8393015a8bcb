import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DirectMessage, DirectReceipt } from "../../src/direct/direct-messages.ts";
import { directFrame, openDirect, sealBody, sealDirect, sealKey } from "../../src/direct/seal.ts";
import { dh, generateKeyPair } from "../../src/noise/primitives.ts";
import { FloodKind, FrameType } from "../../src/protocol/constants.ts";
import { DirectType, directTag, encodeInnerUnsigned } from "../../src/protocol/direct.ts";
import { decodeFlood, floodKind } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { hex } from "../../src/protocol/hex.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { sealingPublicKey } from "../../src/secure/sealing-key.ts";
import type { RunningPeer } from "../../src/start-peer.ts";
import { TestNetwork, type TestPeer } from "../helpers/network.ts";
import { type RawClient, rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
  await net?.close();
  net = undefined;
});

/** What a peer's direct messages and receipts were, as they came. */
function watch(p: TestPeer) {
  const seen = {
    direct: [] as DirectMessage[],
    receipts: [] as DirectReceipt[],
    refused: [] as string[],
  };
  p.peer.direct.events.on("direct", (m) => seen.direct.push(m));
  p.peer.direct.events.on("receipt", (r) => seen.receipts.push(r));
  p.peer.direct.events.on("refused", (r) => seen.refused.push(r.reason));
  return seen;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "peerchat-direct-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("direct messages in a chain A – B – C", () => {
  test("C's message to A is shown at A only; B relays and stores it but never sees the text or C's id; C gets the receipt", async () => {
    const relayed: Uint8Array[] = [];
    net = new TestNetwork();
    net.add();
    net.add({ onFrameOut: (_c, frame) => relayed.push(frame.slice()) });
    net.add();
    await net.link([
      [1, 0],
      [2, 1],
    ]);
    const [a, b, c] = [net.peer(0), net.peer(1), net.peer(2)];
    const [atA, atB, atC] = [watch(a), watch(b), watch(c)];
    const text = "the rendezvous is at the old mill";
    const outcome = c.peer.direct.send(a.peer.node.nodeId, text);
    expect(outcome.status).toBe("sent");
    await waitFor(() => atA.direct.length === 1, 5000, "A shows it");
    expect(atA.direct[0]).toMatchObject({
      from: c.peer.node.nodeIdHex,
      text,
      own: false,
      late: false,
    });
    await waitFor(() => atC.receipts.length === 1, 5000, "C gets the receipt");
    expect(atC.receipts[0]?.by).toBe(a.peer.node.nodeIdHex);
    if (outcome.status === "sent") expect(atC.receipts[0]?.of).toBe(outcome.message.id);
    // C shows its own line once; B shows nothing; nobody shows it as room chat.
    expect(atC.direct.map((m) => m.own)).toEqual([true]);
    expect(atB.direct).toEqual([]);
    for (const p of [a, b, c]) expect(p.messages).toEqual([]);

    const secret = Buffer.from(text);
    const cId = Buffer.from(c.peer.node.nodeId);
    // What B relayed: the message and the receipt; the text in no frame at all.
    const floods = relayed.filter(
      (f) => f[4] === FrameType.Flood && floodKind(f, 5) === FloodKind.Direct,
    );
    expect(floods.length).toBe(2);
    // (C's id is in what B relays of C's presence, PEERS and sync: C is in the room.
    // It is in no byte of the direct message or its receipt.)
    for (const f of relayed) expect(Buffer.from(f).includes(secret)).toBe(false);
    for (const f of floods) expect(Buffer.from(f).includes(cId)).toBe(false);
    // What B keeps: both, as sealed as they came.
    const stored = b.peer.store.latest(10);
    expect(stored.map((m) => floodKind(m.payload, 0))).toEqual([
      FloodKind.Direct,
      FloodKind.Direct,
    ]);
    for (const m of stored) {
      expect(Buffer.from(m.payload).includes(secret)).toBe(false);
      expect(Buffer.from(m.payload).includes(cId)).toBe(false);
    }
    // What B logged.
    expect(b.log.find(text)).toEqual([]);
  });

  test("A is down when C writes; restarted with its identity and data dir, A shows it late, and C sees the receipt", async () => {
    const dir = tempDir();
    const aIdentity = generateIdentity();
    net = new TestNetwork();
    net.add({ identity: aIdentity, history: { path: join(dir, "a.db") } });
    net.add();
    net.add();
    await net.link([
      [1, 0],
      [2, 1],
    ]);
    const atC = watch(net.peer(2));
    net.kill(0);
    await waitFor(
      () => !net?.peer(1).peer.node.isNeighbour(hex(aIdentity.publicKey)),
      5000,
      "A gone",
    );
    const outcome = net.peer(2).peer.direct.send(aIdentity.publicKey, "while you were out");
    expect(outcome.status).toBe("sent");
    await waitFor(() => net?.peer(1).peer.store.size === 1, 5000, "B keeps it");
    const a = net.restart(0);
    const atA = watch(a);
    expect(a.peer.node.nodeIdHex).toBe(hex(aIdentity.publicKey));
    await net.link([[0, 1]]);
    await waitFor(() => atA.direct.length === 1, 10_000, "A shows it, late");
    expect(atA.direct[0]).toMatchObject({ text: "while you were out", late: true, own: false });
    await waitFor(() => atC.receipts.length === 1, 10_000, "C sees the receipt");
    expect(atC.receipts[0]?.by).toBe(hex(aIdentity.publicKey));
  }, 30_000);
});

describe("refused and never shown", () => {
  /** A raw neighbour of `to` in the room, under `identity`. */
  async function neighbour(
    to: RunningPeer,
    identity: Identity = generateIdentity(),
  ): Promise<RawClient> {
    const client = await rawConnect(to.listen, { identity });
    client.write(encodeHello({ nodeId: client.nodeId, listenPort: 0, nick: "raw" }));
    await waitFor(() => client.frames.length > 0 || client.closed, 5000, "handshake");
    cleanup.push(() => client.terminate());
    return client;
  }

  test("altered in transit, re-sealed by a third party in C's name, replayed: A shows none of them", async () => {
    net = TestNetwork.start(1);
    const a = net.peer(0);
    const atA = watch(a);
    const aId = a.peer.node.nodeId;
    const carol = generateIdentity();
    const mallory = generateIdentity();
    const relay = await neighbour(a.peer);
    const draft = (text: string, author = carol, to = aId): Uint8Array => {
      const content = { type: DirectType.Text, text } as const;
      const sealed = sealDirect({ author, nick: "carol", to, content }, Date.now());
      if (sealed === undefined) throw new Error("no sealing key");
      return sealed.frame;
    };

    // 1. Altered in transit: one byte of the sealed part flipped (the envelope's
    // one-time signature no longer holds): dropped by the relay check, never opened.
    const altered = draft("pay mallory");
    altered[altered.length - 20] = (altered[altered.length - 20] as number) ^ 1;
    relay.write(altered);
    await waitFor(() => a.peer.node.stats.forged === 1, 5000, "altered: refused");

    // 2. Altered and re-signed outside (a fresh one-time origin): the seal does not open.
    const resigned = decodeFlood(draft("pay mallory").subarray(5));
    const body = resigned.body.slice();
    body[body.length - 20] = (body[body.length - 20] as number) ^ 1;
    relay.write(directFrame(resigned.id, resigned.sentAt, body).frame);
    await waitFor(() => atA.refused.length === 1, 5000, "re-signed: refused");

    // 3. Carol wrote to mallory; mallory re-seals carol's signed words to A.
    const toMallory = decodeFlood(draft("meet me at noon", carol, mallory.publicKey).subarray(5));
    const opened = openDirect(
      mallory,
      directTag(mallory.publicKey),
      toMallory.id,
      toMallory.sentAt,
      toMallory.body,
    );
    if (opened.status !== "opened") throw new Error("mallory could not open its own message");
    const resealed = sealDirect(
      { author: mallory, nick: "carol", to: aId, content: opened.inner.content },
      Date.now(),
    );
    // Mallory can seal only as mallory: to claim carol, the inner author must be carol's id,
    // and carol's signature was made for mallory's envelope. Sent both ways:
    const frame = resealed?.frame as Uint8Array;
    relay.write(frame); // signed by mallory: opens, and shows as *mallory*, not carol
    await waitFor(() => atA.direct.length === 1, 5000, "mallory's own message");
    expect(atA.direct[0]?.from).toBe(hex(mallory.publicKey));
    const claimsCarol = encodeInnerUnsigned({ ...opened.inner });
    expect(Buffer.from(claimsCarol).includes(Buffer.from(carol.publicKey))).toBe(true);
    relay.write(resealedAs(claimsCarol, opened.inner.signature, aId));
    await waitFor(() => atA.refused.length === 2, 5000, "carol's words re-sealed: refused");

    // 4. A genuine message from carol, shown once; then replayed as it was, and under a
    // new envelope: not shown again.
    const genuine = draft("the real one");
    relay.write(genuine);
    await waitFor(() => atA.direct.some((m) => m.text === "the real one"), 5000, "genuine shown");
    relay.write(genuine.slice());
    const replay = decodeFlood(genuine.subarray(5));
    const renamed = crypto.getRandomValues(new Uint8Array(16));
    relay.write(directFrame(renamed, replay.sentAt, replay.body.slice()).frame);
    await waitFor(() => atA.refused.length === 3, 5000, "replay under a new envelope: refused");
    await waitFor(() => a.peer.node.stats.duplicates >= 1, 5000, "replay as it was: a duplicate");
    expect(atA.direct.filter((m) => m.from === hex(carol.publicKey)).map((m) => m.text)).toEqual([
      "the real one",
    ]);
    expect(a.messages).toEqual([]);
  });
});

/** `unsigned` with `signature` sealed to `to` in a fresh envelope: a re-sealing attack. */
function resealedAs(unsigned: Uint8Array, signature: Uint8Array, to: Uint8Array): Uint8Array {
  const id = crypto.getRandomValues(new Uint8Array(16));
  const sentAt = Date.now();
  const ephemeral = generateKeyPair();
  const recipientKey = sealingPublicKey(to) as Uint8Array;
  const shared = dh(ephemeral.privateKey, recipientKey) as Uint8Array;
  const key = sealKey(shared, ephemeral.publicKey, recipientKey);
  const plaintext = new Uint8Array([...unsigned, ...signature]);
  return directFrame(
    id,
    sentAt,
    sealBody(key, directTag(to), ephemeral.publicKey, id, sentAt, plaintext),
  ).frame;
}
