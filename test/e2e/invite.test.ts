import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeTicket, encodeTicket } from "../../src/invite/ticket.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";

/** Time limit for one test: it starts up to three processes. */
const TIMEOUT_MS = 30_000;

const running: CliProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

// Each peer its own identity file: two peers sharing one would make the second temporary.
const keys = mkdtempSync(join(tmpdir(), "peerchat-invite-keys-"));
afterAll(() => rmSync(keys, { recursive: true, force: true }));

let peers = 0;
function start(args: string[]): CliProcess {
  const identity = join(keys, `identity-${++peers}`);
  const p = new CliProcess(fromSource, [...args, "--ephemeral", "--identity", identity]);
  running.push(p);
  return p;
}

const TICKET_LINE = /^pc1[a-z2-7]+$/;
const WARNING =
  "anyone holding this ticket can join this room and read what is said in it: give it only to people you would let in";
const chatLine = (nick: string, text: string) =>
  new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] <${nick}> ${text}$`);

/** A peer in the room "secret" on 127.0.0.1, and the ticket its /invite printed. */
async function invitingPeer(): Promise<{ alice: CliProcess; port: number; ticket: string }> {
  const alice = start(["127.0.0.1", "0", "--room", "secret", "--nick", "alice"]);
  const port = await listenPortOf(alice);
  alice.send("/invite");
  const ticket = await alice.waitForLine(TICKET_LINE);
  return { alice, port, ticket };
}

describe("invitations from the CLI (bun src/bin.ts)", () => {
  test(
    "invite - a ticket's addresses are alternatives: the one that answers is joined, the dead one is neither redialled nor complained of",
    async () => {
      const { alice, port, ticket } = await invitingPeer();
      const decoded = decodeTicket(ticket);
      if (!decoded.ok) throw new Error(decoded.reason);
      // Nothing listens on port 1: refused at once, and then redialled if it stayed pinned.
      const dead = { host: "127.0.0.1", port: 1 };
      const twoAddresses = encodeTicket({
        ...decoded.ticket,
        addresses: [dead, { host: "127.0.0.1", port }],
      });
      const bob = start(["join", twoAddresses, "--nick", "bob"]);
      await bob.waitForLine(`connected to alice (127.0.0.1:${port})`);
      bob.send("here");
      await alice.waitForLine(chatLine("bob", "here"));
      // Past the first redial's back-off (1 s): still not a word of the dead address.
      await Bun.sleep(2_500);
      const said = [...bob.stdout, ...bob.stderr].join("\n");
      expect(said).not.toContain("127.0.0.1:1 ");
      expect(said).not.toContain("127.0.0.1:1:");
      expect(said).not.toContain("could not reach");
    },
    TIMEOUT_MS,
  );

  test(
    "invite - /invite prints the ticket alone on its line, then the warning",
    async () => {
      const { alice, port, ticket } = await invitingPeer();
      const at = alice.stdout.indexOf(ticket);
      expect(alice.stdout[at + 1]).toEndWith(`* ${WARNING}`);
      // Listening on loopback: the ticket says it works on this computer only.
      await alice.waitForLine("the ticket works on this computer only");
      const decoded = decodeTicket(ticket);
      if (!decoded.ok) throw new Error(decoded.reason);
      expect(decoded.ticket.room).toBe("secret");
      expect(decoded.ticket.addresses).toEqual([{ host: "127.0.0.1", port }]);
      const ready = /listening on/.exec(alice.stdout[0] ?? "");
      expect(ready).not.toBeNull();
      // Nothing on screen names the room: the ticket holds it, but only encoded.
      expect(alice.stdout.join("\n")).not.toContain("secret");
    },
    TIMEOUT_MS,
  );

  test(
    "invite - peerchat join TICKET joins the room on a free port, and the two chat both ways",
    async () => {
      const { alice, port, ticket } = await invitingPeer();
      const bob = start(["join", ticket, "--nick", "bob"]);
      const bobPort = await listenPortOf(bob);
      expect(bobPort).not.toBe(port);
      await bob.waitForLine(`connected to alice (127.0.0.1:${port})`);
      await alice.waitForLine(`bob connected from 127.0.0.1:`);
      bob.send("hello from bob");
      await alice.waitForLine(chatLine("bob", "hello from bob"));
      alice.send("hello from alice");
      await bob.waitForLine(chatLine("alice", "hello from alice"));
      // The room is "secret": a peer of the lobby is not let in where bob was.
      const outsider = start(["127.0.0.1", "0", "127.0.0.1", String(port), "--nick", "eve"]);
      await outsider.waitForLog(`could not join 127.0.0.1:${port}`);
    },
    TIMEOUT_MS,
  );

  test(
    "invite - --json: the ticket is an invitation event",
    async () => {
      const carol = start(["127.0.0.1", "0", "--json"]);
      const port = await listenPortOf(carol);
      carol.send("/invite");
      const line = await carol.waitForLine('"type":"invitation"');
      const event = JSON.parse(line) as { ticket: string; notes: string[] };
      expect(event.notes[0]).toBe(WARNING);
      const decoded = decodeTicket(event.ticket);
      expect(decoded.ok && decoded.ticket.room).toBe("lobby");
      expect(decoded.ok && decoded.ticket.addresses).toEqual([{ host: "127.0.0.1", port }]);
    },
    TIMEOUT_MS,
  );

  test(
    "invite - a damaged ticket is exit 2 with the reason, no stack, the ticket not echoed",
    async () => {
      const { ticket } = await invitingPeer();
      const i = 20;
      const damaged = ticket.slice(0, i) + (ticket[i] === "a" ? "b" : "a") + ticket.slice(i + 1);
      const join = start(["join", damaged]);
      expect(await join.exited).toBe(2);
      const stderr = join.stderr.join("\n");
      expect(stderr).toContain(
        "peerchat: this ticket is damaged: a character is wrong or missing (its checksum does not match); copy it again",
      );
      expect(stderr).not.toContain("    at ");
      expect(stderr).not.toContain("unexpected error");
      expect(stderr).not.toContain(damaged.slice(3));
      expect(join.stdout).toEqual([]);

      const notATicket = start(["join", "https://example.com/"]);
      expect(await notATicket.exited).toBe(2);
      await notATicket.waitForLog("peerchat: not a peerchat ticket (it should start with pc1)");
    },
    TIMEOUT_MS,
  );

  test(
    "invite - --room with a ticket is a usage error (exit 2)",
    async () => {
      const { ticket } = await invitingPeer();
      const join = start(["join", ticket, "--room", "secret"]);
      expect(await join.exited).toBe(2);
      await join.waitForLog("--room cannot go with a ticket");
      await join.waitForLog("usage: peerchat");
      expect(join.stdout).toEqual([]);
    },
    TIMEOUT_MS,
  );
});
