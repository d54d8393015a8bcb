import { afterEach, expect, test } from "bun:test";
import { keyOf, type Salt } from "../../src/history/sketch.ts";
import { DAY_MS } from "../../src/history/store.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, FrameType, WireErrorCode } from "../../src/protocol/constants.ts";
import { decodeError } from "../../src/protocol/control.ts";
import { encodeFlood, signFloodFrame } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import {
  encodeHistory,
  encodeSyncBegin,
  encodeSyncKeys,
  MAX_KEYS_PER_FRAME,
  SyncOp,
} from "../../src/protocol/sync.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
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

const SALT: Salt = [0x1234, 0x5678];

/** A raw client linked to `to`, HELLO done. */
async function attacker(to: TestPeer, identity = generateIdentity()): Promise<RawClient> {
  const client = await rawConnect(to.peer.listen, { identity });
  client.write(encodeHello({ nodeId: client.nodeId, listenPort: 0, nick: "mallory" }));
  await waitFor(() => to.peer.node.neighbourCount > 0 || client.closed, 5000, "handshake");
  cleanup.push(() => client.terminate());
  return client;
}

/** A CHAT FLOOD payload by `author`; `forge` spoils its signature. */
function payload(author: Identity, text: string, sentAt: number, forge: boolean): Uint8Array {
  const frame = encodeFlood({
    id: crypto.getRandomValues(new Uint8Array(16)),
    origin: author.publicKey,
    seq: 1,
    sentAt,
    hops: 0,
    kind: FloodKind.Chat,
    signature: new Uint8Array(64),
    body: encodeChatBody({ nick: "carol", text }),
  });
  signFloodFrame(frame, (m) => author.sign(m));
  if (forge) frame[frame.length - 1] = 0x21; // the text's last byte: the signature no longer holds
  return frame.subarray(5);
}

/** The 8-byte keys of these payloads' ids under {@link SALT}, as a LIST or WANT carries them. */
function keys(payloads: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(payloads.length * 8);
  const view = new DataView(out.buffer);
  const words = new Uint32Array(2);
  payloads.forEach((p, i) => {
    keyOf(p, 0, SALT, words);
    view.setUint32(i * 8, words[0] as number);
    view.setUint32(i * 8 + 4, words[1] as number);
  });
  return out;
}

/**
 * Offers `offered` to `victim` by sync, as the initiator of a round that lists exactly
 * their keys, and pushes them when the victim asks (as it will: it lacks them all).
 */
async function offer(victim: TestPeer, client: RawClient, offered: readonly Uint8Array[]) {
  const now = Date.now();
  client.write(encodeSyncBegin(7, SALT, now - 6 * DAY_MS, now + 60_000, offered.length, [1, 2]));
  await waitFor(() => syncOps(client).includes(SyncOp.Strata), 5000, "the victim's strata");
  client.write(encodeSyncKeys(SyncOp.List, 7, true, keys(offered)));
  await waitFor(() => syncOps(client).includes(SyncOp.Want), 5000, "the victim's WANT");
  for (const p of offered) client.write(encodeHistory(p));
  void victim;
}

const syncOps = (client: RawClient) =>
  client.frames.filter((f) => f.type === FrameType.Sync).map((f) => f.payload[0]);

const errorOf = (client: RawClient) => {
  const frame = client.frames.find((f) => f.type === FrameType.Error);
  return frame && decodeError(frame.payload).code;
};

test("forged messages offered by sync are neither shown, stored nor passed on; the third closes the link with ERROR 9", async () => {
  net = TestNetwork.start(2);
  await net.link([[1, 0]]);
  const [victim, bob] = [net.peer(0), net.peer(1)];
  const client = await attacker(victim);
  const carol = generateIdentity();
  const forged = [1, 2, 3].map((i) =>
    payload(carol, `forged ${i}`, Date.now() - 60 * 60_000, true),
  );
  await offer(victim, client, forged);
  await waitFor(() => client.closed, 5000, "the forger dropped");
  expect(errorOf(client)).toBe(WireErrorCode.BadSignature);
  expect(victim.peer.node.stats.forged).toBe(3);
  expect(victim.messages.some((m) => m.text.startsWith("forged"))).toBe(false);
  expect(victim.peer.store.size).toBe(0);
  // A round between the victim and Bob: nothing of it comes his way.
  const rounds: unknown[] = [];
  victim.peer.history.events.on("round", (r) => rounds.push(r));
  victim.peer.history.syncWith(bob.peer.node.nodeIdHex);
  await waitFor(() => rounds.length > 0, 5000, "a round with Bob");
  expect(bob.messages.some((m) => m.text.startsWith("forged"))).toBe(false);
  expect(bob.peer.store.size).toBe(0);
  expect(victim.log.find("bad signature").some((e) => e.type === "warn")).toBe(true);
});

test("a genuine message older than --keep is not taken in; one just inside is, shown late and passed on", async () => {
  net = TestNetwork.start(2, { history: { keepMs: 2 * DAY_MS } });
  await net.link([[1, 0]]);
  const [victim, bob] = [net.peer(0), net.peer(1)];
  const client = await attacker(victim);
  const carol = generateIdentity();
  const old = payload(carol, "from three days ago", Date.now() - 3 * DAY_MS, false);
  const recent = payload(carol, "from yesterday", Date.now() - DAY_MS, false);
  await offer(victim, client, [old, recent]);
  await waitFor(() => victim.messages.some((m) => m.text === "from yesterday"), 5000, "late");
  const late = victim.messages.find((m) => m.text === "from yesterday");
  expect(late?.late).toBe(true);
  await waitFor(() => bob.messages.some((m) => m.text === "from yesterday"), 5000, "passed on");
  expect(victim.messages.some((m) => m.text === "from three days ago")).toBe(false);
  expect(victim.peer.store.size).toBe(1);
  expect(bob.peer.store.size).toBe(1);
  expect(victim.peer.node.stats.stale).toBeGreaterThanOrEqual(1);
  expect(client.closed).toBe(false);
});

test("a neighbour that starts a round every 10 ms is answered a few times, then dropped with ERROR 10", async () => {
  net = TestNetwork.start(1);
  const victim = net.peer(0);
  const client = await attacker(victim);
  const now = Date.now();
  for (let i = 0; i < 200 && !client.closed; i++) {
    client.write(encodeSyncBegin(i, SALT, now - DAY_MS, now + 60_000, 5, [1, 2]));
    await Bun.sleep(10);
  }
  await waitFor(() => client.closed, 5000, "dropped");
  expect(errorOf(client)).toBe(WireErrorCode.RateLimited);
  // Rounds answered: the burst and what the rate refilled, no more.
  const answered = syncOps(client).filter((op) => op === SyncOp.Strata).length;
  expect(answered).toBeLessThanOrEqual(5 + 2);
  expect(answered).toBeGreaterThanOrEqual(1);
});

test("a neighbour listing a million keys is dropped once it passes twice what the store may hold", async () => {
  net = TestNetwork.start(1, { history: { maxMessages: 20_000 } });
  const victim = net.peer(0);
  const client = await attacker(victim);
  const now = Date.now();
  client.write(encodeSyncBegin(9, SALT, now - DAY_MS, now + 60_000, 1_000_000, [1, 2]));
  await waitFor(() => syncOps(client).includes(SyncOp.Strata), 5000, "strata");
  const chunk = crypto.getRandomValues(new Uint8Array(MAX_KEYS_PER_FRAME * 8));
  let frames = 0;
  for (; frames < 1_000_000 / MAX_KEYS_PER_FRAME && !client.closed; frames++) {
    crypto.getRandomValues(chunk);
    client.write(encodeSyncKeys(SyncOp.List, 9, false, chunk));
    await Bun.sleep(1);
  }
  await waitFor(() => client.closed, 5000, "dropped");
  expect(errorOf(client)).toBe(WireErrorCode.BadMessage);
  // Dropped within a frame of the limit, not after the million.
  expect(frames).toBeLessThanOrEqual(Math.ceil((2 * 20_000) / MAX_KEYS_PER_FRAME) + 3);
  expect(victim.peer.node.neighbourCount).toBe(0);
});
