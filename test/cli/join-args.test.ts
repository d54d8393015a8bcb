import { describe, expect, test } from "bun:test";
import { DEFAULT_HOST, parseJoinArgs } from "../../src/cli/args.ts";
import { ConfigError } from "../../src/errors.ts";
import { encodeTicket } from "../../src/invite/ticket.ts";

const TICKET = encodeTicket({
  room: "our secret phrase",
  nodeId: new Uint8Array(32).fill(7),
  addresses: [
    { host: "192.168.1.20", port: 9000 },
    { host: "127.0.0.1", port: 9000 },
  ],
});

const configError = (fn: () => unknown): ConfigError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
};

describe("join arguments", () => {
  test("the ticket's room, every address of it pinned, any free port on the default host", () => {
    expect(parseJoinArgs([TICKET])).toMatchObject({
      host: DEFAULT_HOST,
      port: 0,
      room: "our secret phrase",
      peers: [
        { host: "192.168.1.20", port: 9000 },
        { host: "127.0.0.1", port: 9000 },
      ],
      degree: 4,
      ephemeral: false,
    });
  });

  test("HOST and PORT to listen on, and the chat's options, as for the chat", () => {
    expect(
      parseJoinArgs([
        TICKET,
        "0.0.0.0",
        "9100",
        "--nick",
        "bob",
        "--json",
        "--ephemeral",
        "--peer",
        "10.0.0.9:1",
      ]),
    ).toMatchObject({
      host: "0.0.0.0",
      port: 9100,
      nick: "bob",
      json: true,
      ephemeral: true,
      peers: [
        { host: "192.168.1.20", port: 9000 },
        { host: "127.0.0.1", port: 9000 },
        { host: "10.0.0.9", port: 1 },
      ],
    });
  });

  test("--room with a ticket is a usage error: the ticket names the room", () => {
    for (const flag of ["--room", "-r"])
      expect(configError(() => parseJoinArgs([TICKET, flag, "other"])).code).toBe("BAD_ARGUMENT");
  });

  test("a damaged ticket is BAD_TICKET, its reason not quoting the ticket", () => {
    const damaged = `${TICKET.slice(0, 20)}${TICKET[20] === "a" ? "b" : "a"}${TICKET.slice(21)}`;
    const error = configError(() => parseJoinArgs([damaged]));
    expect(error.code).toBe("BAD_TICKET");
    expect(error.message).not.toContain(TICKET.slice(3, 20));
    expect(configError(() => parseJoinArgs(["hello"])).code).toBe("BAD_TICKET");
  });

  test("no ticket, too many arguments, a lone port, unknown options", () => {
    expect(configError(() => parseJoinArgs([])).code).toBe("BAD_ARGUMENT");
    expect(configError(() => parseJoinArgs([TICKET, "h", "1", "x"])).code).toBe("BAD_ARGUMENT");
    expect(configError(() => parseJoinArgs([TICKET, "9001"])).message).toContain(
      "peerchat join TICKET 127.0.0.1 9001",
    );
    expect(configError(() => parseJoinArgs([TICKET, "--bogus"])).code).toBe("BAD_ARGUMENT");
  });
});
