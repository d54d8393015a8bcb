import { describe, expect, test } from "bun:test";
import { parsePatternName, parseProtocolName, pskCount } from "../../src/noise/patterns.ts";
import { expectNoiseError } from "./helpers.ts";

describe("patterns - parsing protocol names", () => {
  test("XXpsk0 puts psk before e in the first message", () => {
    const p = parseProtocolName("Noise_XXpsk0_25519_AESGCM_SHA256");
    expect(p.name).toBe("XXpsk0");
    expect(p.messages).toEqual([
      ["psk", "e"],
      ["e", "ee", "s", "es"],
      ["s", "se"],
    ]);
    expect(pskCount(p)).toBe(1);
  });

  test("pskN for N >= 1 appends psk to message N", () => {
    expect(parsePatternName("XXpsk3").messages).toEqual([
      ["e"],
      ["e", "ee", "s", "es"],
      ["s", "se", "psk"],
    ]);
    expect(parsePatternName("NNpsk2").messages).toEqual([["e"], ["e", "ee", "psk"]]);
  });

  test("several modifiers apply in order", () => {
    const p = parsePatternName("NNpsk0+psk2");
    expect(p.messages).toEqual([
      ["psk", "e"],
      ["e", "ee", "psk"],
    ]);
    expect(pskCount(p)).toBe(2);
  });

  test("pre-messages come from the base pattern", () => {
    const kk = parsePatternName("KKpsk0");
    expect(kk.initiatorPreMessage).toEqual(["s"]);
    expect(kk.responderPreMessage).toEqual(["s"]);
    const ik = parsePatternName("IK");
    expect(ik.initiatorPreMessage).toEqual([]);
    expect(ik.responderPreMessage).toEqual(["s"]);
    expect(pskCount(ik)).toBe(0);
  });

  test.each([
    "Noise_XX_25519_ChaChaPoly_SHA256",
    "Noise_XX_448_AESGCM_SHA256",
    "Noise_XX_25519_AESGCM_BLAKE2s",
    "Noise_XX_25519_AESGCM",
    "Noise_XX_25519_AESGCM_SHA256_extra",
    "noise_XX_25519_AESGCM_SHA256",
    "Noise_XY_25519_AESGCM_SHA256",
    "Noise_NNN_25519_AESGCM_SHA256",
    "Noise_XXpsk4_25519_AESGCM_SHA256",
    "Noise_Npsk2_25519_AESGCM_SHA256",
    "Noise_XXpsk0+psk0_25519_AESGCM_SHA256",
    "Noise_XXpsk01_25519_AESGCM_SHA256",
    "Noise_XXfallback_25519_AESGCM_SHA256",
    "Noise_XXpsk0+_25519_AESGCM_SHA256",
    "Noise__25519_AESGCM_SHA256",
  ])("refuses %s", (name) => {
    expectNoiseError(() => parseProtocolName(name), "BAD_PROTOCOL_NAME");
  });
});
