import { describe, expect, test } from "bun:test";
import { createCipheriv } from "node:crypto";
import { CipherState } from "../../src/noise/cipher-state.ts";
import {
  MAX_NOISE_MESSAGE_BYTES,
  MAX_NONCE,
  MAX_TRANSPORT_PLAINTEXT_BYTES,
} from "../../src/noise/constants.ts";
import { hex } from "../../src/protocol/hex.ts";
import { expectNoiseError } from "./helpers.ts";

const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
const text = (s: string) => new TextEncoder().encode(s);

/** AES-256-GCM straight from node:crypto, with the nonce spelled out as bytes. */
function referenceEncrypt(key: Uint8Array, nonceHex: string, ad: Uint8Array, pt: Uint8Array) {
  const cipher = createCipheriv("aes-256-gcm", key, Buffer.from(nonceHex, "hex"));
  cipher.setAAD(ad);
  return hex(Buffer.concat([cipher.update(pt), cipher.final(), cipher.getAuthTag()]));
}

describe("cipher state - AESGCM", () => {
  test("nonce is 4 zero bytes then the counter big-endian", () => {
    const c = new CipherState(KEY);
    c.setNonce(0x0102030405060708n);
    const ad = text("ad");
    const ct = c.encryptWithAd(ad, text("hello"));
    expect(hex(ct)).toBe(referenceEncrypt(KEY, "000000000102030405060708", ad, text("hello")));
    expect(c.nonce).toBe(0x0102030405060709n);
  });

  test("round-trips with associated data; a different AD fails", () => {
    const a = new CipherState(KEY);
    const b = new CipherState(KEY);
    const ct = a.encryptWithAd(text("ad1"), text("payload"));
    expect(b.decryptWithAd(text("ad2"), ct)).toEqual({ ok: false, reason: "decrypt" });
    const ok = b.decryptWithAd(text("ad1"), ct);
    expect(ok.ok && hex(ok.plaintext)).toBe(hex(text("payload")));
  });

  test("a failed decrypt does not advance the nonce", () => {
    const sender = new CipherState(KEY);
    const receiver = new CipherState(KEY);
    const first = sender.encrypt(text("first"));
    const second = sender.encrypt(text("second"));
    for (let bit = 0; bit < first.length * 8; bit += 13) {
      const tampered = new Uint8Array(first);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expect(receiver.decrypt(tampered)).toEqual({ ok: false, reason: "decrypt" });
      expect(receiver.nonce).toBe(0n);
    }
    expect(receiver.decrypt(second).ok).toBe(false);
    expect(receiver.nonce).toBe(0n);
    const one = receiver.decrypt(first);
    const two = receiver.decrypt(second);
    expect(one.ok && hex(one.plaintext)).toBe(hex(text("first")));
    expect(two.ok && hex(two.plaintext)).toBe(hex(text("second")));
    expect(receiver.nonce).toBe(2n);
  });

  test("a shortened tag is refused", () => {
    const ct = new CipherState(KEY).encrypt(text("x"));
    const receiver = new CipherState(KEY);
    expect(receiver.decrypt(ct.subarray(0, ct.length - 4)).ok).toBe(false);
    expect(receiver.decrypt(ct.subarray(0, 15))).toEqual({ ok: false, reason: "truncated" });
    expect(receiver.nonce).toBe(0n);
  });

  test("the largest plaintext fills a Noise message exactly; one byte more throws", () => {
    const c = new CipherState(KEY);
    const ct = c.encrypt(new Uint8Array(MAX_TRANSPORT_PLAINTEXT_BYTES));
    expect(ct.length).toBe(MAX_NOISE_MESSAGE_BYTES);
    expectNoiseError(
      () => c.encrypt(new Uint8Array(MAX_TRANSPORT_PLAINTEXT_BYTES + 1)),
      "MESSAGE_TOO_LARGE",
    );
    expect(c.nonce).toBe(1n);
    const receiver = new CipherState(KEY);
    expect(receiver.decrypt(new Uint8Array(MAX_NOISE_MESSAGE_BYTES + 1))).toEqual({
      ok: false,
      reason: "too-large",
    });
    expect(receiver.decrypt(ct).ok).toBe(true);
  });

  test("the counter stops before 2^64-1, on both sides", () => {
    const sender = new CipherState(KEY);
    const receiver = new CipherState(KEY);
    sender.setNonce(MAX_NONCE - 1n);
    receiver.setNonce(MAX_NONCE - 1n);
    const last = sender.encrypt(text("last"));
    expect(sender.nonce).toBe(MAX_NONCE);
    expectNoiseError(() => sender.encrypt(text("one more")), "NONCE_EXHAUSTED");
    expect(receiver.decrypt(last).ok).toBe(true);
    expect(receiver.decrypt(last)).toEqual({ ok: false, reason: "nonce-exhausted" });
    expect(() => sender.setNonce(MAX_NONCE + 1n)).toThrow(RangeError);
  });

  test("rekey derives the key from encrypting zeros at nonce 2^64-1", () => {
    const a = new CipherState(KEY);
    const b = new CipherState(KEY);
    const before = a.encrypt(text("m"));
    a.rekey();
    const derived = Buffer.from(
      referenceEncrypt(KEY, "00000000ffffffffffffffff", new Uint8Array(0), new Uint8Array(32)),
      "hex",
    ).subarray(0, 32);
    const after = a.encrypt(text("m"));
    expect(hex(after)).toBe(
      referenceEncrypt(derived, "000000000000000000000001", new Uint8Array(0), text("m")),
    );
    expect(b.decrypt(before).ok).toBe(true);
    expect(b.decrypt(after).ok).toBe(false);
    b.rekey();
    expect(b.decrypt(after).ok).toBe(true);
  });

  test("without a key, bytes pass through as copies", () => {
    const c = new CipherState();
    const pt = text("clear");
    const out = c.encryptWithAd(text("ad"), pt);
    expect(hex(out)).toBe(hex(pt));
    expect(out).not.toBe(pt);
    const back = c.decryptWithAd(text("ad"), out);
    expect(back.ok && hex(back.plaintext)).toBe(hex(pt));
    expect(c.nonce).toBe(0n);
    expectNoiseError(() => c.rekey(), "MISSING_KEY");
  });

  test("results are plain Uint8Arrays, so slice() on them copies", () => {
    const sender = new CipherState(KEY);
    const ciphertext = sender.encrypt(text("owned"));
    const opened = new CipherState(KEY).decrypt(ciphertext);
    if (!opened.ok) throw new Error(opened.reason);
    for (const bytes of [ciphertext, opened.plaintext]) {
      expect(Buffer.isBuffer(bytes)).toBe(false);
      const copy = bytes.slice();
      copy[0]! ^= 0xff;
      expect(copy[0]).not.toBe(bytes[0]);
    }
  });
});
