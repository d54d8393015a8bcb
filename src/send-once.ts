import type { ConsolaInstance } from "consola";
import { type ChatMessage, type NeighbourInfo, PeerNode } from "./node/peer-node.ts";
import type { Endpoint } from "./transport/byte-stream.ts";
import { dialTcp } from "./transport/tcp.ts";

/** How long {@link sendOnce} waits for its messages to leave before giving up. */
export const SEND_FLUSH_TIMEOUT_MS = 5000;

/** What {@link sendOnce} needs. */
export interface SendOnceConfig {
  readonly peer: Endpoint;
  /** Each must satisfy the protocol's text limits. */
  readonly texts: readonly string[];
  readonly nick: string;
  readonly logger: ConsolaInstance;
}

/** How a one-shot send went. */
export type SendOnceResult =
  | {
      readonly status: "sent";
      readonly to: NeighbourInfo;
      readonly messages: readonly ChatMessage[];
    }
  | { readonly status: "unreachable"; readonly reason: string }
  | { readonly status: "unwritten"; readonly to: NeighbourInfo; readonly reason: string };

/**
 * Joins one peer without listening, floods `texts` through it, waits until every byte
 * has been handed to the kernel, says BYE and disconnects. Never rejects.
 */
export async function sendOnce(config: SendOnceConfig): Promise<SendOnceResult> {
  const node = new PeerNode({
    nick: config.nick,
    listenPort: 0,
    logger: config.logger,
    dial: (endpoint) => dialTcp(endpoint),
  });
  const outcome = await node.connect(config.peer);
  if (outcome.status !== "connected" && outcome.status !== "already-connected") {
    await node.close("failed");
    return {
      status: "unreachable",
      reason: outcome.status === "self" ? "that is this process" : outcome.reason,
    };
  }
  const messages: ChatMessage[] = [];
  for (const text of config.texts) {
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
  return { status: "sent", to: outcome.peer, messages };
}
