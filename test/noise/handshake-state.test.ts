import { describe, expect, test } from "bun:test";
import { MAX_NOISE_MESSAGE_BYTES } from "../../src/noise/constants.ts";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { BASE_PATTERNS, parsePatternName, pskCount } from "../../src/noise/patterns.ts";
import { generateKeyPair } from "../../src/noise/primitives.ts";
import { SymmetricState } from "../../src/noise/symmetric-state.ts";
import { fromHex, hex } from "../../src/protocol/hex.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";
import { expectNoiseError, LOW_ORDER_POINTS, pair, psk, runHandshake, XXPSK0 } from "./helpers.ts";

const EMPTY = new Uint8Array(0);

/** Copies `bytes` with bit `bit` flipped. */
function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/** Writes message 1 of XXpsk0 by hand, with `e` set to an arbitrary public key. */
function forgedFirstMessage(e: Uint8Array): Uint8Array {
  const symmetric = new SymmetricState(XXPSK0);
  symmetric.mixHash(EMPTY);
  symmetric.mixKeyAndHash(psk(7));
  symmetric.mixHash(e);
  symmetric.mixKey(e);
  const payload = symmetric.encryptAndHash(EMPTY);
  const message = new Uint8Array(e.length + payload.length);
  message.set(e);
  message.set(payload, e.length);
  return message;
}

describe("handshake - XXpsk0 between live peers", () => {
  test("both sides agree on h and learn each other's static key", () => {
    const { init, resp, initStatic, respStatic } = pair(XXPSK0);
    expect(init.remoteStaticKey).toBeUndefined();
    runHandshake(init, resp);
    expect(hex(init.handshakeHash)).toBe(hex(resp.handshakeHash));
    expect(hex(init.remoteStaticKey!)).toBe(hex(respStatic.publicKey));
    expect(hex(resp.remoteStaticKey!)).toBe(hex(initStatic.publicKey));
  });

  test("1000 transport messages each way, interleaved, all decrypt", () => {
    const seed = testSeed(0x5eed);
    const random = seededRandom(seed);
    const { init, resp } = pair(XXPSK0);
    const { initCiphers, respCiphers } = runHandshake(init, resp);
    const directions = [
      [initCiphers.send, respCiphers.receive],
      [respCiphers.send, initCiphers.receive],
    ] as const;
    for (let i = 0; i < 1000; i++) {
      for (const [sender, receiver] of directions) {
        const payload = randomBytes(random, randomInt(random, 300));
        const ciphertext = sender.encrypt(payload);
        expect(ciphertext.length).toBe(payload.length + 16);
        const opened = receiver.decrypt(ciphertext);
        if (!opened.ok) throw new Error(`seed ${seed}: message ${i}: ${opened.reason}`);
        expect(hex(opened.plaintext)).toBe(hex(payload));
      }
    }
    expect(initCiphers.send.nonce).toBe(1000n);
    expect(respCiphers.receive.nonce).toBe(1000n);
  });

  test("the two directions use different keys", () => {
    const { initCiphers, respCiphers } = runHandshake(pair(XXPSK0).init, pair(XXPSK0).resp);
    const plaintext = new Uint8Array(16);
    expect(hex(initCiphers.send.encrypt(plaintext))).not.toBe(
      hex(respCiphers.send.encrypt(plaintext)),
    );
  });

  test("a flipped transport bit fails to decrypt and leaves the nonce alone", () => {
    const seed = testSeed(0xb17);
    const random = seededRandom(seed);
    const { init, resp } = pair(XXPSK0);
    const { initCiphers, respCiphers } = runHandshake(init, resp);
    const ciphertext = initCiphers.send.encrypt(new TextEncoder().encode("hello, peer"));
    for (let i = 0; i < 50; i++) {
      const bit = randomInt(random, ciphertext.length * 8);
      const result = respCiphers.receive.decrypt(flipBit(ciphertext, bit));
      expect(result, `seed ${seed}, bit ${bit}`).toEqual({ ok: false, reason: "decrypt" });
      expect(respCiphers.receive.nonce).toBe(0n);
    }
    const genuine = respCiphers.receive.decrypt(ciphertext);
    expect(genuine.ok && new TextDecoder().decode(genuine.plaintext)).toBe("hello, peer");
  });

  test.each([0, 1, 2])("a flipped bit in handshake message %i fails the reader", (index) => {
    const seed = testSeed(0xf11b + index);
    const random = seededRandom(seed);
    for (let round = 0; round < 10; round++) {
      const { init, resp } = pair(XXPSK0);
      const sides = [init, resp];
      for (let i = 0; i < index; i++) {
        const written = sides[i % 2]!.writeMessage();
        expect(written.ok && sides[(i + 1) % 2]!.readMessage(written.message).ok).toBe(true);
      }
      const written = sides[index % 2]!.writeMessage(new TextEncoder().encode("payload"));
      if (!written.ok) throw new Error(written.reason);
      const bit = randomInt(random, written.message.length * 8);
      const result = sides[(index + 1) % 2]!.readMessage(flipBit(written.message, bit));
      expect(result.ok, `seed ${seed}, bit ${bit}`).toBe(false);
    }
  });

  test("a wrong PSK fails the responder on message 1, and the handshake is then dead", () => {
    const { init, resp } = pair(XXPSK0, { resp: { psks: [psk(8)] } });
    const written = init.writeMessage(new TextEncoder().encode("hi"));
    if (!written.ok) throw new Error(written.reason);
    expect(resp.readMessage(written.message)).toEqual({ ok: false, reason: "decrypt" });
    expectNoiseError(() => resp.writeMessage(), "HANDSHAKE_FAILED");
    expectNoiseError(() => resp.readMessage(written.message), "HANDSHAKE_FAILED");
  });

  test("a different prologue fails the responder on message 1", () => {
    const { init, resp } = pair(XXPSK0, { resp: { prologue: new TextEncoder().encode("v2") } });
    const written = init.writeMessage();
    if (!written.ok) throw new Error(written.reason);
    expect(resp.readMessage(written.message)).toEqual({ ok: false, reason: "decrypt" });
  });

  test.each(LOW_ORDER_POINTS.slice(0, 4))(
    "initiator rejects low-order remote ephemeral %s in message 2",
    (point) => {
      const { init, resp } = pair(XXPSK0);
      const first = init.writeMessage();
      expect(first.ok && resp.readMessage(first.message).ok).toBe(true);
      const second = resp.writeMessage();
      if (!second.ok) throw new Error(second.reason);
      const forged = new Uint8Array(second.message);
      forged.set(fromHex(point), 0);
      expect(init.readMessage(forged)).toEqual({ ok: false, reason: "bad-dh" });
      expectNoiseError(() => init.readMessage(second.message), "HANDSHAKE_FAILED");
    },
  );

  test.each(LOW_ORDER_POINTS.slice(0, 4))(
    "responder refuses to answer low-order remote ephemeral %s",
    (point) => {
      const { resp } = pair(XXPSK0);
      const read = resp.readMessage(forgedFirstMessage(fromHex(point)));
      expect(read.ok).toBe(true);
      expect(resp.writeMessage()).toEqual({ ok: false, reason: "bad-dh" });
    },
  );

  test("the forged-message helper builds a message a responder accepts", () => {
    const { resp } = pair(XXPSK0);
    expect(resp.readMessage(forgedFirstMessage(generateKeyPair().publicKey)).ok).toBe(true);
    expect(resp.writeMessage().ok).toBe(true);
  });

  test("a low-order pre-shared remote static fails the first DH", () => {
    const init = new HandshakeState({
      protocolName: "Noise_IK_25519_AESGCM_SHA256",
      initiator: true,
      s: generateKeyPair(),
      rs: fromHex(LOW_ORDER_POINTS[2]!),
    });
    expect(init.writeMessage()).toEqual({ ok: false, reason: "bad-dh" });
  });

  test("writeMessage refuses a message over 65535 bytes and can then go on", () => {
    const { init, resp } = pair(XXPSK0);
    // Message 1 of XXpsk0 is e (32) + payload + tag (16).
    const largest = MAX_NOISE_MESSAGE_BYTES - 32 - 16;
    expect(init.writeMessage(new Uint8Array(largest + 1))).toEqual({
      ok: false,
      reason: "too-large",
    });
    const written = init.writeMessage(new Uint8Array(largest));
    if (!written.ok) throw new Error(written.reason);
    expect(written.message.length).toBe(MAX_NOISE_MESSAGE_BYTES);
    const read = resp.readMessage(written.message);
    expect(read.ok && read.payload.length).toBe(largest);
  });

  test("readMessage refuses input over 65535 bytes", () => {
    const { resp } = pair(XXPSK0);
    expect(resp.readMessage(new Uint8Array(MAX_NOISE_MESSAGE_BYTES + 1))).toEqual({
      ok: false,
      reason: "too-large",
    });
  });

  test.each([
    ["short of an ephemeral key", 20],
    ["short of a tag", 40],
  ])("readMessage reports truncation: %s", (_name, length) => {
    const { init, resp } = pair(XXPSK0);
    const written = init.writeMessage();
    if (!written.ok) throw new Error(written.reason);
    expect(resp.readMessage(written.message.subarray(0, length))).toEqual({
      ok: false,
      reason: "truncated",
    });
  });

  test("calls out of turn throw OUT_OF_ORDER", () => {
    const { init, resp } = pair(XXPSK0);
    expectNoiseError(() => resp.writeMessage(), "OUT_OF_ORDER");
    expectNoiseError(() => init.readMessage(new Uint8Array(48)), "OUT_OF_ORDER");
    expectNoiseError(() => init.split(), "OUT_OF_ORDER");
    runHandshake(init, resp);
    expectNoiseError(() => init.split(), "OUT_OF_ORDER");
    expectNoiseError(() => init.writeMessage(), "OUT_OF_ORDER");
    expectNoiseError(() => resp.readMessage(new Uint8Array(48)), "OUT_OF_ORDER");
  });
});

describe("handshake - configuration is checked up front", () => {
  const s = generateKeyPair();
  const rs = generateKeyPair().publicKey;
  test.each([
    ["a missing PSK", { protocolName: XXPSK0, initiator: true, s }, "BAD_PSK"],
    [
      "a short PSK",
      { protocolName: XXPSK0, initiator: true, s, psks: [new Uint8Array(31)] },
      "BAD_PSK",
    ],
    [
      "a PSK the pattern has no use for",
      { protocolName: "Noise_XX_25519_AESGCM_SHA256", initiator: true, s, psks: [psk(1)] },
      "BAD_PSK",
    ],
    [
      "XX without a static key",
      { protocolName: XXPSK0, initiator: false, psks: [psk(1)] },
      "MISSING_KEY",
    ],
    [
      "IK without the responder's key",
      { protocolName: "Noise_IK_25519_AESGCM_SHA256", initiator: true, s },
      "MISSING_KEY",
    ],
    [
      "XX with a remote static it will learn",
      { protocolName: XXPSK0, initiator: true, s, rs, psks: [psk(1)] },
      "BAD_KEY",
    ],
    [
      "a 31-byte remote static",
      { protocolName: "Noise_NK_25519_AESGCM_SHA256", initiator: true, rs: rs.subarray(1) },
      "BAD_KEY",
    ],
    [
      "an unknown protocol",
      { protocolName: "Noise_XX_25519_ChaChaPoly_BLAKE2s", initiator: true, s },
      "BAD_PROTOCOL_NAME",
    ],
  ] as const)("refuses %s", (_name, options, code) => {
    expectNoiseError(() => new HandshakeState(options), code);
  });
});

/** Every base pattern plain, with psk0, and with a psk on its last message. */
const PROTOCOLS = Object.keys(BASE_PATTERNS).flatMap((base) => {
  const last = parsePatternName(base).messages.length;
  return [base, `${base}psk0`, `${base}psk${last}`].map((p) => `Noise_${p}_25519_AESGCM_SHA256`);
});

describe("handshake - every pattern completes between live peers", () => {
  test.each(PROTOCOLS)("%s", (protocolName) => {
    const pattern = parsePatternName(protocolName.split("_")[1]!);
    const initStatic = generateKeyPair();
    const respStatic = generateKeyPair();
    const psks = Array.from({ length: pskCount(pattern) }, (_, i) => psk(i + 1));
    const init = new HandshakeState({
      protocolName,
      initiator: true,
      s: initStatic,
      rs: pattern.responderPreMessage.includes("s") ? respStatic.publicKey : undefined,
      psks,
    });
    const resp = new HandshakeState({
      protocolName,
      initiator: false,
      s: respStatic,
      rs: pattern.initiatorPreMessage.includes("s") ? initStatic.publicKey : undefined,
      psks,
    });
    const { initCiphers, respCiphers } = runHandshake(init, resp);
    expect(hex(init.handshakeHash)).toBe(hex(resp.handshakeHash));

    const sendsStatic = (initiator: boolean) =>
      (initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage).includes("s") ||
      pattern.messages.some((m, i) => i % 2 === (initiator ? 0 : 1) && m.includes("s"));
    expect(resp.remoteStaticKey && hex(resp.remoteStaticKey)).toBe(
      sendsStatic(true) ? hex(initStatic.publicKey) : undefined,
    );
    expect(init.remoteStaticKey && hex(init.remoteStaticKey)).toBe(
      sendsStatic(false) ? hex(respStatic.publicKey) : undefined,
    );

    const message = new TextEncoder().encode(protocolName);
    const forward = respCiphers.receive.decrypt(initCiphers.send.encrypt(message));
    expect(forward.ok && hex(forward.plaintext)).toBe(hex(message));
    if (pattern.messages.length > 1) {
      const back = initCiphers.receive.decrypt(respCiphers.send.encrypt(message));
      expect(back.ok && hex(back.plaintext)).toBe(hex(message));
    }
  });
});
