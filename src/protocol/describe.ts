import { decodeChatBody } from "./chat.ts";
import { FLOOD_TYPE_NAMES_BY_KIND, FloodKind, FRAME_TYPE_NAMES, FrameType } from "./constants.ts";
import { decodeBye, decodeError, decodeNonce } from "./control.ts";
import { decodeFlood } from "./flood.ts";
import { decodeHello } from "./hello.ts";
import { hex } from "./hex.ts";

/**
 * One line describing a frame, for `--trace`. Never throws: a frame that does not parse
 * is described as such.
 */
export function describeFrame(type: number, payload: Uint8Array): string {
  const name = FRAME_TYPE_NAMES[type] ?? `type 0x${type.toString(16).padStart(2, "0")}`;
  try {
    switch (type) {
      case FrameType.Hello: {
        const h = decodeHello(payload);
        return `${name} v${h.version} node=${hex(h.nodeId).slice(0, 8)} port=${h.listenPort} nick=${JSON.stringify(h.nick)}`;
      }
      case FrameType.Flood: {
        const f = decodeFlood(payload);
        const kind = FLOOD_TYPE_NAMES_BY_KIND[f.kind] ?? `kind 0x${f.kind.toString(16)}`;
        let detail = "";
        if (f.kind === FloodKind.Chat) {
          const chat = decodeChatBody(f.body);
          detail = ` <${chat.nick}> ${JSON.stringify(chat.text.length > 40 ? `${chat.text.slice(0, 40)}…` : chat.text)}`;
        }
        return `${name} ${kind} id=${hex(f.id).slice(0, 8)} origin=${hex(f.origin).slice(0, 8)} seq=${f.seq} hops=${f.hops}${detail}`;
      }
      case FrameType.Ping:
      case FrameType.Pong:
        return `${name} nonce=${decodeNonce(payload, type === FrameType.Ping ? "PING" : "PONG")}`;
      case FrameType.Bye:
        return `${name} ${JSON.stringify(decodeBye(payload))}`;
      case FrameType.Error: {
        const e = decodeError(payload);
        return `${name} code=${e.code} ${JSON.stringify(e.message)}`;
      }
      default:
        return `${name} (${payload.length} bytes)`;
    }
  } catch {
    return `${name} (${payload.length} bytes, malformed)`;
  }
}
