import { afterEach, describe, expect, test } from "bun:test";
import type { NeighbourInfo } from "../../src/node/node-events.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, FrameType, WireErrorCode } from "../../src/protocol/constants.ts";
import { decodeError } from "../../src/protocol/control.ts";
import { encodeFlood, signFloodFrame } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { generateIdentity, type Identity } from "../../src/secure/identity.ts";
import { type PeerConfig, type RunningPeer, startPeer } from "../../src/start-peer.ts";
import { testLogger } from "../helpers/logger.ts";
import { rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A real peer on 127.0.0.1 that dials nobody on its own, with the peer-ups it saw. */
function peer(nick: string, config: Partial<PeerConfig> = {}) {
  const running: RunningPeer = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick,
    degree: 0,
    logger: testLogger(3).logger,
    ...config,
  });
  const ups: NeighbourInfo[] = [];
  running.node.events.on("peer-up", (p) => ups.push(p));
  cleanup.push(() => running.close());
  return { running, node: running.node, ups };
}

/** A CHAT FLOOD by a stranger whose signature does not verify. */
function forged(text: string): Uint8Array {
  const author: Identity = generateIdentity();
  const frame = encodeFlood({
    id: crypto.getRandomValues(new Uint8Array(16)),
    origin: author.publicKey,
    seq: 1,
    sentAt: Date.now(),
    hops: 0,
    kind: FloodKind.Chat,
    signature: new Uint8Array(64),
    body: encodeChatBody({ nick: "mallory", text }),
  });
  const signed = signFloodFrame(frame, (m) => author.sign(m));
  signed[signed.length - 1] = (signed[signed.length - 1] as number) ^ 1;
  return signed;
}

describe("a refused dialler is told why, over TCP", () => {
  test("a full peer: the dial fails in the handshake, naming too many peers", async () => {
    const hub = peer("hub", { maxPeers: 1 });
    const first = peer("first");
    const late = peer("late");
    expect((await first.node.connect(hub.running.listen)).status).toBe("connected");
    const outcome = await late.node.connect(hub.running.listen);
    expect(outcome).toEqual({
      status: "failed",
      stage: "handshake",
      reason: "refused: too many peers (limit 1)",
    });
    expect(late.ups).toEqual([]);
    expect(hub.node.connectionCount).toBe(1);
  });

  test("a barred node id: the dial fails in the handshake, naming the bar, and never links", async () => {
    const victim = peer("victim");
    // Mallory relays three FLOODs with bad signatures: disconnected with ERROR 9, barred.
    const mallory = generateIdentity();
    const raw = await rawConnect(victim.running.listen, { identity: mallory });
    cleanup.push(() => raw.terminate());
    raw.write(encodeHello({ nodeId: mallory.publicKey, listenPort: 0, nick: "mallory" }));
    await waitFor(() => raw.frames.length > 0, 5000, "handshake");
    for (let i = 0; i < 3; i++) raw.write(forged(`forged ${i}`));
    await waitFor(() => raw.closed, 5000, "mallory disconnected");
    const error = raw.frames.find((f) => f.type === FrameType.Error);
    expect(error && decodeError(error.payload).code).toBe(WireErrorCode.BadSignature);

    // Now a real node with mallory's identity dials: it is refused, and never up.
    const again = peer("mallory", { identity: mallory });
    const victimUps = victim.ups.length;
    const outcome = await again.node.connect(victim.running.listen);
    expect(outcome.status).toBe("failed");
    if (outcome.status !== "failed") return;
    expect(outcome.stage).toBe("handshake");
    expect(outcome.reason).toMatch(/^refused: barred for abuse for another \d+ s$/);
    expect(again.ups).toEqual([]);
    expect(victim.ups.length).toBe(victimUps);
    expect(victim.node.neighbourCount).toBe(0);
  });
});
