/**
 * The fuzzer's seed corpus and its cases: valid frames of every type (HELLO, FLOOD of
 * every kind signed by a real author, PEERS, PING, PONG, BYE, ERROR, unknown types),
 * valid Noise handshake messages 1 and 3, and the mutated cases made from them.
 *
 * A frame is built as a list of typed fields, so a structure-aware mutation can change
 * one field (a string past its limit, invalid UTF-8, a stale `sentAt`, a random kind, a
 * wrong signature) and the FLOOD can still be signed over the result: such a case gets
 * past the signature check to the code behind it. Byte-level mutations then work on the
 * encoded bytes, signature and all.
 *
 * Every case is a function of (seed, stream, index), except for the clock: FLOOD
 * `sentAt` values are relative to the time the case is built, and so are their
 * signatures.
 */
import { createHash } from "node:crypto";
import { HandshakeState } from "../../src/noise/handshake-state.ts";
import { type KeyPair, keyPairFromPrivate } from "../../src/noise/primitives.ts";
import {
  FloodKind,
  FrameType,
  HELLO_MAGIC,
  MAX_NICK_BYTES,
  MAX_REASON_BYTES,
  MAX_TEXT_BYTES,
  PROTOCOL_VERSION,
} from "../../src/protocol/constants.ts";
import { encodePing } from "../../src/protocol/control.ts";
import { FLOOD_HEADER_BYTES, signFloodFrame } from "../../src/protocol/flood.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import {
  NOISE_PROLOGUE,
  NOISE_PROTOCOL_NAME,
  STATIC_KEY_SIGNATURE_PREFIX,
} from "../../src/secure/constants.ts";
import { type Identity, identityFromSeed } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM, roomKey } from "../../src/secure/room.ts";
import { randomInt, seededRandom } from "../helpers/random.ts";
import {
  boundaryInt,
  caseSeed,
  concatBytes,
  fastRandomBytes,
  mutateBytes,
  mutateText,
  pick,
  pickWeighted,
  type Random,
  randomBigInt,
  type TextLimits,
  validText,
} from "./mutators.ts";

/** Independent case streams of one run: the same index in two streams are unrelated cases. */
export const Stream = {
  frames: 1,
  message1: 2,
  message3: 3,
} as const;

/**
 * The random source of the bytes that complete what case `index` of `stream` left
 * unfinished (see framing.ts): a function of the case, like the case itself.
 */
export function paddingRandom(seed: number, stream: number, index: number): Random {
  return seededRandom(caseSeed(seed, stream + 16, index));
}

const NICK: TextLimits = { min: 1, max: MAX_NICK_BYTES };
const TEXT: TextLimits = { min: 1, max: MAX_TEXT_BYTES };
const REASON: TextLimits = { min: 0, max: MAX_REASON_BYTES };
const FREE: TextLimits = { min: 0, max: 200 };

/** What a field means, for the mutations that care. */
type Role =
  | "magic"
  | "version"
  | "nodeId"
  | "id"
  | "origin"
  | "seq"
  | "sentAt"
  | "hops"
  | "kind"
  | "signature"
  | "count"
  | "host"
  | "other";

/** One field of a frame payload. */
export type Field =
  | {
      readonly t: "int";
      readonly bits: 8 | 16 | 32 | 64;
      readonly value: bigint;
      readonly role: Role;
    }
  | { readonly t: "bytes"; readonly value: Uint8Array; readonly role: Role }
  | {
      readonly t: "str";
      readonly value: Uint8Array;
      readonly limits: TextLimits;
      /** A `str` prefix that disagrees with the bytes: a lie. */
      readonly declared?: number;
      readonly role: Role;
    };

/** A frame as fields; FLOODs name the author that signs them once encoded. */
export interface Template {
  readonly name: string;
  readonly type: number;
  readonly fields: readonly Field[];
  readonly author?: Identity;
}

const int = (bits: 8 | 16 | 32 | 64, value: bigint | number, role: Role = "other"): Field => ({
  t: "int",
  bits,
  value: BigInt(value),
  role,
});
const bytes = (value: Uint8Array, role: Role = "other"): Field => ({ t: "bytes", value, role });
const str = (value: Uint8Array, limits: TextLimits, role: Role = "other"): Field => ({
  t: "str",
  value,
  limits,
  role,
});
const utf8 = (s: string) => new TextEncoder().encode(s);

/** The fields as bytes, with no frame header. */
export function encodeFields(fields: readonly Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    if (f.t === "bytes") parts.push(f.value);
    else if (f.t === "str") {
      const n = f.declared ?? f.value.length;
      parts.push(Uint8Array.of(n >>> 8, n & 0xff), f.value);
    } else {
      const out = new Uint8Array(f.bits / 8);
      let v = f.value;
      for (let i = out.length - 1; i >= 0; i--) {
        out[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      parts.push(out);
    }
  }
  return concatBytes(...parts);
}

/** `length:u32 | type | payload`. */
export function frameOf(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(0, 1 + payload.length);
  out[4] = type;
  out.set(payload, 5);
  return out;
}

/** How a FLOOD's signature is made once the frame is encoded. */
type SignMode = "sign" | "asIs" | "flipAfter" | "otherAuthor";

/** Encodes a template; a FLOOD with an author is signed by it (unless `mode` says otherwise). */
export function encodeTemplate(
  template: Template,
  mode: SignMode = "sign",
  other?: Identity,
  random?: Random,
): Uint8Array {
  const frame = frameOf(template.type, encodeFields(template.fields));
  const author = template.author;
  // A frame cut shorter than the FLOOD header has no place for a signature.
  if (!author || mode === "asIs" || frame.length < 5 + FLOOD_HEADER_BYTES) return frame;
  signFloodFrame(frame, (m) => (mode === "otherAuthor" && other ? other : author).sign(m));
  if (mode === "flipAfter" && random) {
    const at = 5 + FLOOD_HEADER_BYTES - 64 + randomInt(random, 64);
    frame[at] = (frame[at] as number) ^ (1 << randomInt(random, 8));
  }
  return frame;
}

/**
 * Authors of the fuzzer's FLOODs: Ed25519 identities derived from the run's seed, so
 * the same seed signs with the same keys. Many of them, so per-author rate limits are
 * not what every case runs into.
 */
export class AuthorPool {
  private readonly cache = new Map<number, Identity>();

  constructor(
    private readonly seed: number,
    readonly size = 64,
  ) {}

  get(k: number): Identity {
    const i = k % this.size;
    let id = this.cache.get(i);
    if (!id) {
      const digest = createHash("sha256").update(`peerchat-fuzz-author:${this.seed}:${i}`).digest();
      id = identityFromSeed(new Uint8Array(digest));
      this.cache.set(i, id);
    }
    return id;
  }

  pick(random: Random): Identity {
    return this.get(randomInt(random, this.size));
  }
}

/** What building a frames case needs besides its seed. */
export interface CaseEnv {
  readonly now: number;
  readonly authors: AuthorPool;
}

// Documentation ranges (RFC 5737, RFC 3849): valid literals that route nowhere, so a
// victim that dials what it is told reaches nobody.
const HOSTS = [
  "192.0.2.1",
  "198.51.100.7",
  "203.0.113.254",
  "2001:db8::1",
  "2001:db8:0:0:0:0:0:7",
  "::ffff:192.0.2.9",
];
const BAD_HOSTS = [
  "localhost",
  "example.com",
  "1.2.3.4.5",
  "256.1.1.1",
  "01.2.3.4",
  "1.2.3",
  "[::1]",
  "fe80::1%eth0",
  " 10.0.0.1",
  "10.0.0.1\n",
  ":::",
  "1::2::3",
  "0.0.0.0",
  "255.255.255.255",
  "::",
  "",
];

function validNick(random: Random): Uint8Array {
  return random() < 0.5 ? utf8(`fz${randomInt(random, 1000)}`) : mutateValid(random, NICK);
}

function mutateValid(random: Random, limits: TextLimits): Uint8Array {
  for (;;) {
    const m = mutateText(random, limits);
    if (m.how === "valid") return m.bytes;
  }
}

function floodTemplate(
  random: Random,
  env: CaseEnv,
  name: string,
  kind: number,
  body: Field[],
): Template {
  const author = env.authors.pick(random);
  return {
    name,
    type: FrameType.Flood,
    author,
    fields: [
      bytes(fastRandomBytes(random, 16), "id"),
      bytes(author.publicKey, "origin"),
      int(32, 1 + randomInt(random, 1000), "seq"),
      int(64, env.now, "sentAt"),
      // Mostly at the limit: accepted and delivered, not forwarded (the honest peers
      // would otherwise verify every case the victim accepts).
      int(8, random() < 0.1 ? randomInt(random, 3) : 15, "hops"),
      int(8, kind, "kind"),
      bytes(new Uint8Array(64), "signature"),
      ...body,
    ],
  };
}

/** Builders of the valid seed frames, by name, with their weights. */
const SEEDS: Readonly<Record<string, [number, (random: Random, env: CaseEnv) => Template]>> = {
  "FLOOD/CHAT": [
    24,
    (r, env) =>
      floodTemplate(r, env, "FLOOD/CHAT", FloodKind.Chat, [
        str(validNick(r), NICK),
        str(r() < 0.8 ? utf8(`fuzz ${randomInt(r, 1e6)}`) : mutateValid(r, TEXT), TEXT),
      ]),
  ],
  "FLOOD/JOIN": [
    4,
    (r, env) => floodTemplate(r, env, "FLOOD/JOIN", FloodKind.Join, [str(validNick(r), NICK)]),
  ],
  "FLOOD/LEAVE": [
    4,
    (r, env) => floodTemplate(r, env, "FLOOD/LEAVE", FloodKind.Leave, [str(utf8("quit"), REASON)]),
  ],
  "FLOOD/NICK": [
    4,
    (r, env) => floodTemplate(r, env, "FLOOD/NICK", FloodKind.Nick, [str(validNick(r), NICK)]),
  ],
  "FLOOD/ALIVE": [
    4,
    (r, env) => floodTemplate(r, env, "FLOOD/ALIVE", FloodKind.Alive, [str(validNick(r), NICK)]),
  ],
  "FLOOD/unknown": [
    4,
    (r, env) =>
      floodTemplate(r, env, "FLOOD/unknown", 6 + randomInt(r, 250), [
        bytes(fastRandomBytes(r, randomInt(r, 64))),
      ]),
  ],
  PEERS: [
    8,
    (r, env) => {
      const n = randomInt(r, 4);
      const entries: Field[] = [];
      for (let i = 0; i < n; i++) {
        entries.push(
          bytes(env.authors.pick(r).publicKey, "nodeId"),
          str(utf8(pick(r, HOSTS)), FREE, "host"),
          int(16, 1 + randomInt(r, 65535)),
        );
      }
      return { name: "PEERS", type: FrameType.Peers, fields: [int(16, n, "count"), ...entries] };
    },
  ],
  PING: [
    8,
    (r) => ({ name: "PING", type: FrameType.Ping, fields: [int(64, randomBigInt(r, 63))] }),
  ],
  PONG: [
    6,
    (r) => ({ name: "PONG", type: FrameType.Pong, fields: [int(64, randomBigInt(r, 63))] }),
  ],
  BYE: [2, () => ({ name: "BYE", type: FrameType.Bye, fields: [str(utf8("quit"), REASON)] })],
  ERROR: [
    2,
    (r) => ({
      name: "ERROR",
      type: FrameType.Error,
      fields: [int(16, 1 + randomInt(r, 10)), str(utf8("protocol error"), FREE)],
    }),
  ],
  HELLO: [
    2,
    (r, env) => ({
      name: "HELLO",
      type: FrameType.Hello,
      fields: helloFields(env.authors.pick(r).publicKey, validNick(r)),
    }),
  ],
  unknown: [
    5,
    (r) => ({
      name: "unknown",
      type: 0x08 + randomInt(r, 0xf8),
      fields: [bytes(fastRandomBytes(r, randomInt(r, 32)))],
    }),
  ],
};

const SEED_WEIGHTS = Object.fromEntries(Object.entries(SEEDS).map(([k, [w]]) => [k, w]));

/** The fields of a HELLO payload. */
function helloFields(nodeId: Uint8Array, nick: Uint8Array): Field[] {
  return [
    bytes(HELLO_MAGIC, "magic"),
    int(8, PROTOCOL_VERSION, "version"),
    bytes(nodeId, "nodeId"),
    int(16, listenPortFor(nick)),
    str(nick, NICK),
  ];
}

/** Half the HELLOs say they listen (on a port nothing listens on), half that they do not. */
function listenPortFor(nick: Uint8Array): number {
  return nick.length % 2 === 0 ? 0 : 9000 + nick.length;
}

/** The names of the seed frames: `FLOOD/CHAT`, `PEERS`, `PING`… */
export const SEED_NAMES: readonly string[] = Object.keys(SEEDS);

/** The valid seed frame `name`. */
export function seedNamed(name: string, random: Random, env: CaseEnv): Template {
  const seed = SEEDS[name];
  if (!seed) throw new Error(`no seed ${name}`);
  return seed[1](random, env);
}

/** A valid seed frame, chosen by weight. */
export function seedTemplate(random: Random, env: CaseEnv): Template {
  return seedNamed(pickWeighted(random, SEED_WEIGHTS), random, env);
}

// Structure-aware mutations.

/** A field mutated by its kind: an integer to an edge, bytes resized or randomised, a string by mutateText. */
function mutateField(random: Random, f: Field, env: CaseEnv): { field: Field; how: string } {
  if (f.role === "sentAt") {
    const minute = 60_000;
    const value = pick(random, [
      env.now - 2 * minute - 1 - randomInt(random, minute),
      env.now + 2 * minute + 1 + randomInt(random, minute),
      env.now - 2 * minute + 1000,
      env.now - 86_400_000,
      0,
      2 ** 53 - 1,
    ]);
    return { field: { ...f, value: BigInt(value) } as Field, how: "sentAt" };
  }
  if (f.role === "hops")
    return {
      field: { ...f, value: BigInt(pick(random, [0, 1, 14, 15, 16, 255])) } as Field,
      how: "hops",
    };
  if (f.role === "kind") {
    const kind = random() < 0.6 ? randomInt(random, 8) : randomInt(random, 256);
    return { field: { ...f, value: BigInt(kind) } as Field, how: "kind" };
  }
  if (f.role === "host") {
    const host = random() < 0.7 ? utf8(pick(random, BAD_HOSTS)) : mutateText(random, FREE).bytes;
    return { field: { ...f, value: host } as Field, how: "host" };
  }
  if (f.role === "count") {
    const count = pick(random, [0, 1, 64, 65, 0xffff, Number(f.t === "int" ? f.value : 0n) + 1]);
    return { field: { ...f, value: BigInt(count) } as Field, how: "count" };
  }
  switch (f.t) {
    case "int":
      return { field: { ...f, value: boundaryInt(random, f.bits) }, how: `int${f.bits}` };
    case "bytes": {
      const n = f.value.length;
      const value = pick(random, [
        () => fastRandomBytes(random, n),
        () => new Uint8Array(n),
        () => new Uint8Array(n).fill(0xff),
        () => f.value.subarray(0, randomInt(random, n + 1)),
        () => concatBytes(f.value, fastRandomBytes(random, 1 + randomInt(random, 8))),
      ])();
      return { field: { ...f, value }, how: `bytes:${f.role}` };
    }
    case "str": {
      const m = mutateText(random, f.limits);
      const field: Field = { ...f, value: m.bytes };
      return {
        field: m.declared === undefined ? field : { ...field, declared: m.declared },
        how: m.how,
      };
    }
  }
}

/** What a structure mutation produced: the new template, how to sign it, whether to send it twice. */
interface Structured {
  readonly template: Template;
  readonly sign: SignMode;
  readonly replay: boolean;
  readonly how: string;
}

const STRUCTURE_WEIGHTS = {
  field: 10,
  dropField: 1,
  dupField: 1,
  trailing: 1,
  signature: 0,
  replay: 0,
  manyPeers: 0,
};
const STRUCTURE_WEIGHTS_FLOOD = { ...STRUCTURE_WEIGHTS, signature: 3, replay: 2 };
const STRUCTURE_WEIGHTS_PEERS = { ...STRUCTURE_WEIGHTS, manyPeers: 1 };

/** A mutation that breaks one thing in the structure: a field, the field list, the signature. */
function structureMutation(random: Random, t: Template, env: CaseEnv): Structured {
  const fields = [...t.fields];
  const choice = pickWeighted(
    random,
    t.author
      ? STRUCTURE_WEIGHTS_FLOOD
      : t.type === FrameType.Peers
        ? STRUCTURE_WEIGHTS_PEERS
        : STRUCTURE_WEIGHTS,
  );
  const at = randomInt(random, fields.length);
  switch (choice) {
    case "field": {
      const { field, how } = mutateField(random, fields[at] as Field, env);
      fields[at] = field;
      return { template: { ...t, fields }, sign: "sign", replay: false, how };
    }
    case "dropField":
      fields.splice(at, 1);
      return { template: { ...t, fields }, sign: "sign", replay: false, how: "dropField" };
    case "dupField":
      fields.splice(at, 0, fields[at] as Field);
      return { template: { ...t, fields }, sign: "sign", replay: false, how: "dupField" };
    case "trailing":
      fields.push(bytes(fastRandomBytes(random, 1 + randomInt(random, 16))));
      return { template: { ...t, fields }, sign: "sign", replay: false, how: "trailing" };
    case "signature": {
      const sign = pick(random, ["asIs", "flipAfter", "otherAuthor", "originSwap"] as const);
      if (sign === "originSwap") {
        const i = fields.findIndex((f) => f.role === "origin");
        fields[i] = bytes(env.authors.pick(random).publicKey, "origin");
        return { template: { ...t, fields }, sign: "sign", replay: false, how: "sig:originSwap" };
      }
      if (sign === "asIs" && random() < 0.5) {
        const i = fields.findIndex((f) => f.role === "signature");
        fields[i] = bytes(fastRandomBytes(random, 64), "signature");
      }
      return { template: { ...t, fields }, sign, replay: false, how: `sig:${sign}` };
    }
    case "replay":
      return { template: t, sign: "sign", replay: true, how: "replay" };
    case "manyPeers": {
      const n = 65 + randomInt(random, 3);
      const entries: Field[] = [int(16, n, "count")];
      for (let i = 0; i < n; i++)
        entries.push(
          bytes(fastRandomBytes(random, 32)),
          str(utf8("10.0.0.1"), FREE),
          int(16, 9000),
        );
      return { template: { ...t, fields: entries }, sign: "sign", replay: false, how: "manyPeers" };
    }
  }
  throw new Error(`unhandled structure mutation ${choice}`);
}

/** A valid string of the field's limits, biased to its edges: short, the longest, or any. */
function edgyText(random: Random, limits: TextLimits): Uint8Array {
  const min = Math.max(1, limits.min);
  const r = random();
  if (r < 0.1) return validText(random, limits.max, limits.max);
  if (r < 0.2) return validText(random, min, min);
  if (r < 0.35) return validText(random, min, limits.max);
  return validText(random, min, Math.min(limits.max, 64));
}

const DEEP_FLOOD_WEIGHTS = {
  strings: 8,
  kind: 2,
  hops: 1,
  sentAt: 1,
  id: 1,
  seq: 1,
  replay: 1,
  forged: 1,
};

/**
 * A mutation that keeps the frame well formed and, mostly, acceptable, so it gets past
 * validation to the relay, presence, display and forwarding code behind it: strings
 * replaced by valid but hostile ones (bidi overrides, astral characters, the longest
 * allowed), FLOOD envelopes at edge values (kinds nobody knows, hop counts at the limit,
 * `sentAt` at the edges of the window), replays, forged signatures (a few per
 * connection are dropped, the third closes it), PEERS full of unroutable addresses.
 */
function deepMutation(random: Random, t: Template, env: CaseEnv): Structured {
  const fields = [...t.fields];
  const done = (how: string, extra: Partial<Structured> = {}): Structured => ({
    template: { ...t, fields },
    sign: "sign",
    replay: false,
    how,
    ...extra,
  });
  const set = (role: Role, value: bigint | Uint8Array) => {
    const i = fields.findIndex((f) => f.role === role);
    fields[i] = { ...(fields[i] as Field), value } as Field;
  };
  const strings = () => {
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as Field;
      if (f.t === "str") fields[i] = { ...f, value: edgyText(random, f.limits) };
    }
  };
  if (t.author) {
    const choice = pickWeighted(random, DEEP_FLOOD_WEIGHTS);
    switch (choice) {
      case "strings":
        strings();
        return done("deep:strings");
      case "kind":
        set("kind", BigInt(6 + randomInt(random, 250)));
        return done("deep:kind");
      case "hops":
        set("hops", BigInt(pick(random, [0, 1, 14, 15, 16, 255])));
        return done("deep:hops");
      case "sentAt": {
        const minute = 60_000;
        const skew = pick(random, [
          randomInt(random, 2 * minute),
          -randomInt(random, 2 * minute),
          2 * minute + 1 + randomInt(random, 10 * minute),
          -(2 * minute + 1 + randomInt(random, 10 * minute)),
        ]);
        set("sentAt", BigInt(Math.max(0, env.now + skew)));
        return done("deep:sentAt");
      }
      case "id":
        set(
          "id",
          pick(random, [
            () => new Uint8Array(16),
            () => fastRandomBytes(random, 16),
            () => new Uint8Array(16).fill(0xff),
          ])(),
        );
        return done("deep:id");
      case "seq":
        set("seq", boundaryInt(random, 32));
        return done("deep:seq");
      case "replay":
        return done("deep:replay", { replay: true });
      case "forged": {
        const sign = pick(random, ["asIs", "flipAfter", "otherAuthor"] as const);
        return done(`deep:forged:${sign}`, { sign });
      }
    }
  }
  switch (t.type) {
    case FrameType.Ping:
    case FrameType.Pong:
      fields[0] = int(64, random() < 0.5 ? boundaryInt(random, 64) : randomBigInt(random, 64));
      return done("deep:nonce");
    case FrameType.Peers: {
      const n = random() < 0.2 ? 64 : randomInt(random, 8);
      const entries: Field[] = [int(16, n, "count")];
      for (let i = 0; i < n; i++) {
        entries.push(
          bytes(
            random() < 0.5 ? fastRandomBytes(random, 32) : env.authors.pick(random).publicKey,
            "nodeId",
          ),
          str(utf8(pick(random, HOSTS)), FREE, "host"),
          int(16, 1 + randomInt(random, 65535)),
        );
      }
      return { ...done("deep:peers"), template: { ...t, fields: entries } };
    }
    case FrameType.Error:
      fields[0] = int(16, boundaryInt(random, 16));
      strings();
      return done("deep:strings");
    default:
      if (t.name === "unknown") {
        const type = 0x08 + randomInt(random, 0xf8);
        const payload = bytes(
          fastRandomBytes(random, random() < 0.9 ? randomInt(random, 64) : randomInt(random, 4000)),
        );
        return { ...done("deep:unknown"), template: { ...t, type, fields: [payload] } };
      }
      strings();
      return done("deep:strings");
  }
}

/**
 * How a frames case is made: `deep` keeps it acceptable (deepMutation), `structure`
 * breaks a field (then signs), `bytes` mutates the encoded frame, `both` does the two.
 * Deep cases mostly leave the connection up and cost microseconds; the others mostly
 * close it, and each costs the victim a new handshake.
 */
export const FRAME_MODES = { deep: 70, structure: 12, bytes: 12, both: 6 };

/** One fuzz case: the bytes to send and what they are made of. */
export interface FuzzCase {
  readonly index: number;
  readonly bytes: Uint8Array;
  /** The seed it was made from: `FLOOD/CHAT`, `PING`, `message1`… */
  readonly seed: string;
  /** The mutations applied, in order. */
  readonly mutations: readonly string[];
}

/** `FLOOD/CHAT [text:invalidUtf8, bitFlip]`: for reports. */
export function describeCase(c: FuzzCase): string {
  return `${c.seed} [${c.mutations.join(", ")}]`;
}

const frameShape = (other: () => Uint8Array) => ({
  lengthBytes: 4 as const,
  maxLength: 65_536,
  typeOffset: 4,
  other,
});

/**
 * Case `index` of the frames stream: a seed frame mutated as `modes` weighs it (see
 * {@link FRAME_MODES}). Sent inside an established secure channel.
 */
export function frameCase(
  seed: number,
  index: number,
  env: CaseEnv,
  modes: Readonly<Record<keyof typeof FRAME_MODES, number>> = FRAME_MODES,
): FuzzCase {
  const random = seededRandom(caseSeed(seed, Stream.frames, index));
  const template = seedTemplate(random, env);
  const mode = pickWeighted(random, modes);
  const mutations: string[] = [];
  let frame: Uint8Array;
  let replay = false;
  if (mode === "bytes") {
    frame = encodeTemplate(template);
  } else {
    const s =
      mode === "deep"
        ? deepMutation(random, template, env)
        : structureMutation(random, template, env);
    mutations.push(s.how);
    frame = encodeTemplate(s.template, s.sign, env.authors.pick(random), random);
    replay = s.replay;
  }
  if (mode === "bytes" || mode === "both") {
    const m = mutateBytes(
      frame,
      random,
      frameShape(() => encodeTemplate(seedTemplate(random, env))),
    );
    frame = m.bytes;
    mutations.push(...m.applied);
  }
  return {
    index,
    bytes: replay ? concatBytes(frame, frame) : frame,
    seed: template.name,
    mutations,
  };
}

// The handshake.

const LOBBY_KEY = roomKey(DEFAULT_ROOM);
const OTHER_ROOM_KEY = roomKey("not the lobby");

/** An initiator's handshake, with keys from `random` so its messages are reproducible. */
export function initiator(random: Random, psk: Uint8Array = LOBBY_KEY): HandshakeState {
  return new HandshakeState({
    protocolName: NOISE_PROTOCOL_NAME,
    initiator: true,
    prologue: NOISE_PROLOGUE,
    s: keyPairFromPrivate(fastRandomBytes(random, 32)),
    e: keyPairFromPrivate(fastRandomBytes(random, 32)),
    psks: [psk],
  });
}

/** `length:u16 | message`. */
export function noiseFramed(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + message.length);
  out[0] = message.length >>> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/** `u16 length | message 1` of a fresh initiator in room `psk` (the lobby by default). */
export function validMessage1(random: Random, psk = LOBBY_KEY): Uint8Array {
  const result = initiator(random, psk).writeMessage();
  if (!result.ok) throw new Error(`message 1 failed: ${result.reason}`);
  return noiseFramed(result.message);
}

const MESSAGE1_SEEDS = {
  message1: 8,
  "message1/otherRoom": 1,
  "message1/twice": 1,
  "v1 HELLO": 1,
} as const;

/**
 * Case `index` of the message-1 stream: a valid `u16 length | message 1` (or one from
 * another room, two of them, a v1 HELLO) mutated at the byte level, the Noise length
 * included. Sent as the first bytes of a plain TCP connection.
 */
export function message1Case(seed: number, index: number): FuzzCase {
  const random = seededRandom(caseSeed(seed, Stream.message1, index));
  const name = pickWeighted(random, MESSAGE1_SEEDS);
  const unit =
    name === "message1"
      ? validMessage1(random)
      : name === "message1/otherRoom"
        ? validMessage1(random, OTHER_ROOM_KEY)
        : name === "message1/twice"
          ? concatBytes(validMessage1(random), validMessage1(random))
          : encodeHello({
              nodeId: fastRandomBytes(random, 32),
              listenPort: 0,
              nick: "old",
              version: 1,
            });
  const m = mutateBytes(unit, random, {
    lengthBytes: 2,
    maxLength: 48,
    other: () => validMessage1(random),
  });
  return { index, bytes: m.bytes, seed: name, mutations: m.applied };
}

const MESSAGE3_MODES = { wire: 30, payload: 50, transport: 20 };

/** What a message-3 case does once messages 1 and 2 are through. */
export type Message3Mode = "wire" | "payload" | "transport";

/** The plan for case `index` of the message-3 stream; its `random` drives the rest. */
export interface Message3Plan {
  readonly index: number;
  readonly random: Random;
  readonly mode: Message3Mode;
  readonly identity: Identity;
  readonly handshake: HandshakeState;
  readonly staticKey: KeyPair;
}

/**
 * Case `index` of the message-3 stream: a real handshake with the victim up to message
 * 2, then a mutated message 3 (`wire`: its bytes; `payload`: the HELLO and signature it
 * carries, validly encrypted) or a valid message 3 followed by a mutated first
 * transport message (`transport`).
 */
export function message3Plan(seed: number, index: number): Message3Plan {
  const random = seededRandom(caseSeed(seed, Stream.message3, index));
  const staticKey = keyPairFromPrivate(fastRandomBytes(random, 32));
  const handshake = new HandshakeState({
    protocolName: NOISE_PROTOCOL_NAME,
    initiator: true,
    prologue: NOISE_PROLOGUE,
    s: staticKey,
    e: keyPairFromPrivate(fastRandomBytes(random, 32)),
    psks: [LOBBY_KEY],
  });
  const identity = identityFromSeed(fastRandomBytes(random, 32));
  const mode = pickWeighted(random, MESSAGE3_MODES);
  return { index, random, mode, identity, handshake, staticKey };
}

/** The valid payload of message 3: our HELLO, then the identity's signature over our static key. */
export function helloPayloadFields(plan: Message3Plan): Field[] {
  const signature = plan.identity.sign(
    concatBytes(STATIC_KEY_SIGNATURE_PREFIX, plan.staticKey.publicKey),
  );
  return [
    ...helloFields(plan.identity.publicKey, utf8(`fuzz${plan.index % 1000}`)),
    bytes(signature, "signature"),
  ];
}

/** A mutated message-3 payload (HELLO and signature), by structure or by bytes. */
export function mutatedHelloPayload(
  plan: Message3Plan,
  env: CaseEnv,
): { payload: Uint8Array; mutations: readonly string[] } {
  const random = plan.random;
  const fields = helloPayloadFields(plan);
  const template: Template = { name: "HELLO payload", type: FrameType.Hello, fields };
  if (random() < 0.7) {
    const s = structureMutation(random, template, env);
    return { payload: encodeFields(s.template.fields), mutations: [s.how] };
  }
  const m = mutateBytes(encodeFields(fields), random, {
    other: () => encodeFields(helloPayloadFields(plan)),
  });
  return { payload: m.bytes, mutations: m.applied };
}

/** The plaintext of the first transport message of a `transport` case: a PING. */
export function transportPlaintext(random: Random): Uint8Array {
  return encodePing(randomBigInt(random, 63));
}
