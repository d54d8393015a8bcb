import { afterEach, expect, test } from "bun:test";
import { decodeTicket } from "../../src/invite/ticket.ts";
import { NetLab } from "../helpers/net-lab.ts";

// Issue #13, acceptance 2: joining by ticket across namespaces (two hosts on a LAN the
// test builds and removes). LAN discovery stays off (the tests' default), so only the
// ticket can bring the two together. Never skipped: without root, `ip` and `iptables`,
// NetLab.create() throws and this fails.

let lab: NetLab | undefined;
afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
});

test("a ticket from /invite on one host joins a peer on another to its private room; one corrupted character is refused", async () => {
  lab = await NetLab.create();
  await lab.lan("lan", ["H1", "H2"], "10.2.0.0/24");
  const alice = lab.chatPeer("H1", ["0.0.0.0", "9000", "--room", "a secret", "--nick", "alice"]);
  await alice.waitForLine("listening on", 10_000);
  alice.send("/invite");
  const ticket = await alice.waitForLine(/^pc1[a-z2-7]+$/, 5_000);
  const decoded = decodeTicket(ticket);
  if (!decoded.ok) throw new Error(decoded.reason);
  // Listening on every interface: the ticket names the LAN address, and the room.
  expect(decoded.ticket.addresses).toContainEqual({ host: "10.2.0.1", port: 9000 });
  expect(decoded.ticket.room).toBe("a secret");

  // One character changed: refused at once, with the reason, exit 2, no stack.
  const at = 20;
  const wrong = ticket.slice(0, at) + (ticket[at] === "a" ? "b" : "a") + ticket.slice(at + 1);
  const bad = lab.chatPeer("H2", ["join", wrong, "--nick", "mallory"]);
  expect(await bad.exited).toBe(2);
  const said = bad.stderr.join("\n");
  expect(said).toContain("this ticket is damaged");
  expect(said).not.toContain("    at ");

  const bob = lab.chatPeer("H2", ["join", ticket, "0.0.0.0", "9000", "--nick", "bob"]);
  await bob.waitForLine("connected to alice (10.2.0.1:9000)", 10_000);
  bob.send("hello from the other host");
  await alice.waitForLine("<bob> hello from the other host", 5_000);
  alice.send("welcome");
  await bob.waitForLine("<alice> welcome", 5_000);
}, 60_000);
