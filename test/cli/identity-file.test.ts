import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultIdentityPath, openIdentity } from "../../src/cli/identity-file.ts";
import { ConfigError } from "../../src/errors.ts";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "peerchat-identity-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test("the default path follows XDG_CONFIG_HOME, else ~/.config", () => {
  expect(defaultIdentityPath({ XDG_CONFIG_HOME: "/x", HOME: "/h" })).toBe("/x/peerchat/identity");
  expect(defaultIdentityPath({ HOME: "/h" })).toBe("/h/.config/peerchat/identity");
});

test("created on first run with mode 0600, then loaded: the same key", () => {
  const path = join(tempDir(), "nested", "identity");
  const first = openIdentity(path);
  expect(first.status).toBe("created");
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(statSync(join(path, "..")).mode & 0o777).toBe(0o700);
  expect(readFileSync(path, "utf8")).toStartWith("-----BEGIN PRIVATE KEY-----");
  first.release();
  const again = openIdentity(path);
  expect(again.status).toBe("loaded");
  expect(again.identity.publicKey).toEqual(first.identity.publicKey);
  expect(again.warnings).toEqual([]);
  again.release();
});

test("a second peer while the first runs gets a temporary identity, not the same node id", () => {
  const path = join(tempDir(), "identity");
  const first = openIdentity(path);
  // The lock names a live process (this one is excluded, so pretend to be our parent).
  writeFileSync(`${path}.lock`, `${process.ppid}\n`);
  const second = openIdentity(path);
  expect(second.status).toBe("in-use");
  expect(second.status === "in-use" && second.pid).toBe(process.ppid);
  expect(second.identity.publicKey).not.toEqual(first.identity.publicKey);
});

test("a lock left by a dead process is taken over; release removes it", () => {
  const path = join(tempDir(), "identity");
  openIdentity(path).release();
  // No process has pid 2^22 + 1 (above Linux's default pid_max).
  writeFileSync(`${path}.lock`, "4194305\n");
  const opened = openIdentity(path);
  expect(opened.status).toBe("loaded");
  expect(readFileSync(`${path}.lock`, "utf8").trim()).toBe(String(process.pid));
  opened.release();
  expect(() => statSync(`${path}.lock`)).toThrow();
});

test("a file others can read is used, with a warning; a corrupt one is refused", () => {
  const path = join(tempDir(), "identity");
  openIdentity(path).release();
  const { chmodSync } = require("node:fs") as typeof import("node:fs");
  chmodSync(path, 0o644);
  const loose = openIdentity(path);
  expect(loose.warnings).toEqual([`${path} can be read by other users; chmod 600 it`]);
  loose.release();
  writeFileSync(path, "not a key");
  let error: unknown;
  try {
    openIdentity(path);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).code).toBe("BAD_IDENTITY");
  expect((error as Error).message).toContain(path);
});
