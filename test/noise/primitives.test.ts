import { describe, expect, test } from "bun:test";
import { createHash, hkdfSync } from "node:crypto";
import {
  dh,
  generateKeyPair,
  hash,
  hkdf2,
  hkdf3,
  keyPairFromPrivate,
  privateKeyBytes,
} from "../../src/noise/primitives.ts";
import { fromHex, hex } from "../../src/protocol/hex.ts";
import { expectNoiseError, LOW_ORDER_POINTS } from "./helpers.ts";

describe("noise primitives - X25519", () => {
  test("matches RFC 7748 section 6.1", () => {
    const alice = keyPairFromPrivate(
      fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    );
    const bob = keyPairFromPrivate(
      fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
    );
    expect(hex(alice.publicKey)).toBe(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    );
    expect(hex(bob.publicKey)).toBe(
      "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    );
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(hex(dh(alice.privateKey, bob.publicKey)!)).toBe(shared);
    expect(hex(dh(bob.privateKey, alice.publicKey)!)).toBe(shared);
  });

  test("generated pairs agree and round-trip through raw private bytes", () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(a.publicKey.length).toBe(32);
    expect(hex(a.publicKey)).not.toBe(hex(b.publicKey));
    expect(hex(dh(a.privateKey, b.publicKey)!)).toBe(hex(dh(b.privateKey, a.publicKey)!));
    const raw = privateKeyBytes(a);
    expect(raw.length).toBe(32);
    expect(hex(keyPairFromPrivate(raw).publicKey)).toBe(hex(a.publicKey));
  });

  test.each(LOW_ORDER_POINTS)("rejects low-order public key %s", (point) => {
    expect(dh(generateKeyPair().privateKey, fromHex(point))).toBeUndefined();
  });

  test.each([0, 31, 33, 64])("rejects a %i-byte public key", (length) => {
    const key = new Uint8Array(length).fill(9);
    expect(dh(generateKeyPair().privateKey, key)).toBeUndefined();
  });

  test("refuses a private key that is not 32 bytes", () => {
    expectNoiseError(() => keyPairFromPrivate(new Uint8Array(31)), "BAD_KEY");
  });
});

describe("noise primitives - hash and HKDF", () => {
  test("hash of parts is SHA-256 of their concatenation", () => {
    expect(hex(hash(new TextEncoder().encode("a"), new TextEncoder().encode("bc")))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  test("HKDF equals RFC 5869 HKDF-SHA256 with the chaining key as salt and empty info", () => {
    const ck = createHash("sha256").update("chaining key").digest();
    for (const ikm of [new Uint8Array(0), new Uint8Array(32).fill(3), new Uint8Array(77)]) {
      const reference = new Uint8Array(hkdfSync("sha256", ikm, ck, new Uint8Array(0), 96));
      const [a, b] = hkdf2(ck, ikm);
      const [c, d, e] = hkdf3(ck, ikm);
      expect(hex(a) + hex(b)).toBe(hex(reference.subarray(0, 64)));
      expect(hex(c) + hex(d) + hex(e)).toBe(hex(reference));
    }
  });
});
