import { describe, expect, test } from "bun:test";
import { parseEndpoint } from "../../src/cli/address.ts";
import { parseChatArgs, parseSendArgs } from "../../src/cli/args.ts";
import { ConfigError, type ConfigErrorCode } from "../../src/errors.ts";

const configError = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).code;
  }
  throw new Error("expected a ConfigError");
};

describe("chat arguments", () => {
  test("--no-discover turns LAN discovery off", () => {
    expect(parseChatArgs(["--no-discover"]).discover).toBe(false);
    expect(parseChatArgs(["0.0.0.0", "9000"]).discover).toBe(true);
  });

  test("the original program's positional form", () => {
    expect(parseChatArgs(["localhost", "9001", "localhost", "9000"])).toMatchObject({
      host: "localhost",
      port: 9001,
      peers: [{ host: "localhost", port: 9000 }],
    });
  });

  test("defaults: 127.0.0.1:9000, no peers, normal verbosity, the lobby, a week of history on disk, LAN discovery on", () => {
    expect(parseChatArgs([])).toEqual({
      host: "127.0.0.1",
      port: 9000,
      peers: [],
      nick: undefined,
      json: false,
      maxPeers: 64,
      degree: 4,
      verbosity: "normal",
      room: "lobby",
      identityPath: undefined,
      dataDir: undefined,
      ephemeral: false,
      keepDays: 7,
      backlog: undefined,
      discover: true,
    });
  });

  test("history options: --data-dir, --keep, --ephemeral, --backlog, and their mistakes", () => {
    expect(
      parseChatArgs(["--data-dir", "/tmp/h", "--keep", "1.5", "--backlog", "50"]),
    ).toMatchObject({ dataDir: "/tmp/h", keepDays: 1.5, backlog: 50, ephemeral: false });
    expect(parseChatArgs(["--ephemeral"]).ephemeral).toBe(true);
    for (const args of [
      ["--keep", "0"],
      ["--keep", "-1"],
      ["--keep", "week"],
      ["--keep", "3651"],
      ["--backlog", "x"],
      ["--backlog", "10001"],
      ["--data-dir", ""],
      ["--data-dir", "/tmp/h", "--ephemeral"],
    ])
      expect(() => parseChatArgs(args)).toThrow(ConfigError);
  });

  test("--room and --identity; an empty room is refused without echoing the name", () => {
    expect(parseChatArgs(["--room", "our secret", "--identity", "/tmp/id"])).toMatchObject({
      room: "our secret",
      identityPath: "/tmp/id",
    });
    expect(parseChatArgs(["-r", "x"]).room).toBe("x");
    expect(() => parseChatArgs(["--room", ""])).toThrow("--room: the room name is empty");
    let refused: unknown;
    try {
      parseChatArgs(["--room", "s3cret".repeat(60)]);
    } catch (error) {
      refused = error;
    }
    expect((refused as Error).message).not.toContain("s3cret");
    expect(parseSendArgs(["h:1", "t", "--room", "r"]).room).toBe("r");
  });

  test("--peer repeats, -p too, IPv6 in brackets; positional peer comes first", () => {
    const options = parseChatArgs([
      "::",
      "0",
      "h",
      "1",
      "--peer",
      "[::1]:9000",
      "-p",
      "example.org:7",
      "--peer=10.0.0.1:8",
    ]);
    expect(options.host).toBe("::");
    expect(options.port).toBe(0);
    expect(options.peers).toEqual([
      { host: "h", port: 1 },
      { host: "::1", port: 9000 },
      { host: "example.org", port: 7 },
      { host: "10.0.0.1", port: 8 },
    ]);
  });

  test("options", () => {
    expect(
      parseChatArgs(["--nick", "alice", "--json", "--max-peers", "8", "--trace"]),
    ).toMatchObject({
      nick: "alice",
      json: true,
      maxPeers: 8,
      verbosity: "trace",
    });
    expect(parseChatArgs(["-n", "bob", "--quiet"])).toMatchObject({
      nick: "bob",
      verbosity: "quiet",
    });
  });

  test.each([
    [["h", "65536"], "BAD_ADDRESS"],
    [["h", "-1"], "BAD_ARGUMENT"],
    [["h", "1", "peer"], "BAD_ARGUMENT"],
    [["h", "1", "p", "0"], "BAD_ADDRESS"],
    [["a", "1", "b", "2", "c"], "BAD_ARGUMENT"],
    [["--peer", "::1:9000"], "BAD_ADDRESS"],
    [["--peer", "nohost"], "BAD_ADDRESS"],
    [["--nick", ""], "BAD_NICK"],
    [["--nick", "x".repeat(33)], "BAD_NICK"],
    [["--nick", "\u001b[31mred"], "BAD_NICK"],
    [["--max-peers", "0"], "BAD_ARGUMENT"],
    [["--max-peers", "many"], "BAD_ARGUMENT"],
    [["--frobnicate"], "BAD_ARGUMENT"],
    [["--quiet", "--verbose"], "BAD_ARGUMENT"],
  ] as Array<[string[], ConfigErrorCode]>)("%j is refused (%s)", (args, code) => {
    expect(configError(() => parseChatArgs(args))).toBe(code);
  });

  test("a lone port number gets a hint to give the host first", () => {
    try {
      parseChatArgs(["9000"]);
      throw new Error("accepted");
    } catch (error) {
      expect((error as ConfigError).message).toContain("peerchat 127.0.0.1 9000");
    }
  });
});

describe("send arguments", () => {
  test("HOST:PORT TEXT", () => {
    expect(parseSendArgs(["localhost:9000", "hi there", "--nick", "cron"])).toMatchObject({
      peer: { host: "localhost", port: 9000 },
      text: "hi there",
      nick: "cron",
    });
  });
  test("an unquoted message is refused with a hint", () => {
    expect(configError(() => parseSendArgs(["localhost:9000", "hi", "there"]))).toBe(
      "BAD_ARGUMENT",
    );
  });
  test("missing text", () => {
    expect(configError(() => parseSendArgs(["localhost:9000"]))).toBe("BAD_ARGUMENT");
  });
});

test("endpoints", () => {
  expect(parseEndpoint("[fe80::1]:80")).toEqual({ host: "fe80::1", port: 80 });
  expect(parseEndpoint("host.example:65535")).toEqual({ host: "host.example", port: 65535 });
  for (const bad of ["host:", ":80", "host:0", "host:99999", "a b:1", "[::1]"]) {
    expect(configError(() => parseEndpoint(bad))).toBe("BAD_ADDRESS");
  }
});
