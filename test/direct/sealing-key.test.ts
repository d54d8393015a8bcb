import { describe, expect, test } from "bun:test";
import { dh, generateKeyPair } from "../../src/noise/primitives.ts";
import { hex } from "../../src/protocol/hex.ts";
import { generateIdentity, identityFromSeed } from "../../src/secure/identity.ts";
import { sealingPublicKey } from "../../src/secure/sealing-key.ts";

describe("the sealing key of a node id", () => {
  test("the public key derived from a node id is the public half of the identity's own pair (50 identities)", () => {
    for (let i = 0; i < 50; i++) {
      const identity = generateIdentity();
      expect(hex(sealingPublicKey(identity.publicKey) as Uint8Array)).toBe(
        hex(identity.sealingKeys().publicKey),
      );
    }
  });

  test("an ephemeral key and the derived public key agree with the identity's private half", () => {
    const identity = generateIdentity();
    const ephemeral = generateKeyPair();
    const sent = dh(ephemeral.privateKey, sealingPublicKey(identity.publicKey) as Uint8Array);
    const opened = dh(identity.sealingKeys().privateKey, ephemeral.publicKey);
    expect(sent).toBeDefined();
    expect(hex(sent as Uint8Array)).toBe(hex(opened as Uint8Array));
  });

  test("RFC 8032's first test key converts as libsodium converts it", () => {
    // RFC 8032 §7.1 TEST 1: the seed and public key; the X25519 public key is what
    // libsodium 1.0.18's crypto_sign_ed25519_pk_to_curve25519 gives for it (computed
    // once, by hand, through Python's ctypes).
    const seed = Uint8Array.from(
      Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex"),
    );
    const identity = identityFromSeed(seed);
    expect(hex(identity.publicKey)).toBe(
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    );
    const expected = "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e";
    expect(hex(sealingPublicKey(identity.publicKey) as Uint8Array)).toBe(expected);
    expect(hex(identity.sealingKeys().publicKey)).toBe(expected);
  });

  test("a key of the wrong size, a non-canonical one and the identity point have no sealing key", () => {
    expect(sealingPublicKey(new Uint8Array(31))).toBeUndefined();
    const identityPoint = new Uint8Array(32);
    identityPoint[0] = 1; // y = 1
    expect(sealingPublicKey(identityPoint)).toBeUndefined();
    const nonCanonical = new Uint8Array(32).fill(0xff);
    nonCanonical[31] = 0x7f; // y = 2^255 − 1 ≥ p
    expect(sealingPublicKey(nonCanonical)).toBeUndefined();
  });
});
