/**
 * Checks `bun run release` output: every target exists, is an executable of the right
 * format and architecture, matches dist/SHA256SUMS, and the one for this machine runs.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { RELEASE_TARGETS } from "./build.ts";

const dist = join(import.meta.dir, "..", "dist");

/** Magic bytes and machine field that identify each target's executable format. */
function describe(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    const machine = view.getUint16(18, true);
    return machine === 0x3e ? "elf-x64" : machine === 0xb7 ? "elf-arm64" : `elf-${machine}`;
  }
  if (view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    return cpu === 0x01000007 ? "macho-x64" : cpu === 0x0100000c ? "macho-arm64" : `macho-${cpu}`;
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true);
    const machine = view.getUint16(pe + 4, true);
    return machine === 0x8664 ? "pe-x64" : `pe-${machine}`;
  }
  return "unknown";
}

const EXPECTED: Record<string, string> = {
  "bun-linux-x64": "elf-x64",
  "bun-linux-arm64": "elf-arm64",
  "bun-darwin-x64": "macho-x64",
  "bun-darwin-arm64": "macho-arm64",
  "bun-windows-x64": "pe-x64",
};

const sums = new Map(
  (await readFile(join(dist, "SHA256SUMS"), "utf8"))
    .trim()
    .split("\n")
    .map((line) => {
      const [hash, file] = line.split(/\s+/);
      return [file as string, hash as string];
    }),
);

let failed = false;
for (const { target, file } of RELEASE_TARGETS) {
  const bytes = new Uint8Array(await readFile(join(dist, file)));
  const format = describe(bytes);
  const hash = createHash("sha256").update(bytes).digest("hex");
  const ok = format === EXPECTED[target] && sums.get(file) === hash;
  console.log(
    `${ok ? "✓" : "✗ FAILED:"} ${file}: ${format}, ${(bytes.length / 1e6).toFixed(1)} MB, sha256 ${ok ? "matches" : "MISMATCH or wrong format"}`,
  );
  failed ||= !ok;
}

const host = join(
  dist,
  `peerchat-${process.platform === "win32" ? "windows" : process.platform}-${process.arch}${process.platform === "win32" ? ".exe" : ""}`,
);
const run = Bun.spawnSync([host, "--version"]);
const version = run.stdout.toString().trim();
console.log(`${run.exitCode === 0 ? "✓" : "✗ FAILED:"} ${host} --version → ${version}`);
failed ||= run.exitCode !== 0;

// The ARM64 Linux build, run under qemu-user where it is installed: it must not only
// start but talk to the host build over TCP.
const qemu = Bun.which("qemu-aarch64");
const sysroot = "/usr/aarch64-linux-gnu";
if (qemu && (await Bun.file(join(sysroot, "lib", "ld-linux-aarch64.so.1")).exists())) {
  const arm = [qemu, "-L", sysroot, join(dist, "peerchat-linux-arm64")];
  const listener = Bun.spawn([host, "127.0.0.1", "0", "--json", "--nick", "x64"], {
    stdin: "pipe",
    stdout: "pipe",
  });
  const reader = listener.stdout.getReader();
  const decoder = new TextDecoder();
  let out = "";
  const readUntil = async (needle: string) => {
    const deadline = Date.now() + 30_000;
    while (!out.includes(needle) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += decoder.decode(value, { stream: true });
    }
    return out.includes(needle);
  };
  await readUntil('"type":"ready"');
  const port = /"port":(\d+)/.exec(out)?.[1];
  const send = Bun.spawnSync(
    [...arm, "send", `127.0.0.1:${port}`, "hello from arm64", "--nick", "arm64"],
    { timeout: 60_000 },
  );
  const heard = send.exitCode === 0 && (await readUntil("hello from arm64"));
  listener.kill();
  console.log(
    `${heard ? "✓" : "✗ FAILED:"} peerchat-linux-arm64 (qemu) sent a message to the x64 build`,
  );
  failed ||= !heard;
} else {
  console.log(
    "note peerchat-linux-arm64 not run: qemu-user and libc6-arm64-cross are not installed",
  );
}

if (failed) process.exit(1);
