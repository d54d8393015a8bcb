/**
 * Builds standalone executables with `bun build --compile`.
 *
 *   bun run build              dist/peerchat, for this machine
 *   bun run release            dist/peerchat-<os>-<arch>[.exe] for every release target,
 *                              plus dist/SHA256SUMS
 *   bun scripts/build.ts --outfile PATH   the host binary somewhere else (used by tests)
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";

/** Release targets: Bun's target name and the file name we ship. */
export const RELEASE_TARGETS = [
  { target: "bun-linux-x64", file: "peerchat-linux-x64" },
  { target: "bun-linux-arm64", file: "peerchat-linux-arm64" },
  { target: "bun-darwin-x64", file: "peerchat-darwin-x64" },
  { target: "bun-darwin-arm64", file: "peerchat-darwin-arm64" },
  { target: "bun-windows-x64", file: "peerchat-windows-x64.exe" },
] as const;

const root = join(import.meta.dir, "..");
const entry = join(root, "src", "bin.ts");

/** Compiles one executable; throws with Bun's output if it fails. */
export async function compile(outfile: string, target?: string): Promise<void> {
  await mkdir(dirname(outfile), { recursive: true });
  const args = [process.execPath, "build", "--compile", "--minify", entry, "--outfile", outfile];
  if (target) args.push(`--target=${target}`);
  const proc = Bun.spawn(args, { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0)
    throw new Error(`bun build ${target ?? "(host)"} failed (${code}):\n${out}${err}`);
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { release: { type: "boolean" }, outfile: { type: "string" } },
    strict: true,
  });
  const dist = join(root, "dist");
  if (values.release) {
    const sums: string[] = [];
    for (const { target, file } of RELEASE_TARGETS) {
      const outfile = join(dist, file);
      const started = performance.now();
      await compile(outfile, target);
      const size = Bun.file(outfile).size;
      sums.push(`${await sha256(outfile)}  ${file}`);
      console.log(
        `${file}  ${(size / 1e6).toFixed(1)} MB  ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    await writeFile(join(dist, "SHA256SUMS"), `${sums.join("\n")}\n`);
    console.log(`${basename(dist)}/SHA256SUMS written`);
  } else {
    const outfile = values.outfile ?? join(dist, "peerchat");
    await compile(outfile);
    console.log(`${outfile}  ${(Bun.file(outfile).size / 1e6).toFixed(1)} MB`);
  }
}
