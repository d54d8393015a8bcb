import { expect } from "bun:test";
import { NoiseError } from "../../src/errors.ts";
import type { TransportCiphers } from "../../src/noise/handshake-state.ts";
import { type HandshakeOptions, HandshakeState } from "../../src/noise/handshake-state.ts";
import { generateKeyPair, type KeyPair } from "../../src/noise/primitives.ts";

/** The protocol peerchat uses between peers. */
export const XXPSK0 = "Noise_XXpsk0_25519_AESGCM_SHA256";

/** Both ends of a handshake that has run to completion, with their transport ciphers. */
export interface Session {
  init: HandshakeState;
  resp: HandshakeState;
  initCiphers: TransportCiphers;
  respCiphers: TransportCiphers;
}

/** A 32-byte PSK filled with `fill`. */
export function psk(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

/** Two sides of `protocolName` with random statics; `extra` overrides per side. */
export function pair(
  protocolName: string,
  extra: { init?: Partial<HandshakeOptions>; resp?: Partial<HandshakeOptions> } = {},
): { init: HandshakeState; resp: HandshakeState; initStatic: KeyPair; respStatic: KeyPair } {
  const initStatic = generateKeyPair();
  const respStatic = generateKeyPair();
  const init = new HandshakeState({
    protocolName,
    initiator: true,
    s: initStatic,
    psks: [psk(7)],
    ...extra.init,
  });
  const resp = new HandshakeState({
    protocolName,
    initiator: false,
    s: respStatic,
    psks: [psk(7)],
    ...extra.resp,
  });
  return { init, resp, initStatic, respStatic };
}

/** Runs every handshake message between `init` and `resp`, asserting each succeeds. */
export function runHandshake(init: HandshakeState, resp: HandshakeState): Session {
  let turn = 0;
  while (!init.isDone || !resp.isDone) {
    const [writer, reader] = turn % 2 === 0 ? [init, resp] : [resp, init];
    const payload = new TextEncoder().encode(`handshake payload ${turn}`);
    const written = writer.writeMessage(payload);
    if (!written.ok) throw new Error(`message ${turn}: write failed: ${written.reason}`);
    const read = reader.readMessage(written.message);
    if (!read.ok) throw new Error(`message ${turn}: read failed: ${read.reason}`);
    expect(read.payload).toEqual(payload);
    turn++;
  }
  return { init, resp, initCiphers: init.split(), respCiphers: resp.split() };
}

/**
 * X25519 public keys whose DH output is all zeros for every private key: the low-order
 * points and their non-canonical encodings (the list libsodium refuses).
 */
export const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
];

/** Runs `fn` and asserts it throws a {@link NoiseError} with `code`. */
export function expectNoiseError(fn: () => unknown, code: NoiseError["code"]): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(NoiseError);
  expect((thrown as NoiseError).code).toBe(code);
}
