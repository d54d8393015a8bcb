import { describe, expect, test } from "bun:test";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { generateKeyPair } from "../../src/noise/primitives.ts";
import { decodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind, FrameType } from "../../src/protocol/constants.ts";
import { decodeBye, decodeError, decodeNonce } from "../../src/protocol/control.ts";
import { decodeFlood, floodSigningBytes } from "../../src/protocol/flood.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { decodeHello } from "../../src/protocol/hello.ts";
import { decodePeers } from "../../src/protocol/peers.ts";
import { decodePresenceBody, isPresenceKind } from "../../src/protocol/presence.ts";
import {
  NOISE_PROLOGUE,
  NOISE_PROTOCOL_NAME,
  STATIC_KEY_SIGNATURE_PREFIX,
} from "../../src/secure/constants.ts";
import { verifySignature } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM, roomKey } from "../../src/secure/room.ts";
import type { CliProcess } from "../helpers/cli.ts";
import { seededRandom, testSeed } from "../helpers/random.ts";
import {
  type Anomaly,
  type CampaignReport,
  isBadStderrLine,
  processedTotal,
  runCampaign,
  SURFACES,
} from "./campaign.ts";
import {
  AuthorPool,
  encodeFields,
  encodeTemplate,
  frameCase,
  helloPayloadFields,
  message1Case,
  message3Plan,
  SEED_NAMES,
  seedNamed,
  validMessage1,
} from "./corpus.ts";
import { LengthTracker } from "./framing.ts";
import { BYTE_MUTATORS, concatBytes, mutateBytes } from "./mutators.ts";

/** The seed of this run: TEST_SEED replays another (`bun run fuzz -- --seed N` too). */
const SEED = testSeed(20_261_124);

/** Cases per surface in CI; `bun run fuzz` runs more. */
const CI_CASES = { frames: 84_000, message1: 12_000, message3: 4_000 } as const;

const NOW = 1_700_000_000_000;
const env = { now: NOW, authors: new AuthorPool(SEED, 8) };
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("fuzz corpus and mutators", () => {
  test.each(SEED_NAMES.map((name) => [name]))(
    "fuzzer - the %s seed is a valid frame the node accepts",
    (name) => {
      for (let i = 0; i < 20; i++) {
        const template = seedNamed(name, seededRandom(SEED + i), env);
        const bytes = encodeTemplate(template);
        const frames = new FrameDecoder().push(bytes);
        expect(frames.map((f) => f.type)).toEqual([template.type]);
        const payload = (frames[0] as { payload: Uint8Array }).payload;
        switch (template.type) {
          case FrameType.Flood: {
            const flood = decodeFlood(payload);
            const signed = floodSigningBytes(payload, 0, payload.length);
            expect(verifySignature(flood.origin, signed, flood.signature)).toBe(true);
            if (flood.kind === FloodKind.Chat) decodeChatBody(flood.body);
            else if (isPresenceKind(flood.kind)) decodePresenceBody(flood.kind, flood.body);
            else expect(flood.kind).toBeGreaterThan(FloodKind.Alive);
            break;
          }
          case FrameType.Hello:
            expect(decodeHello(payload).nodeId).toHaveLength(32);
            break;
          case FrameType.Peers:
            expect(decodePeers(payload).length).toBeLessThanOrEqual(3);
            break;
          case FrameType.Ping:
          case FrameType.Pong:
            decodeNonce(payload, "PING");
            break;
          case FrameType.Bye:
            expect(decodeBye(payload)).toBe("quit");
            break;
          case FrameType.Error:
            expect(decodeError(payload).code).toBeGreaterThan(0);
            break;
          default:
            expect(template.type).toBeGreaterThanOrEqual(0x08);
        }
      }
    },
  );

  test("fuzzer - the message 1 and message 3 seeds complete a real handshake", () => {
    const random = seededRandom(SEED);
    const responder = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: false,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey(DEFAULT_ROOM)],
    });
    expect(responder.readMessage(validMessage1(random).subarray(2)).ok).toBe(true);

    const plan = message3Plan(SEED, 7);
    const responder3 = new HandshakeState({
      protocolName: NOISE_PROTOCOL_NAME,
      initiator: false,
      prologue: NOISE_PROLOGUE,
      s: generateKeyPair(),
      psks: [roomKey(DEFAULT_ROOM)],
    });
    const m1 = plan.handshake.writeMessage();
    if (!m1.ok) throw new Error(m1.reason);
    expect(responder3.readMessage(m1.message).ok).toBe(true);
    const m2 = responder3.writeMessage(new Uint8Array(0));
    if (!m2.ok) throw new Error(m2.reason);
    expect(plan.handshake.readMessage(m2.message).ok).toBe(true);
    const m3 = plan.handshake.writeMessage(encodeFields(helloPayloadFields(plan)));
    if (!m3.ok) throw new Error(m3.reason);
    const read = responder3.readMessage(m3.message);
    if (!read.ok) throw new Error(read.reason);
    const hello = read.payload.subarray(0, read.payload.length - 64);
    const signature = read.payload.subarray(read.payload.length - 64);
    expect(decodeHello(hello).nodeId).toEqual(plan.identity.publicKey);
    const remoteStatic = responder3.remoteStaticKey as Uint8Array;
    expect(
      verifySignature(
        plan.identity.publicKey,
        concatBytes(STATIC_KEY_SIGNATURE_PREFIX, remoteStatic),
        signature,
      ),
    ).toBe(true);
  });

  test("fuzzer - a case is a function of seed and index", () => {
    for (let i = 0; i < 200; i++) {
      expect(hex(frameCase(SEED, i, env).bytes)).toBe(hex(frameCase(SEED, i, env).bytes));
      expect(hex(message1Case(SEED, i).bytes)).toBe(hex(message1Case(SEED, i).bytes));
    }
    const distinct = new Set(
      Array.from({ length: 200 }, (_, i) => hex(frameCase(SEED, i, env).bytes)),
    );
    expect(distinct.size).toBeGreaterThan(190);
    expect(hex(frameCase(SEED, 1, env).bytes)).not.toBe(hex(frameCase(SEED + 1, 1, env).bytes));
  });

  test("fuzzer - byte mutators leave their input alone and change the output", () => {
    const random = seededRandom(SEED);
    const input = encodeTemplate(seedNamed("FLOOD/CHAT", random, env));
    const copy = input.slice();
    const shape = { lengthBytes: 4 as const, maxLength: 65_536, typeOffset: 4, other: () => copy };
    for (const [name, mutate] of Object.entries(BYTE_MUTATORS)) {
      let changed = 0;
      for (let i = 0; i < 50; i++) {
        const out = mutate(input, random, shape);
        if (hex(out) !== hex(input)) changed++;
      }
      expect(hex(input), name).toBe(hex(copy));
      expect(changed, name).toBeGreaterThan(25);
    }
    const m = mutateBytes(input, random, shape);
    expect(m.applied.length).toBeGreaterThan(0);
  });

  test("fuzzer - the length tracker cuts a stream as the receiver does", () => {
    const frames = (max: number) => new LengthTracker(4, (n) => n >= 1 && n <= max);
    const t = frames(65_536);
    t.feed(Uint8Array.of(0, 0, 0, 3, 1, 2));
    expect(t.aligned).toBe(false);
    // Completes the one byte the header still asks for, nothing more.
    expect(t.completion(seededRandom(1))).toHaveLength(1);
    expect(t.aligned).toBe(true);
    // A partial header is completed with zeros, then its body.
    t.feed(Uint8Array.of(0, 0, 1));
    expect(t.completion(seededRandom(1))).toHaveLength(1 + 256);
    expect(t.aligned).toBe(true);
    // A refused length kills the stream: nothing after it is read.
    t.feed(Uint8Array.of(0, 1, 0, 1, 7));
    expect(t.dead).toBe(true);
    expect(t.completion(seededRandom(1))).toHaveLength(0);
    const zero = frames(65_536);
    zero.feed(new Uint8Array(4));
    expect(zero.dead).toBe(true);
    const noise = new LengthTracker(2, (n, i) => (i === 0 ? n === 48 : n <= 1024));
    noise.feed(concatBytes(Uint8Array.of(0, 48), new Uint8Array(48), Uint8Array.of(4, 1)));
    expect(noise.dead).toBe(true);
  });
});

describe("fuzz oracle", () => {
  // Lines as the victim and Bun print them.
  const expected = [
    "[08:34:33.612] warn: closed 127.0.0.1:60794: protocol error: HELLO magic is not PCHT [ERROR 2 BAD_HANDSHAKE, BAD_HANDSHAKE]",
    "[08:34:33.617] warn: closed fuzz (127.0.0.1:60696): protocol error: frame length 1897793497 exceeds the maximum of 65536 [ERROR 1 BAD_FRAME, FRAME_TOO_LARGE]",
    "[08:34:33.600] info: connection 127.0.0.1:60772 closed before the handshake: different room or not a peerchat peer",
    "[08:34:33.655] warn: dropped a FLOOD from fuzz@127.0.0.1:60882 with a bad signature",
    "[08:34:33.657] debug: linked to fuzz4 (127.0.0.1:9005, inbound)",
    "[08:34:33.634] debug: mesh: could not reach 198.51.100.7:35857: connection refused; next try in 0.7 s",
  ];
  const bugs = [
    "TypeError: undefined is not an object (evaluating '(void 0).x')",
    "      at <anonymous> (/work/main/src/node/peer-node.ts:1:28)",
    "RangeError: offset is out of bounds",
    "NoiseError: split() called twice",
    "error: x",
    "Bun v1.4.5 (Linux x64)",
    "[08:34:33.655] error: closing a connection failed: boom",
    "[08:34:33.655] warn: closed fuzz (127.0.0.1:1): internal error: boom [ERROR 8 INTERNAL]",
    "peerchat: unexpected error: boom",
    "Unhandled rejection: boom",
  ];
  test.each(expected.map((l) => [l]))("fuzzer - the oracle lets pass: %s", (line) => {
    expect(isBadStderrLine(line)).toBe(false);
  });
  test.each(bugs.map((l) => [l]))("fuzzer - the oracle catches: %s", (line) => {
    expect(isBadStderrLine(line)).toBe(true);
  });

  // The campaign against a sabotaged victim must report it: the oracle can fail.
  const small = { frames: 1_000_000, message1: 0, message3: 0 };
  test("fuzzer - the oracle notices a victim that dies", async () => {
    const report = await runCampaign({
      seed: SEED,
      cases: small,
      onVictim: (victim) => setTimeout(() => victim.signal("SIGKILL"), 1000),
    });
    expect(report.anomalies.map((a) => a.what)).toContain("the victim exited");
    expect(report.victimExit).not.toBe(0);
  }, 30_000);

  test("fuzzer - the oracle notices a victim that freezes", async () => {
    // Frozen in the middle of the campaign, whatever the setup before it costs: a freeze
    // on a timer from the victim's start could fall before the first case (a loaded
    // machine), and then the stall has no case to blame.
    let victim: CliProcess | undefined;
    let processed = 0;
    const report = await runCampaign({
      seed: SEED,
      cases: small,
      stallMs: 1000,
      onVictim: (v) => {
        victim = v;
      },
      onCase: () => {
        if (++processed !== 50) return;
        victim?.signal("SIGSTOP");
        setTimeout(() => victim?.signal("SIGCONT"), 2000);
      },
    });
    expect(report.anomalies[0]?.what).toMatch(/^stall: /);
    expect(report.anomalies[0]?.cases.length).toBeGreaterThan(0);
  }, 30_000);
});

/** One line per anomaly, with the cases to replay, for the failure message. */
function describeAnomalies(anomalies: readonly Anomaly[]): string[] {
  return anomalies.map((a) => `${a.what}\n    suspects:\n      ${a.cases.join("\n      ")}`);
}

function summary(report: CampaignReport): string {
  const s = report.surfaces;
  return [
    `mutation fuzz, seed ${report.seed} (TEST_SEED=${report.seed} replays it):`,
    `  ${processedTotal(report)} cases in ${(report.wallMs / 1000).toFixed(1)} s`,
    ...SURFACES.map(
      (k) =>
        `  ${k}: ${s[k].processed} processed (${s[k].survived} left the connection up, ${s[k].answered} answered, ${s[k].closed} closed it), ${s[k].connections} connections`,
    ),
    `  relay checks ${report.relayChecks}, fresh join ${report.freshJoin}, victim RSS ${report.rssKiB.before} → ${report.rssKiB.after} KiB, exit ${report.victimExit}`,
  ].join("\n");
}

describe("fuzzing a live peer", () => {
  test("fuzzer - 100,000 mutated frames and handshake messages: no crash, no uncaught exception, the peer keeps serving", async () => {
    console.log(`mutation fuzz: seed ${SEED}`);
    const report = await runCampaign({ seed: SEED, cases: CI_CASES });
    console.log(summary(report));
    // First: what the oracle caught, with the cases to replay (bun run fuzz -- --replay).
    expect(describeAnomalies(report.anomalies)).toEqual([]);
    expect(processedTotal(report)).toBeGreaterThanOrEqual(100_000);
    for (const surface of SURFACES)
      expect(report.surfaces[surface].processed).toBeGreaterThanOrEqual(CI_CASES[surface]);
    // Both kinds of outcome happened: cases got past validation, and cases were refused.
    expect(report.surfaces.frames.survived).toBeGreaterThan(CI_CASES.frames / 2);
    expect(report.surfaces.frames.closed).toBeGreaterThan(1000);
    expect(report.surfaces.message1.answered).toBeGreaterThan(0);
    expect(report.surfaces.message3.answered).toBeGreaterThan(0);
    // Still serving: honest chat crossed it during and after, a newcomer got in, and it
    // left gracefully on SIGTERM.
    expect(report.relayChecks).toBeGreaterThanOrEqual(2);
    expect(report.freshJoin).toBe("connected");
    expect(report.victimExit).toBe(0);
  }, 180_000);
});
