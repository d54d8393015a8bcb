import { ProtocolError } from "../errors.ts";
import { ByteReader } from "./byte-reader.ts";
import { ByteWriter, encodeUtf8 } from "./byte-writer.ts";
import { FrameType, HELLO_MAGIC, NODE_ID_BYTES, PROTOCOL_VERSION } from "./constants.ts";
import { nickProblem } from "./text.ts";

/** HELLO: the first frame each side sends on a new link. */
export interface Hello {
  readonly version: number;
  /** 32 bytes; the sender's node identity. */
  readonly nodeId: Uint8Array;
  /** Port the sender accepts connections on; 0 = not listening. */
  readonly listenPort: number;
  readonly nick: string;
}

/** Encodes a HELLO frame. The nick must already satisfy the protocol limits. */
export function encodeHello(hello: Omit<Hello, "version"> & { version?: number }): Uint8Array {
  if (hello.nodeId.length !== NODE_ID_BYTES) throw new Error("nodeId must be 32 bytes");
  const nick = encodeUtf8(hello.nick);
  return ByteWriter.frame(FrameType.Hello, 4 + 1 + NODE_ID_BYTES + 2 + 2 + nick.length)
    .bytes(HELLO_MAGIC)
    .u8(hello.version ?? PROTOCOL_VERSION)
    .bytes(hello.nodeId)
    .u16(hello.listenPort)
    .str(nick)
    .done();
}

/**
 * Decodes a HELLO payload. Throws {@link ProtocolError}: `BAD_HANDSHAKE` for a wrong
 * magic, `VERSION_MISMATCH` for another version (checked before the rest, whose layout
 * that version may have changed), and field errors for the rest.
 */
export function decodeHello(payload: Uint8Array): Hello {
  const r = new ByteReader(payload);
  if (r.remaining < HELLO_MAGIC.length + 1) {
    throw new ProtocolError("BAD_HANDSHAKE", "HELLO too short for magic and version");
  }
  const magic = r.bytes(HELLO_MAGIC.length);
  if (!magic.every((b, i) => b === HELLO_MAGIC[i])) {
    throw new ProtocolError("BAD_HANDSHAKE", "HELLO magic is not PCHT");
  }
  const version = r.u8();
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "VERSION_MISMATCH",
      `peer speaks protocol version ${version}, this peer speaks version ${PROTOCOL_VERSION}`,
    );
  }
  const nodeId = r.bytes(NODE_ID_BYTES).slice();
  const listenPort = r.u16();
  const nick = r.str("nick");
  r.end("HELLO");
  const problem = nickProblem(nick);
  if (problem) throw new ProtocolError("BAD_FIELD", `HELLO ${problem}`);
  return { version, nodeId, listenPort, nick };
}
