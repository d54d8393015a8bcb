import { expect, test } from "bun:test";
import { isIP } from "node:net";
import { isIP as ours, sourceGroup } from "../../src/protocol/ip.ts";

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

test.each([
  ["an IPv4 address is its own group", "203.0.113.7", "203.0.113.7"],
  ["an IPv4-mapped IPv6 address counts as its IPv4 address", "::ffff:127.0.0.2", "127.0.0.2"],
  ["an IPv6 address counts by its /64", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"],
  ["another address of the same /64", "2001:0db8:0001:0002:ffff:1:2:3", "2001:db8:1:2::/64"],
  ["a /64 of zeros after a ::", "2001:db8::1", "2001:db8:0:0::/64"],
  ["loopback", "::1", "0:0:0:0::/64"],
  ["a zone is not part of the address", "fe80::1%eth0", "fe80:0:0:0::/64"],
  ["a name that is not an address is its own group", "memory", "memory"],
])("source groups: %s", (_name, host, group) => {
  expect(sourceGroup(host)).toBe(group);
});
