import { NoiseError } from "../errors.ts";
import { SUITE } from "./constants.ts";

/** A token in a message pattern (spec 7.1, 9.2). */
export type Token = "e" | "s" | "ee" | "es" | "se" | "ss" | "psk";

/** A token allowed in a pre-message pattern (spec 7.1). */
export type PreMessageToken = "e" | "s";

/**
 * A handshake pattern: the keys each side knows about the other before the first message,
 * then the messages in order, alternating initiator → responder → initiator …
 */
export interface HandshakePattern {
  /** The pattern as it appears in a protocol name, e.g. `XXpsk0`. */
  readonly name: string;
  readonly initiatorPreMessage: readonly PreMessageToken[];
  readonly responderPreMessage: readonly PreMessageToken[];
  readonly messages: readonly (readonly Token[])[];
}

/**
 * The one-way and fundamental interactive patterns of spec 7.4 and 7.5. Message `i` is sent
 * by the initiator when `i` is even.
 */
export const BASE_PATTERNS = {
  N: { initiatorPreMessage: [], responderPreMessage: ["s"], messages: [["e", "es"]] },
  K: { initiatorPreMessage: ["s"], responderPreMessage: ["s"], messages: [["e", "es", "ss"]] },
  X: { initiatorPreMessage: [], responderPreMessage: ["s"], messages: [["e", "es", "s", "ss"]] },
  NN: { initiatorPreMessage: [], responderPreMessage: [], messages: [["e"], ["e", "ee"]] },
  NK: {
    initiatorPreMessage: [],
    responderPreMessage: ["s"],
    messages: [
      ["e", "es"],
      ["e", "ee"],
    ],
  },
  NX: {
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee", "s", "es"]],
  },
  KN: {
    initiatorPreMessage: ["s"],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee", "se"]],
  },
  KK: {
    initiatorPreMessage: ["s"],
    responderPreMessage: ["s"],
    messages: [
      ["e", "es", "ss"],
      ["e", "ee", "se"],
    ],
  },
  KX: {
    initiatorPreMessage: ["s"],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee", "se", "s", "es"]],
  },
  XN: {
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee"], ["s", "se"]],
  },
  XK: {
    initiatorPreMessage: [],
    responderPreMessage: ["s"],
    messages: [
      ["e", "es"],
      ["e", "ee"],
      ["s", "se"],
    ],
  },
  XX: {
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [["e"], ["e", "ee", "s", "es"], ["s", "se"]],
  },
  IN: {
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [
      ["e", "s"],
      ["e", "ee", "se"],
    ],
  },
  IK: {
    initiatorPreMessage: [],
    responderPreMessage: ["s"],
    messages: [
      ["e", "es", "s", "ss"],
      ["e", "ee", "se"],
    ],
  },
  IX: {
    initiatorPreMessage: [],
    responderPreMessage: [],
    messages: [
      ["e", "s"],
      ["e", "ee", "se", "s", "es"],
    ],
  },
} as const satisfies Record<string, Omit<HandshakePattern, "name">>;

/** The name of a pattern in {@link BASE_PATTERNS}. */
export type BasePatternName = keyof typeof BASE_PATTERNS;

/** A pattern name: a base pattern and optional `pskN` modifiers joined by `+`. */
const PATTERN_NAME = /^([NKXI]{1,2})((?:psk(?:0|[1-9][0-9]*))(?:\+psk(?:0|[1-9][0-9]*))*)?$/;

function isBasePatternName(name: string): name is BasePatternName {
  return Object.hasOwn(BASE_PATTERNS, name);
}

/**
 * Applies `pskN` modifiers (spec 9.2): `psk0` puts a `psk` token at the start of the first
 * message, `pskN` for N ≥ 1 at the end of message N. Modifiers apply in the given order.
 * Throws {@link NoiseError} `BAD_PROTOCOL_NAME` if N is past the last message or repeats.
 */
export function applyPskModifiers(
  base: Omit<HandshakePattern, "name">,
  name: string,
  modifiers: readonly number[],
): HandshakePattern {
  const messages = base.messages.map((m) => [...m]);
  const seen = new Set<number>();
  for (const n of modifiers) {
    if (seen.has(n)) throw badName(name, `psk${n} appears twice`);
    seen.add(n);
    if (n === 0) {
      messages[0]!.unshift("psk");
    } else {
      const message = messages[n - 1];
      if (!message)
        throw badName(name, `psk${n} is past the pattern's ${messages.length} messages`);
      message.push("psk");
    }
  }
  return {
    name,
    initiatorPreMessage: base.initiatorPreMessage,
    responderPreMessage: base.responderPreMessage,
    messages,
  };
}

/**
 * Parses a pattern name such as `XX`, `XXpsk0` or `NNpsk0+psk2`. Throws {@link NoiseError}
 * `BAD_PROTOCOL_NAME` for an unknown base pattern or a malformed or misplaced modifier.
 */
export function parsePatternName(name: string): HandshakePattern {
  const match = PATTERN_NAME.exec(name);
  if (!match) throw badName(name, "not a known pattern with optional pskN modifiers");
  const baseName = match[1]!;
  if (!isBasePatternName(baseName)) throw badName(name, `unknown base pattern ${baseName}`);
  const modifiers = match[2] ? match[2].split("+").map((m) => Number(m.slice(3))) : [];
  return applyPskModifiers(BASE_PATTERNS[baseName], name, modifiers);
}

/**
 * Parses a full protocol name, `Noise_<pattern>_25519_AESGCM_SHA256`, into its handshake
 * pattern. Any other DH, cipher or hash is refused: this is the only suite implemented.
 * Throws {@link NoiseError} `BAD_PROTOCOL_NAME`.
 */
export function parseProtocolName(protocolName: string): HandshakePattern {
  const parts = protocolName.split("_");
  if (parts.length !== 5 || parts[0] !== "Noise") {
    throw badName(protocolName, "expected Noise_<pattern>_<dh>_<cipher>_<hash>");
  }
  const [, pattern, dhName, cipherName, hashName] = parts;
  if (dhName !== SUITE.dh || cipherName !== SUITE.cipher || hashName !== SUITE.hash) {
    throw badName(protocolName, `only ${SUITE.dh}_${SUITE.cipher}_${SUITE.hash} is supported`);
  }
  return parsePatternName(pattern!);
}

/** How many `psk` tokens a pattern holds, which is how many PSKs a handshake needs. */
export function pskCount(pattern: HandshakePattern): number {
  let count = 0;
  for (const message of pattern.messages) for (const t of message) if (t === "psk") count++;
  return count;
}

function badName(name: string, why: string): NoiseError {
  return new NoiseError("BAD_PROTOCOL_NAME", `bad Noise protocol name ${name}: ${why}`);
}
