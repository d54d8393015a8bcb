import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mentions, nickColour } from "../../src/cli/colour.ts";
import { SettingsFile } from "../../src/cli/settings-file.ts";

const ID = "ab".repeat(32);

describe("SettingsFile", () => {
  test("remembers the nick, the ignore list and typed lines; private to the user", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "peerchat-settings-")), "peerchat");
    const file = new SettingsFile(dir);
    expect(file.load()).toEqual({ ignored: [] });
    expect(file.loadInputHistory()).toEqual([]);
    file.save({ nick: "alice", ignored: [ID] });
    file.saveInputHistory(["one", "/nick alice", "two"]);
    const again = new SettingsFile(dir);
    expect(again.load()).toEqual({ nick: "alice", ignored: [ID] });
    expect(again.loadInputHistory()).toEqual(["one", "/nick alice", "two"]);
    expect(statSync(join(dir, "input-history")).mode & 0o777).toBe(0o600);
    // Written by rename: no temporary file left behind.
    expect(readdirSync(dir).sort()).toEqual(["input-history", "settings.json"]);
  });

  test.each([
    ["not JSON", "{nick: alice"],
    ["not an object", "[1,2]"],
    [
      "a nick with a control character and ids that are not ids",
      JSON.stringify({ nick: "a\u0007", ignored: ["xyz", 5, ID.toUpperCase()] }),
    ],
  ])("a mangled settings file (%s) counts as empty", (_name, text) => {
    const dir = mkdtempSync(join(tmpdir(), "peerchat-settings-"));
    writeFileSync(join(dir, "settings.json"), text);
    expect(new SettingsFile(dir).load()).toEqual({ ignored: [] });
  });
});

describe("colour", () => {
  test("a mention is the nick as a word, in any case", () => {
    expect(mentions("hey Bob, look", "bob")).toBe(true);
    expect(mentions("@bob!", "bob")).toBe(true);
    expect(mentions("bobby is here", "bob")).toBe(false);
    expect(mentions("a.b is a nick", "a.b")).toBe(true);
    expect(mentions("axb is not", "a.b")).toBe(false);
  });

  test("an identity keeps its colour", () => {
    expect(nickColour(ID)).toBe(nickColour(ID));
    const colours = new Set(
      Array.from({ length: 64 }, (_, i) => nickColour(i.toString(16).padStart(4, "0").repeat(16))),
    );
    expect(colours.size).toBeGreaterThan(6);
  });
});
