import { describe, expect, test } from "bun:test";
import type { NetworkInterfaceInfo } from "node:os";
import { invitationAddresses, onlyLoopback } from "../../src/invite/addresses.ts";
import { MAX_TICKET_ADDRESSES } from "../../src/invite/ticket.ts";

const v4 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: "255.255.255.0",
  family: "IPv4",
  mac: "00:00:00:00:00:00",
  internal,
  cidr: `${address}/24`,
});
const v6 = (address: string, internal = false): NetworkInterfaceInfo => ({
  address,
  netmask: "ffff:ffff:ffff:ffff::",
  family: "IPv6",
  mac: "00:00:00:00:00:00",
  internal,
  cidr: `${address}/64`,
  scopeid: 0,
});

describe("invitation addresses", () => {
  const machine = {
    lo: [v4("127.0.0.1", true), v6("::1", true)],
    eth0: [v4("192.168.1.20"), v6("fe80::1")],
    wlan0: [v4("10.0.0.7")],
  };

  test("a peer listening on one address is invited there, whatever the interfaces", () => {
    expect(invitationAddresses({ host: "127.0.0.1", port: 9000 }, machine)).toEqual([
      { host: "127.0.0.1", port: 9000 },
    ]);
    expect(invitationAddresses({ host: "192.168.1.20", port: 1 }, machine)).toEqual([
      { host: "192.168.1.20", port: 1 },
    ]);
  });

  test("a wildcard listen is each non-loopback IPv4 address, with the listen port", () => {
    for (const host of ["0.0.0.0", "::"])
      expect(invitationAddresses({ host, port: 4242 }, machine)).toEqual([
        { host: "192.168.1.20", port: 4242 },
        { host: "10.0.0.7", port: 4242 },
      ]);
  });

  test("loopback only when there is nothing else, and never more than a ticket holds", () => {
    expect(invitationAddresses({ host: "0.0.0.0", port: 5 }, { lo: machine.lo })).toEqual([
      { host: "127.0.0.1", port: 5 },
    ]);
    expect(invitationAddresses({ host: "0.0.0.0", port: 5 }, {})).toEqual([
      { host: "127.0.0.1", port: 5 },
    ]);
    const many = { eth0: Array.from({ length: 20 }, (_, i) => v4(`10.1.0.${i + 1}`)) };
    expect(invitationAddresses({ host: "0.0.0.0", port: 5 }, many)).toHaveLength(
      MAX_TICKET_ADDRESSES,
    );
    const twice = { a: [v4("10.0.0.1")], b: [v4("10.0.0.1")] };
    expect(invitationAddresses({ host: "0.0.0.0", port: 5 }, twice)).toHaveLength(1);
  });

  test("onlyLoopback: a ticket that works on this machine only", () => {
    expect(
      onlyLoopback([
        { host: "127.0.0.1", port: 1 },
        { host: "::1", port: 1 },
      ]),
    ).toBe(true);
    expect(onlyLoopback([{ host: "localhost", port: 1 }])).toBe(true);
    expect(
      onlyLoopback([
        { host: "127.0.0.1", port: 1 },
        { host: "10.0.0.1", port: 1 },
      ]),
    ).toBe(false);
  });
});
