import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { BASE32_ALPHABET, decodeBase32, encodeBase32 } from "../../src/invite/base32.ts";
import {
  decodeTicket,
  encodeTicket,
  MAX_TICKET_ADDRESSES,
  MAX_TICKET_CHARS,
  TICKET_CHECKSUM_BYTES,
  TICKET_PREFIX,
  type Ticket,
  type TicketDecoding,
} from "../../src/invite/ticket.ts";
import { ByteWriter, encodeUtf8 } from "../../src/protocol/byte-writer.ts";
import { MAX_ROOM_BYTES } from "../../src/secure/room.ts";
import { randomBytes, randomInt, seededRandom, testSeed } from "../helpers/random.ts";

const NODE_ID = Uint8Array.from({ length: 32 }, (_, i) => 0xc0 ^ i);

/** A ticket as /invite makes one: a secret room, a peer reachable at three addresses. */
const REAL: Ticket = {
  room: "our secret phrase",
  nodeId: NODE_ID,
  addresses: [
    { host: "192.168.1.20", port: 9000 },
    { host: "fe80::1", port: 9000 },
    { host: "localhost", port: 41_234 },
  ],
};
const REAL_TEXT = encodeTicket(REAL);

const refusal = (decoding: TicketDecoding) => {
  if (decoding.ok) throw new Error("expected the ticket to be refused");
  return decoding;
};
const accepted = (decoding: TicketDecoding) => {
  if (!decoding.ok) throw new Error(`expected a ticket, got: ${decoding.reason}`);
  return decoding.ticket;
};

/** A ticket text around `payload` with a right checksum: fields no encoder would write. */
function craft(payload: Uint8Array): string {
  const sum = createHash("sha256").update(payload).digest().subarray(0, TICKET_CHECKSUM_BYTES);
  const bytes = new Uint8Array(payload.length + sum.length);
  bytes.set(payload);
  bytes.set(sum, payload.length);
  return TICKET_PREFIX + encodeBase32(bytes);
}

/** A payload: version, room bytes, node id, then the addresses as given (count included). */
function payload(
  fields: {
    version?: number;
    room?: Uint8Array;
    count?: number;
    addresses?: Array<{ host: Uint8Array; port: number }>;
    trailing?: number;
  } = {},
): Uint8Array {
  const room = fields.room ?? encodeUtf8("room");
  const addresses = fields.addresses ?? [{ host: encodeUtf8("127.0.0.1"), port: 9000 }];
  const size =
    1 +
    2 +
    room.length +
    32 +
    1 +
    addresses.reduce((n, a) => n + 2 + a.host.length + 2, 0) +
    (fields.trailing ?? 0);
  const w = new ByteWriter(size)
    .u8(fields.version ?? 1)
    .str(room)
    .bytes(NODE_ID)
    .u8(fields.count ?? addresses.length);
  for (const a of addresses) w.str(a.host).u16(a.port);
  w.skip(fields.trailing ?? 0);
  return w.done();
}

describe("base32", () => {
  test.each([
    ["", ""],
    ["f", "my"],
    ["fo", "mzxq"],
    ["foo", "mzxw6"],
    ["foob", "mzxw6yq"],
    ["fooba", "mzxw6ytb"],
    ["foobar", "mzxw6ytboi"],
  ])("RFC 4648 §10 vector %p is %p (lower case, unpadded)", (plain, text) => {
    expect(encodeBase32(encodeUtf8(plain))).toBe(text);
    const back = decodeBase32(text);
    expect(back.ok && new TextDecoder().decode(back.bytes)).toBe(plain);
  });

  test("round trip of random bytes of every length up to 64", () => {
    const seed = testSeed(13);
    const random = seededRandom(seed);
    for (let n = 0; n <= 64; n++) {
      const bytes = randomBytes(random, n);
      const back = decodeBase32(encodeBase32(bytes));
      expect(back.ok ? [...back.bytes] : `seed ${seed}`).toEqual([...bytes]);
    }
  });

  test("a length no byte count gives, a foreign character, or set padding bits is refused", () => {
    // "my" is "f"; "mz" sets a padding bit of the same byte, as "mzxr" and "mzxw7" do.
    expect(decodeBase32("my").ok).toBe(true);
    for (const text of ["m", "mzx", "mzxw6y", "mz", "mzxr", "mzxw7", "my0", "MY", "m y", "mé"])
      expect(decodeBase32(text).ok).toBe(false);
    expect(decodeBase32("m1")).toEqual({ ok: false, problem: { kind: "character", index: 1 } });
    expect(decodeBase32("mzx")).toEqual({ ok: false, problem: { kind: "length" } });
  });
});

describe("ticket - round trip", () => {
  test("what is encoded is what is decoded: room, node id, every address in order", () => {
    expect(REAL_TEXT.startsWith("pc1")).toBe(true);
    expect(REAL_TEXT).toMatch(/^pc1[a-z2-7]+$/);
    const ticket = accepted(decodeTicket(REAL_TEXT));
    expect(ticket.room).toBe(REAL.room);
    expect([...ticket.nodeId]).toEqual([...NODE_ID]);
    expect(ticket.addresses).toEqual(REAL.addresses);
  });

  test("pasted: surrounding and embedded white space and upper case are read as meant", () => {
    const wrapped = `  \n${REAL_TEXT.slice(0, 40)}\n${REAL_TEXT.slice(40).toUpperCase()}\t \r\n`;
    expect(accepted(decodeTicket(wrapped)).addresses).toEqual(REAL.addresses);
    expect(accepted(decodeTicket(REAL_TEXT.toUpperCase())).room).toBe(REAL.room);
  });

  test("a room name is carried in its NFC form, as the room key reads it", () => {
    const nfd = "cafe\u0301";
    const ticket = accepted(decodeTicket(encodeTicket({ ...REAL, room: nfd })));
    expect(ticket.room).toBe("caf\u00e9");
  });

  test("the same ticket always has the same text", () => {
    expect(encodeTicket(REAL)).toBe(REAL_TEXT);
  });
});

describe("ticket - damage is refused", () => {
  // Every character that could be typed in its place: the alphabet, the digits it lacks,
  // and a few others; upper case is the same symbol, so it is not a change.
  const replacements = `${BASE32_ALPHABET}0189-_.+=/ é`;

  test("every single-character change at every position", () => {
    let tried = 0;
    for (let i = 0; i < REAL_TEXT.length; i++) {
      for (const c of replacements) {
        if (c === REAL_TEXT[i]) continue;
        const changed = REAL_TEXT.slice(0, i) + c + REAL_TEXT.slice(i + 1);
        // White space is read through (a wrapped line), so a space in place of a
        // character is that character dropped: refused all the same.
        const result = decodeTicket(changed);
        if (result.ok) throw new Error(`position ${i}: "${c}" was accepted`);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(REAL_TEXT.length * 30);
  });

  test("every single character dropped", () => {
    for (let i = 0; i < REAL_TEXT.length; i++) {
      const dropped = REAL_TEXT.slice(0, i) + REAL_TEXT.slice(i + 1);
      if (decodeTicket(dropped).ok) throw new Error(`dropping position ${i} was accepted`);
    }
  });

  test("every single character added, at every position", () => {
    for (let i = 0; i <= REAL_TEXT.length; i++) {
      for (const c of `${BASE32_ALPHABET}1`) {
        const added = REAL_TEXT.slice(0, i) + c + REAL_TEXT.slice(i);
        if (decodeTicket(added).ok) throw new Error(`adding "${c}" at ${i} was accepted`);
      }
    }
  });

  test("every swap of two adjacent different characters", () => {
    let swaps = 0;
    for (let i = 0; i + 1 < REAL_TEXT.length; i++) {
      const [x, y] = [REAL_TEXT[i] as string, REAL_TEXT[i + 1] as string];
      if (x === y) continue;
      const swapped = REAL_TEXT.slice(0, i) + y + x + REAL_TEXT.slice(i + 2);
      if (decodeTicket(swapped).ok)
        throw new Error(`swapping positions ${i}, ${i + 1} was accepted`);
      swaps++;
    }
    expect(swaps).toBeGreaterThan(REAL_TEXT.length / 2);
  });

  test("the reasons: not a ticket, damaged (the checksum), a character no ticket has", () => {
    expect(refusal(decodeTicket("hello"))).toEqual({
      ok: false,
      code: "NOT_A_TICKET",
      reason: "not a peerchat ticket (it should start with pc1)",
    });
    expect(refusal(decodeTicket("")).code).toBe("NOT_A_TICKET");
    const last = REAL_TEXT.at(-1) === "a" ? "b" : "a";
    const damaged = refusal(decodeTicket(REAL_TEXT.slice(0, -1) + last));
    expect(damaged.code).toBe("DAMAGED");
    expect(damaged.reason).toBe(
      "this ticket is damaged: a character is wrong or missing (its checksum does not match); copy it again",
    );
    const foreign = refusal(decodeTicket(`${REAL_TEXT.slice(0, 10)}0${REAL_TEXT.slice(11)}`));
    expect(foreign.code).toBe("DAMAGED");
    expect(foreign.reason).toContain('"0"');
    expect(refusal(decodeTicket(TICKET_PREFIX)).code).toBe("DAMAGED");
  });

  test("no reason quotes the room name", () => {
    for (let i = TICKET_PREFIX.length; i < REAL_TEXT.length; i += 7) {
      const changed = `${REAL_TEXT.slice(0, i)}9${REAL_TEXT.slice(i + 1)}`;
      expect(refusal(decodeTicket(changed)).reason).not.toContain("secret");
    }
  });

  test("random text, with and without the prefix, is answered and never throws", () => {
    const seed = testSeed(1313);
    const random = seededRandom(seed);
    const symbols = `${BASE32_ALPHABET}PC1 \n0é`;
    for (let n = 0; n < 3000; n++) {
      let text = randomInt(random, 2) === 0 ? TICKET_PREFIX : "";
      const length = randomInt(random, 200);
      for (let i = 0; i < length; i++) text += symbols[randomInt(random, symbols.length)];
      const result = decodeTicket(text);
      if (result.ok) throw new Error(`seed ${seed}: random text ${text} was accepted`);
    }
  });
});

describe("ticket - fields and limits", () => {
  test("another version: newer is 'update peerchat', zero is not ours", () => {
    const newer = refusal(decodeTicket(craft(payload({ version: 2 }))));
    expect(newer.code).toBe("UNSUPPORTED_VERSION");
    expect(newer.reason).toContain("update peerchat");
    expect(refusal(decodeTicket(craft(payload({ version: 0 })))).code).toBe("UNSUPPORTED_VERSION");
    expect(accepted(decodeTicket(craft(payload()))).room).toBe("room");
  });

  const host = (text: string, port = 9000) => ({ host: encodeUtf8(text), port });
  test.each([
    ["an empty room name", payload({ room: new Uint8Array(0) })],
    ["a room name over the limit", payload({ room: new Uint8Array(MAX_ROOM_BYTES + 1).fill(97) })],
    ["a room name that is not UTF-8", payload({ room: Uint8Array.of(0xff, 0xfe) })],
    ["no address", payload({ addresses: [] })],
    [
      "nine addresses",
      payload({ addresses: Array.from({ length: 9 }, (_, i) => host(`10.0.0.${i}`)) }),
    ],
    ["a count past the addresses", payload({ count: 2 })],
    ["bytes after the last address", payload({ trailing: 3 })],
    ["port 0", payload({ addresses: [host("127.0.0.1", 0)] })],
    ["an empty host", payload({ addresses: [host("")] })],
    ["a host with a space", payload({ addresses: [host("evil host")] })],
    ["a host with a slash", payload({ addresses: [host("a/b")] })],
    ["a host that is not an address and not a name", payload({ addresses: [host("999.1.1.1")] })],
    ["a host over 253 bytes", payload({ addresses: [host(`${"a".repeat(63)}.`.repeat(4))] })],
    ["a host label over 63", payload({ addresses: [host(`${"a".repeat(64)}.example`)] })],
    ["an IPv6 zone", payload({ addresses: [host("fe80::1%eth0")] })],
    ["a host not in UTF-8", payload({ addresses: [{ host: Uint8Array.of(0xc3), port: 1 }] })],
  ])("an intact ticket with %s is refused as not valid", (_, bytes) => {
    const result = refusal(decodeTicket(craft(bytes)));
    expect(result.code).toBe("BAD_FIELD");
    expect(result.reason).toStartWith("this ticket is not valid: ");
  });

  test("a payload cut short is refused as not valid, never thrown", () => {
    const full = payload();
    for (let n = 1; n < full.length; n++)
      expect(refusal(decodeTicket(craft(full.subarray(0, n)))).code).toBe("BAD_FIELD");
  });

  test("IP literals and host names are allowed; 8 addresses, a 256-byte room and long names fit", () => {
    const longName = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(longName.length).toBe(253);
    const biggest: Ticket = {
      room: "r".repeat(MAX_ROOM_BYTES),
      nodeId: NODE_ID,
      addresses: Array.from({ length: MAX_TICKET_ADDRESSES }, (_, i) => ({
        host: longName,
        port: 65_535 - i,
      })),
    };
    const text = encodeTicket(biggest);
    expect(text.length).toBe(MAX_TICKET_CHARS);
    expect(accepted(decodeTicket(text)).addresses).toEqual(biggest.addresses);
    for (const h of ["10.0.0.1", "::1", "2001:db8::7", "::ffff:10.0.0.1", "my-laptop.local", "x"])
      expect(
        accepted(decodeTicket(encodeTicket({ ...REAL, addresses: [{ host: h, port: 1 }] })))
          .addresses,
      ).toEqual([{ host: h, port: 1 }]);
  });

  test("text longer than any ticket is refused without being decoded", () => {
    expect(refusal(decodeTicket(`${REAL_TEXT}${"a".repeat(MAX_TICKET_CHARS)}`)).code).toBe(
      "DAMAGED",
    );
    const huge = `pc1${"a".repeat(10_000_000)}`;
    const started = performance.now();
    expect(refusal(decodeTicket(huge)).code).toBe("NOT_A_TICKET");
    expect(performance.now() - started).toBeLessThan(100);
  });

  test("encoding a ticket no decoder would take is a bug, and throws", () => {
    const bad: Ticket[] = [
      { ...REAL, room: "" },
      { ...REAL, room: "r".repeat(MAX_ROOM_BYTES + 1) },
      { ...REAL, nodeId: new Uint8Array(31) },
      { ...REAL, addresses: [] },
      {
        ...REAL,
        addresses: Array.from({ length: 9 }, (_, i) => ({ host: `10.0.0.${i}`, port: 1 })),
      },
      { ...REAL, addresses: [{ host: "127.0.0.1", port: 0 }] },
      { ...REAL, addresses: [{ host: "127.0.0.1", port: 65_536 }] },
      { ...REAL, addresses: [{ host: "my_host", port: 1 }] },
    ];
    for (const ticket of bad) expect(() => encodeTicket(ticket)).toThrow("cannot make a ticket");
  });
});
