/**
 * `bun run fuzz`: the seeded mutation fuzzer against a live peer, at any size.
 *
 *   bun run fuzz                                   1,000,000 cases, seed 1
 *   bun run fuzz -- --cases 2000000 --seed 7       bigger, another seed
 *   bun run fuzz -- --frames 50000 --message1 0    one surface only
 *   bun run fuzz -- --mix deep=10,structure=40,bytes=35,both=15
 *                                                  frames mostly broken rather than
 *                                                  hostile-but-valid (slower: each
 *                                                  refusal costs a handshake)
 *   bun run fuzz -- --verbose                      the victim logs at debug level (the
 *                                                  oracle then reads every line it writes)
 *   bun run fuzz -- --seed 7 --replay frames:1200,1201,1202 --verbose
 *                                                  those cases alone, in order on one
 *                                                  connection: each one's outcome and
 *                                                  the victim's log
 *
 * The victim is a real `peerchat` process (from source), attacked on three surfaces:
 * frames inside the secure channel, Noise message 1, and Noise message 3 (with the
 * first transport message). See test/fuzz/campaign.ts for what is checked. Exits 1 if
 * the oracle caught anything, printing the cases to replay.
 */

import { parseArgs } from "node:util";
import {
  type CampaignReport,
  processedTotal,
  runCampaign,
  SURFACES,
  type Surface,
} from "../test/fuzz/campaign.ts";
import { describeCase, FRAME_MODES } from "../test/fuzz/corpus.ts";

const { values: flags } = parseArgs({
  args: process.argv.slice(2),
  options: {
    cases: { type: "string" },
    seed: { type: "string" },
    frames: { type: "string" },
    message1: { type: "string" },
    message3: { type: "string" },
    workers: { type: "string" },
    replay: { type: "string" },
    batch: { type: "string" },
    mix: { type: "string" },
    verbose: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});

if (flags.help) {
  console.log(`usage: bun run fuzz -- [--cases N] [--seed S] [--frames N] [--message1 N] [--message3 N]
                      [--workers F,M1,M3] [--batch N] [--mix deep=W,structure=W,bytes=W,both=W]
                      [--verbose] [--replay SURFACE:I,J,...]`);
  process.exit(0);
}

const seed = Number(flags.seed ?? process.env.TEST_SEED ?? 1);
const total = Number(flags.cases ?? 1_000_000);
// Handshake cases cost a connection each: most of a run goes inside the channel.
const share: Record<Surface, number> = { frames: 0.86, message1: 0.1, message3: 0.04 };
const cases = Object.fromEntries(
  SURFACES.map((s) => [s, Number(flags[s] ?? Math.round(total * share[s]))]),
) as Record<Surface, number>;
const [wf, w1, w3] = (flags.workers ?? "8,4,2").split(",").map(Number);
let workers: Record<Surface, number> = { frames: wf ?? 8, message1: w1 ?? 4, message3: w3 ?? 2 };
let indices: Partial<Record<Surface, number[]>> | undefined;
if (flags.replay) {
  const [surface, list] = flags.replay.split(":") as [Surface, string | undefined];
  if (!SURFACES.includes(surface) || !list)
    throw new Error(`--replay SURFACE:I,J,… (got ${flags.replay})`);
  indices = { [surface]: list.split(",").map(Number) };
  for (const s of SURFACES) cases[s] = s === surface ? (indices[surface] as number[]).length : 0;
  workers = { frames: 0, message1: 0, message3: 0, [surface]: 1 };
}

const frameModes = { ...FRAME_MODES };
for (const part of flags.mix?.split(",") ?? []) {
  const [mode, weight] = part.split("=");
  if (!(mode && mode in frameModes) || Number.isNaN(Number(weight)))
    throw new Error(
      `--mix takes ${Object.keys(FRAME_MODES).join(", ")} with weights (got ${part})`,
    );
  frameModes[mode as keyof typeof FRAME_MODES] = Number(weight);
}

const fmt = (n: number) => n.toLocaleString("en-US");
const line = (r: CampaignReport) => {
  const seconds = r.wallMs / 1000;
  const parts = SURFACES.filter((s) => cases[s] > 0).map((s) => {
    const st = r.surfaces[s];
    return `${s} ${fmt(st.processed)}/${fmt(cases[s])} (${st.connections} conns, ${Math.round((100 * st.closed) / Math.max(1, st.processed))}% closed)`;
  });
  return `[${seconds.toFixed(1)} s] ${parts.join(" · ")} · ${fmt(Math.round(processedTotal(r) / seconds))} cases/s · victim RSS peak ${fmt(r.rssKiB.peak)} KiB`;
};

console.log(
  `peerchat fuzz: seed ${seed} (TEST_SEED=${seed} or --seed ${seed} replays it), ${SURFACES.map((s) => `${s} ${fmt(cases[s])}`).join(", ")}; frames mix ${JSON.stringify(frameModes)}`,
);
const report = await runCampaign({
  seed,
  cases,
  workers,
  verbose: flags.verbose === true,
  frameModes,
  ...(flags.batch ? { batch: Number(flags.batch) } : {}),
  ...(indices ? { indices, casesPerConnection: Number.MAX_SAFE_INTEGER } : {}),
  progressEveryMs: 2000,
  onProgress: (r) => console.log(line(r)),
  // A replay shows each case, its outcome, and what the victim logged.
  ...(indices
    ? {
        onStderr: (l: string) => console.log(`  victim: ${l}`),
        onCase: (surface, c, outcome) =>
          console.log(
            `  ${surface} #${c.index} ${outcome}: ${describeCase(c)} = ${Buffer.from(c.bytes.subarray(0, 200)).toString("hex")}${c.bytes.length > 200 ? "…" : ""}`,
          ),
      }
    : {}),
});

console.log(line(report));
console.log("\nby seed (processed, % after which the victim closed the connection):");
for (const s of SURFACES) {
  for (const [name, v] of [...report.surfaces[s].bySeed].sort(
    (a, b) => b[1].processed - a[1].processed,
  ))
    console.log(
      `  ${s.padEnd(8)} ${name.padEnd(20)} ${fmt(v.processed).padStart(10)}  ${Math.round((100 * v.closed) / v.processed)}%`,
    );
}
console.log("\nby mutation:");
const mutations = new Map<string, { processed: number; closed: number }>();
for (const s of SURFACES)
  for (const [k, v] of report.surfaces[s].byMutation) {
    const m = mutations.get(k) ?? { processed: 0, closed: 0 };
    m.processed += v.processed;
    m.closed += v.closed;
    mutations.set(k, m);
  }
for (const [name, v] of [...mutations].sort((a, b) => b[1].processed - a[1].processed))
  console.log(
    `  ${name.padEnd(20)} ${fmt(v.processed).padStart(10)}  ${Math.round((100 * v.closed) / v.processed)}%`,
  );
const st = (s: Surface) => report.surfaces[s];
console.log(`
summary, seed ${seed}:
  cases processed   ${fmt(processedTotal(report))} in ${(report.wallMs / 1000).toFixed(1)} s (${SURFACES.map((s) => `${s} ${fmt(st(s).processed)}`).join(", ")})
  transmissions     ${fmt(SURFACES.reduce((n, s) => n + st(s).sent, 0))} (cases behind a fatal one are sent again on a new connection)
  connections       ${fmt(SURFACES.reduce((n, s) => n + st(s).connections, 0))} (refused before a case: ${SURFACES.reduce((n, s) => n + st(s).refused, 0)})
  relay checks      ${report.relayChecks} passed (alice ⇄ bob through the victim)
  fresh peer join   ${report.freshJoin}
  victim RSS        ${fmt(report.rssKiB.before)} KiB before, ${fmt(report.rssKiB.peak)} KiB peak, ${fmt(report.rssKiB.after)} KiB after
  victim exit       ${report.victimExit} on SIGTERM (0 = graceful); ${fmt(report.stderrLines)} stderr lines
  anomalies         ${report.anomalies.length}`);
for (const a of report.anomalies) {
  console.log(`\nANOMALY at ${(a.at / 1000).toFixed(1)} s: ${a.what}`);
  for (const c of a.cases) console.log(`  ${c}`);
}
process.exit(report.anomalies.length === 0 && report.victimExit === 0 ? 0 : 1);
