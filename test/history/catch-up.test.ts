import { afterEach, expect, test } from "bun:test";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind } from "../../src/protocol/constants.ts";
import { encodeFlood, signFloodFrame } from "../../src/protocol/flood.ts";
import { generateIdentity } from "../../src/secure/identity.ts";
import type { RunningPeer } from "../../src/start-peer.ts";
import { TestNetwork } from "../helpers/network.ts";
import { waitFor } from "../helpers/wait-for.ts";

let net: TestNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** `count` signed CHAT messages by `authors` authors over the last hour, into `peer`'s store. */
function seed(peer: RunningPeer, count: number, authors: number): void {
  const people = Array.from({ length: authors }, () => generateIdentity());
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const author = people[i % authors] as (typeof people)[number];
    const frame = encodeFlood({
      id: crypto.getRandomValues(new Uint8Array(16)),
      origin: author.publicKey,
      seq: Math.floor(i / authors) + 1,
      sentAt: now - 3_600_000 + i,
      hops: 0,
      kind: FloodKind.Chat,
      signature: new Uint8Array(64),
      body: encodeChatBody({ nick: `author${i % authors}`, text: `old ${i}` }),
    });
    signFloodFrame(frame, (m) => author.sign(m));
    peer.store.add(frame, 5, frame.length, now);
  }
  peer.store.flush();
}

test("a catch-up of 3,000 messages is not cut short when a new round starts while it still arrives", async () => {
  net = TestNetwork.start(2);
  const [full, empty] = [net.peer(0), net.peer(1)];
  seed(full.peer, 3000, 30);
  await net.link([[1, 0]]);
  // As soon as the first pushes arrive, the empty peer starts another round (as
  // anti-entropy or news from elsewhere may): what the first round sends must still count.
  await waitFor(() => empty.messages.length > 0, 10_000, "the first pushes");
  let again = 0;
  while (empty.messages.length < 3000 && again < 5) {
    empty.peer.history.syncWith(full.peer.node.nodeIdHex);
    again++;
    await Bun.sleep(20);
  }
  await waitFor(
    () => empty.messages.length >= 3000,
    20_000,
    () => `3,000 late (${empty.messages.length})`,
  );
  expect(new Set(empty.messages.map((m) => m.id)).size).toBe(3000);
  expect(empty.messages.every((m) => m.late === true)).toBe(true);
  expect(net.linked(0, 1)).toBe(true);
  expect(empty.log.find("nobody asked for")).toEqual([]);
  expect(empty.peer.store.size).toBe(3000);
});
