import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, RELEASE_TARGETS } from "../../scripts/build.ts";
import { fromBinary, type Launcher } from "../helpers/cli.ts";
import { hermeticEnv } from "../helpers/hermetic-env.ts";
import {
  failures,
  headlessRelay,
  jsonChain,
  oneShotSend,
  readmeChain,
  roomsAndIdentity,
  SCENARIO_TIMEOUT_MS,
  shellPipeline,
  stopAll,
} from "./scenarios.ts";

// The compiled executable, built the way `bun run build` builds dist/peerchat, into a
// temporary directory so the test never depends on a stale build.
let dir: string;
let binary: Launcher;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "peerchat-binary-"));
  const path = join(dir, "peerchat");
  // This machine's release target if there is one: the very build `bun run release` ships.
  const host = RELEASE_TARGETS.find((t) => t.target === `bun-${process.platform}-${process.arch}`);
  await compile(path, host?.target);
  binary = fromBinary(path);
}, 120_000);

afterEach(stopAll);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("the compiled binary (bun build --compile)", () => {
  test("runs standalone: prints its version without Bun or the sources", async () => {
    const proc = Bun.spawn([join(dir, "peerchat"), "--version"], {
      cwd: dir,
      env: { PATH: "/nonexistent", ...hermeticEnv() },
      stdout: "pipe",
    });
    expect(await proc.exited).toBe(0);
    expect((await new Response(proc.stdout).text()).trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
  test("the README's three-peer chain", () => readmeChain(binary), SCENARIO_TIMEOUT_MS);
  test("--json events", () => jsonChain(binary), SCENARIO_TIMEOUT_MS);
  test("peerchat send", () => oneShotSend(binary), SCENARIO_TIMEOUT_MS);
  test("failures and exit codes", () => failures(binary), SCENARIO_TIMEOUT_MS);
  test("headless relay", () => headlessRelay(binary), SCENARIO_TIMEOUT_MS);
  test("in a shell pipeline", () => shellPipeline(binary), SCENARIO_TIMEOUT_MS);
  test("rooms and identity", () => roomsAndIdentity(binary), SCENARIO_TIMEOUT_MS);
});
