import { afterEach, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseLock } from "../../src/cli/file-lock.ts";
import { defaultIdentityPath, openIdentity, writeKeyFile } from "../../src/cli/identity-file.ts";
import { ConfigError } from "../../src/errors.ts";
import { AS_ROOT, asNobody, readableBundle } from "../helpers/as-nobody.ts";

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
  expect(parseLock(readFileSync(`${path}.lock`, "utf8"))?.pid).toBe(process.pid);
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

test("a write that fails (a full disk) leaves no key file behind; the next start creates one", () => {
  const dir = tempDir();
  const path = join(dir, "identity");
  const full = Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
  });
  expect(() =>
    writeKeyFile(path, "-----BEGIN PRIVATE KEY-----", () => {
      throw full;
    }),
  ).toThrow("ENOSPC");
  expect(readdirSync(dir)).toEqual([]);
  const opened = openIdentity(path);
  expect(opened.status).toBe("created");
  opened.release();
});

test("an empty key file (a write cut short by an older version) is replaced, not refused", () => {
  const path = join(tempDir(), "identity");
  writeFileSync(path, "");
  const opened = openIdentity(path);
  expect(opened.status).toBe("created");
  expect(readFileSync(path, "utf8")).toStartWith("-----BEGIN PRIVATE KEY-----");
  opened.release();
});

test("a key that is not text a key: the message says so in words, not OpenSSL's codes", () => {
  const path = join(tempDir(), "identity");
  writeFileSync(path, "hello\n");
  expect(() => openIdentity(path)).toThrow(
    `${path} is not a peerchat identity (its contents are not a PEM private key); move it away to create a new one`,
  );
});

test("a key this user may not read: reported as unreadable, with no advice to throw it away", async () => {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const path = join(dir, "identity");
  openIdentity(path).release();
  expect(existsSync(path)).toBe(true);
  // The key is root's (mode 0600); root reads through modes, so the check runs as nobody.
  if (!AS_ROOT) chmodSync(path, 0o000);
  const script = await readableBundle(
    "identity check",
    `
    import { openIdentity } from ${JSON.stringify(join(import.meta.dir, "../../src/cli/identity-file.ts"))};
    try { openIdentity(process.argv[2]); console.log("opened"); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
  );
  const proc = Bun.spawn(asNobody([process.execPath, script, path]), {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, HOME: dir },
  });
  const out = (await new Response(proc.stdout).text()).trim();
  await proc.exited;
  const result = JSON.parse(out) as { code: string; message: string };
  expect(result.code).toBe("BAD_IDENTITY");
  expect(result.message).toBe(
    `cannot read the identity file ${path} (permission denied: check its owner and mode)`,
  );
});
