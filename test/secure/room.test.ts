import { describe, expect, test } from "bun:test";
import { MAX_ROOM_BYTES, roomKey, roomNameProblem } from "../../src/secure/room.ts";

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

describe("room names", () => {
  test("a name in NFD and the same name in NFC are one room", () => {
    const nfc = "caf\u00e9 cr\u00e8me";
    const nfd = nfc.normalize("NFD");
    expect(nfd).not.toBe(nfc);
    expect(roomKey(nfd)).toEqual(roomKey(nfc));
    // Hangul: composed syllables against their conjoining jamo.
    expect(roomKey("\u1100\u1161\u11a8")).toEqual(roomKey("\uac01"));
  });

  test("case and spaces, leading and trailing ones too, make another room", () => {
    const keys = ["lobby", "Lobby", " lobby", "lobby ", "lob by", "lobby\u00a0"].map((name) =>
      Buffer.from(roomKey(name)).toString("hex"),
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  test("an empty name is refused; a name of spaces is a name", () => {
    expect(roomNameProblem("")).toBe("the room name is empty");
    expect(roomNameProblem(" ")).toBeUndefined();
  });

  test("the length limit is measured on the NFC form", () => {
    // "é" decomposed is 3 bytes, composed 2: 128 of them fit once composed.
    const fits = "\u0065\u0301".repeat(MAX_ROOM_BYTES / 2);
    expect(utf8Bytes(fits)).toBeGreaterThan(MAX_ROOM_BYTES);
    expect(roomNameProblem(fits)).toBeUndefined();
    expect(roomNameProblem(`${fits}\u0065\u0301`)).toBe(
      `the room name is longer than ${MAX_ROOM_BYTES} bytes`,
    );
    // U+0958 is excluded from composition: NFC decomposes it, 3 bytes become 6.
    const grows = "\u0958".repeat(50);
    expect(utf8Bytes(grows)).toBeLessThanOrEqual(MAX_ROOM_BYTES);
    expect(utf8Bytes(grows.normalize("NFC"))).toBeGreaterThan(MAX_ROOM_BYTES);
    expect(roomNameProblem(grows)).toBe(`the room name is longer than ${MAX_ROOM_BYTES} bytes`);
  });

  test("the refusal never quotes the name: it is a secret", () => {
    const secret = "s3cret".repeat(60);
    expect(roomNameProblem(secret)).not.toContain("s3cret");
  });
});
