import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  directFrame,
  directSigningBytes,
  type OpenOutcome,
  openDirect,
  sealBody,
  sealDirect,
  sealKey,
} from "../../src/direct/seal.ts";
import { dh, generateKeyPair } from "../../src/noise/primitives.ts";
import { FloodKind, SIGNATURE_BYTES } from "../../src/protocol/constants.ts";
import {
  DIRECT_EPHEMERAL_OFFSET,
  DIRECT_SEALED_OFFSET,
  DirectType,
  directTag,
  encodeInnerUnsigned,
  MAX_DIRECT_BODY_BYTES,
  MIN_DIRECT_BODY_BYTES,
} from "../../src/protocol/direct.ts";
import { decodeFlood } from "../../src/protocol/flood.ts";
import { hex } from "../../src/protocol/hex.ts";
import { generateIdentity, type Identity, verifySignature } from "../../src/secure/identity.ts";
import { sealingPublicKey } from "../../src/secure/sealing-key.ts";

const alice = generateIdentity();
const carol = generateIdentity();
const mallory = generateIdentity();
const NOW = 1_800_000_000_000;

function seal(text: string, to: Identity = alice, author: Identity = carol) {
  const sealed = sealDirect(
    { author, nick: "carol", to: to.publicKey, content: { type: DirectType.Text, text } },
    NOW,
  );
  if (sealed === undefined) throw new Error("no sealing key");
  return { ...sealed, flood: decodeFlood(sealed.frame.subarray(5)) };
}

function open(self: Identity, flood: ReturnType<typeof seal>["flood"]): OpenOutcome {
  return openDirect(self, directTag(self.publicKey), flood.id, flood.sentAt, flood.body);
}

describe("sealing a direct message", () => {
  test("the recipient opens it: the author's identity, nick and text", () => {
    const { flood, id } = seal("hi alice");
    expect(flood.kind).toBe(FloodKind.Direct);
    expect(hex(flood.id)).toBe(hex(id));
    const outcome = open(alice, flood);
    expect(outcome.status).toBe("opened");
    if (outcome.status !== "opened") return;
    expect(hex(outcome.inner.author)).toBe(hex(carol.publicKey));
    expect(outcome.inner.nick).toBe("carol");
    expect(outcome.inner.content).toEqual({ type: DirectType.Text, text: "hi alice" });
  });

  test("outside the seal: a one-time origin, seq 0, the recipient's tag; not the author, not the text", () => {
    const a = seal("the secret words");
    const b = seal("the secret words");
    for (const { frame, flood } of [a, b]) {
      expect(hex(flood.origin)).not.toBe(hex(carol.publicKey));
      expect(flood.seq).toBe(0);
      expect(verifySignature(flood.origin, new Uint8Array(0), flood.signature)).toBe(false);
      expect(hex(flood.body.subarray(0, 16))).toBe(hex(directTag(alice.publicKey)));
      const bytes = Buffer.from(frame);
      expect(bytes.includes(Buffer.from("the secret words"))).toBe(false);
      expect(bytes.includes(Buffer.from(carol.publicKey))).toBe(false);
      expect(bytes.includes(Buffer.from("carol"))).toBe(false);
    }
    // Two messages of one author share nothing outside but the recipient's tag.
    expect(hex(a.flood.origin)).not.toBe(hex(b.flood.origin));
    expect(hex(a.flood.body.subarray(16, 48))).not.toBe(hex(b.flood.body.subarray(16, 48)));
  });

  test("anyone else finds it is not theirs, without a key agreement", () => {
    expect(open(mallory, seal("hi alice").flood).status).toBe("not-for-us");
  });

  test("a longest text fits under the body limit a relay enforces", () => {
    const { flood } = seal("x".repeat(4096));
    expect(flood.body.length).toBeLessThanOrEqual(MAX_DIRECT_BODY_BYTES);
    expect(open(alice, flood).status).toBe("opened");
  });
});

describe("refused, never shown", () => {
  test("any byte of the sealed part altered: it does not decrypt", () => {
    const { flood } = seal("hi alice");
    for (let i = DIRECT_EPHEMERAL_OFFSET; i < flood.body.length; i += 7) {
      const body = flood.body.slice();
      body[i] = (body[i] as number) ^ 1;
      const outcome = openDirect(alice, directTag(alice.publicKey), flood.id, flood.sentAt, body);
      expect(outcome.status).toBe("refused");
    }
  });

  test("the same sealed body under another envelope (id or time): refused", () => {
    const { flood } = seal("hi alice");
    const otherId = flood.id.slice();
    otherId[0] = (otherId[0] as number) ^ 1;
    const tag = directTag(alice.publicKey);
    expect(openDirect(alice, tag, otherId, flood.sentAt, flood.body).status).toBe("refused");
    expect(openDirect(alice, tag, flood.id, flood.sentAt + 1, flood.body).status).toBe("refused");
  });

  test("re-sealed to alice by mallory, carol's signed words intact: refused (carol signed them for mallory)", () => {
    // Carol writes to mallory; mallory opens it and re-seals carol's signed inner
    // message to alice, under a new envelope of its own.
    const toMallory = seal("for mallory only", mallory);
    const opened = open(mallory, toMallory.flood);
    if (opened.status !== "opened") throw new Error("mallory could not open");
    const innerBytes = new Uint8Array([
      ...encodeInnerUnsigned(opened.inner),
      ...opened.inner.signature,
    ]);
    const outcome = open(alice, resealed(innerBytes).flood);
    expect(outcome).toEqual({
      status: "refused",
      reason: "the author's signature does not hold for this envelope and recipient",
    });
  });

  test("written by mallory in carol's name (mallory's signature): refused", () => {
    const id = crypto.getRandomValues(new Uint8Array(16));
    const ephemeral = generateKeyPair();
    const unsigned = encodeInnerUnsigned({
      author: carol.publicKey,
      nick: "carol",
      content: { type: DirectType.Text, text: "send me your password" },
    });
    const signature = mallory.sign(
      directSigningBytes(id, NOW, alice.publicKey, ephemeral.publicKey, unsigned),
    );
    const forged = resealed(new Uint8Array([...unsigned, ...signature]), { id, ephemeral });
    expect(open(alice, forged.flood).status).toBe("refused");
  });

  test("garbage sealed properly to alice: refused, not thrown", () => {
    const forged = resealed(new Uint8Array(200).fill(7));
    const outcome = open(alice, forged.flood);
    expect(outcome.status).toBe("refused");
  });
});

/** `plaintext` sealed to alice by whoever calls it, in a fresh envelope. */
function resealed(
  plaintext: Uint8Array,
  given: { id?: Uint8Array; ephemeral?: ReturnType<typeof generateKeyPair> } = {},
) {
  const id = given.id ?? crypto.getRandomValues(new Uint8Array(16));
  const ephemeral = given.ephemeral ?? generateKeyPair();
  const recipientKey = sealingPublicKey(alice.publicKey) as Uint8Array;
  const shared = dh(ephemeral.privateKey, recipientKey) as Uint8Array;
  const key = sealKey(shared, ephemeral.publicKey, recipientKey);
  const body = sealBody(key, directTag(alice.publicKey), ephemeral.publicKey, id, NOW, plaintext);
  expect(body.length).toBeGreaterThan(DIRECT_SEALED_OFFSET + SIGNATURE_BYTES);
  const sealed = directFrame(id, NOW, body);
  return { ...sealed, flood: decodeFlood(sealed.frame.subarray(5)) };
}

describe("docs/PROTOCOL.md §6a", () => {
  const doc = readFileSync(join(import.meta.dir, "..", "..", "docs", "PROTOCOL.md"), "utf8");
  const section = doc.slice(doc.indexOf("## 6a."), doc.indexOf("## 7."));

  test("states the body bounds the relay enforces", () => {
    expect(section).toContain(`at\nleast ${MIN_DIRECT_BODY_BYTES} bytes`);
    expect(section).toContain(`at most ${MAX_DIRECT_BODY_BYTES.toLocaleString("en-US")}`);
  });

  test("its key conversion is the one the code does: RFC 8032's first key, as libsodium converts it", () => {
    const line = /`(d75a98[0-9a-f]{58})`\s*→\s*`([0-9a-f]{64})`/.exec(section);
    expect(line).not.toBeNull();
    const [, nodeId, expected] = line as RegExpExecArray;
    const converted = sealingPublicKey(Uint8Array.from(Buffer.from(nodeId as string, "hex")));
    expect(hex(converted as Uint8Array)).toBe(expected as string);
  });
});
