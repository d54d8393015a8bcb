import { expect, test } from "bun:test";
import { isIP } from "node:net";
import { isIP as ours } from "../../src/protocol/ip.ts";

test("IP literals: agrees with node:net on a table of valid and invalid forms", () => {
  const cases = [
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "10.0.0.7",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.04",
    "a.b.c.d",
    "",
    "::",
    "::1",
    "1::",
    "fe80::1",
    "2001:db8::8a2e:370:7334",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":1",
    "1:",
    "12345::1",
    "g::1",
    "::ffff:1.2.3.4",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::ffff:256.1.1.1",
    "[::1]",
    "localhost",
    "example.com",
    "1.2.3.4 ",
  ];
  for (const c of cases) expect(ours(c), JSON.stringify(c)).toBe(isIP(c) !== 0);
});
