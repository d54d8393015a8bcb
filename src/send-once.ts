import type { ConsolaInstance } from "consola";
import { type DirectMessage, sealText } from "./direct/direct-messages.ts";
import { secureLinks } from "./link/secure-links.ts";
import type { ChatMessage } from "./node/delivery.ts";
import type { NeighbourInfo } from "./node/node-events.ts";
import { PeerNode } from "./node/peer-node.ts";
import type { Endpoint } from "./protocol/endpoint.ts";
import { generateIdentity, type Identity } from "./secure/identity.ts";
import { DEFAULT_ROOM } from "./secure/room.ts";

/** How long {@link sendOnce} waits for its messages to leave before giving up. */
export const SEND_FLUSH_TIMEOUT_MS = 5000;

/** What {@link sendOnce} needs. */
export interface SendOnceConfig {
  readonly peer: Endpoint;
  /** Each must satisfy the protocol's text limits. */
  readonly texts: readonly string[];
  readonly nick: string;
  readonly logger: ConsolaInstance;
  /** Who sends; default a fresh identity. */
  readonly identity?: Identity;
  /** The room the peer is in; default `lobby`. */
  readonly room?: string;
  /** Seal the texts to this node id, as direct messages; room messages without it. */
  readonly to?: Uint8Array;
}

/** How a one-shot send went. */
export type SendOnceResult =
  | {
      readonly status: "sent";
      readonly to: NeighbourInfo;
      readonly messages: readonly ChatMessage[];
      readonly direct: readonly DirectMessage[];
    }
  | {
      readonly status: "unreachable";
      readonly reason: string;
      /** The address answered but the link did not come up (another room, say). */
      readonly refused: boolean;
    }
  | { readonly status: "unwritten"; readonly to: NeighbourInfo; readonly reason: string };

/**
 * Joins one peer without listening, floods `texts` through it, waits until every byte
 * has been handed to the kernel, says BYE and disconnects. Never rejects.
 */
export async function sendOnce(config: SendOnceConfig): Promise<SendOnceResult> {
  const identity = config.identity ?? generateIdentity();
  const node = new PeerNode({
    nick: config.nick,
    listenPort: 0,
    logger: config.logger,
    identity,
    dial: secureLinks(identity, config.room ?? DEFAULT_ROOM).dial,
  });
  const outcome = await node.connect(config.peer);
  if (outcome.status !== "connected" && outcome.status !== "already-connected") {
    await node.close("failed");
    return {
      status: "unreachable",
      reason: outcome.status === "self" ? "that is this process" : outcome.reason,
      refused: outcome.status === "failed" && outcome.stage === "handshake",
    };
  }
  const messages: ChatMessage[] = [];
  const direct: DirectMessage[] = [];
  for (const text of config.texts) {
    if (config.to !== undefined) {
      const sent = sealText(identity, node.nick, config.to, text, Date.now());
      if (sent === undefined) {
        await node.close("failed");
        return {
          status: "unwritten",
          to: outcome.peer,
          reason: "that node id has no key to seal to",
        };
      }
      node.publish(sent.frame);
      direct.push(sent.message);
      continue;
    }
    const sent = node.sendChat(text);
    if (sent.status === "sent") messages.push(sent.message);
  }
  const deadline = Date.now() + SEND_FLUSH_TIMEOUT_MS;
  while (node.pendingBytes > 0 && node.neighbourCount > 0 && Date.now() < deadline)
    await Bun.sleep(1);
  const written = node.pendingBytes === 0 && node.neighbourCount > 0;
  await node.close("sent");
  if (!written)
    return {
      status: "unwritten",
      to: outcome.peer,
      reason: "the link closed or stalled before the message was written",
    };
  return { status: "sent", to: outcome.peer, messages, direct };
}
