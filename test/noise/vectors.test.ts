import { describe, expect, test } from "bun:test";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { parseProtocolName } from "../../src/noise/patterns.ts";
import { keyPairFromPrivate } from "../../src/noise/primitives.ts";
import { fromHex, hex } from "../../src/protocol/hex.ts";
import fixture from "../fixtures/noise-25519-aesgcm-sha256.json";

/** One entry of the Noise wiki's test-vector format; absent fields are absent keys. */
interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  init_psks?: string[];
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  resp_remote_static?: string;
  resp_psks?: string[];
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
  source: string;
}

const vectors: Vector[] = fixture.vectors;

function side(v: Vector, initiator: boolean): HandshakeState {
  const p = initiator ? "init" : "resp";
  const get = (field: string): string | undefined =>
    (v as unknown as Record<string, string | undefined>)[`${p}_${field}`];
  const staticKey = get("static");
  const remoteStatic = get("remote_static");
  const psks = (initiator ? v.init_psks : v.resp_psks) ?? [];
  return new HandshakeState({
    protocolName: v.protocol_name,
    initiator,
    prologue: fromHex(get("prologue")!),
    s: staticKey ? keyPairFromPrivate(fromHex(staticKey)) : undefined,
    e: keyPairFromPrivate(fromHex(get("ephemeral")!)),
    rs: remoteStatic ? fromHex(remoteStatic) : undefined,
    psks: psks.map(fromHex),
  });
}

describe("noise vectors - 25519_AESGCM_SHA256", () => {
  test("the fixture holds every vector the shared file lists", () => {
    expect(vectors.map((v) => v.protocol_name).sort()).toEqual([
      "Noise_KKpsk0_25519_AESGCM_SHA256",
      "Noise_NNpsk0_25519_AESGCM_SHA256",
      "Noise_XX_25519_AESGCM_SHA256",
      "Noise_XX_25519_AESGCM_SHA256",
      "Noise_XXpsk3_25519_AESGCM_SHA256",
    ]);
  });

  test.each(vectors.map((v, i) => [`${i}: ${v.protocol_name} (${v.source})`, v] as const))(
    "%s - reproduces every ciphertext and the handshake hash",
    (_name, v) => {
      const init = side(v, true);
      const resp = side(v, false);
      const handshakeMessages = parseProtocolName(v.protocol_name).messages.length;
      expect(v.messages.length).toBeGreaterThan(handshakeMessages);

      for (let i = 0; i < handshakeMessages; i++) {
        const m = v.messages[i]!;
        const [writer, reader] = i % 2 === 0 ? [init, resp] : [resp, init];
        const written = writer.writeMessage(fromHex(m.payload));
        if (!written.ok) throw new Error(`message ${i}: write failed: ${written.reason}`);
        expect(hex(written.message)).toBe(m.ciphertext);
        const read = reader.readMessage(written.message);
        if (!read.ok) throw new Error(`message ${i}: read failed: ${read.reason}`);
        expect(hex(read.payload)).toBe(m.payload);
        expect(written.done).toBe(i === handshakeMessages - 1);
        expect(read.done).toBe(written.done);
      }

      expect(hex(init.handshakeHash)).toBe(hex(resp.handshakeHash));
      if (v.handshake_hash !== undefined) expect(hex(init.handshakeHash)).toBe(v.handshake_hash);
      if (v.init_static && v.resp_static) {
        expect(hex(init.remoteStaticKey!)).toBe(
          hex(keyPairFromPrivate(fromHex(v.resp_static)).publicKey),
        );
        expect(hex(resp.remoteStaticKey!)).toBe(
          hex(keyPairFromPrivate(fromHex(v.init_static)).publicKey),
        );
      }

      const initCiphers = init.split();
      const respCiphers = resp.split();
      for (let i = handshakeMessages; i < v.messages.length; i++) {
        const m = v.messages[i]!;
        const [sender, receiver] =
          i % 2 === 0
            ? [initCiphers.send, respCiphers.receive]
            : [respCiphers.send, initCiphers.receive];
        const ciphertext = sender.encrypt(fromHex(m.payload));
        expect(hex(ciphertext)).toBe(m.ciphertext);
        const opened = receiver.decrypt(ciphertext);
        if (!opened.ok) throw new Error(`message ${i}: decrypt failed: ${opened.reason}`);
        expect(hex(opened.plaintext)).toBe(m.payload);
      }
    },
  );
});
