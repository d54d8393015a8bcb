/**
 * A fuzzing campaign against a live peer: a real CLI process (the victim) with two
 * honest in-process neighbours linked only through it, attacked on three surfaces at
 * once by mutated cases from corpus.ts:
 *
 * - `frames`: inside an established secure channel (rawConnect, a valid HELLO), batches
 *   of mutated frames, each followed by a probe PING; when the victim closes the
 *   connection, a new one takes the unprocessed cases;
 * - `message1`: plain TCP, a mutated Noise message 1 as the first bytes;
 * - `message3`: a real handshake up to message 2, then a mutated message 3 (its bytes,
 *   or the HELLO and signature it carries) or a mutated first transport message.
 *
 * A case counts once the victim has provably read it: its probe was answered, or it is
 * the case right after the last answered probe on a connection the victim closed, or
 * (handshake surfaces) the victim closed or answered after it. Cases the victim never
 * read (behind a fatal one) go out again on the next connection.
 *
 * The oracle: the victim stays alive; its stderr shows no error-level line, no stack,
 * nothing "unexpected", "unhandled", "TypeError" or "RangeError"; every stdout line is
 * JSON and no error event says "internal error"; every probe is answered or the
 * connection closed (no stall); the honest neighbours keep their links to it and
 * exchange chat through it during and after the campaign; and a fresh honest peer can
 * still join it.
 */
import type { ChatMessage } from "../../src/node/delivery.ts";
import type { PeerDown } from "../../src/node/node-events.ts";
import { FrameType } from "../../src/protocol/constants.ts";
import { encodePing } from "../../src/protocol/control.ts";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import { encodeHello } from "../../src/protocol/hello.ts";
import { type RunningPeer, startPeer } from "../../src/start-peer.ts";
import { CliProcess, fromSource, listenPortOf } from "../helpers/cli.ts";
import { testLogger } from "../helpers/logger.ts";
import { type RawClient, rawConnect } from "../helpers/raw-client.ts";
import { waitFor } from "../helpers/wait-for.ts";
import {
  AuthorPool,
  type CaseEnv,
  describeCase,
  encodeFields,
  type FRAME_MODES,
  type FuzzCase,
  frameCase,
  helloPayloadFields,
  message1Case,
  message3Plan,
  mutatedHelloPayload,
  noiseFramed,
  paddingRandom,
  Stream,
  transportPlaintext,
} from "./corpus.ts";
import { LengthTracker } from "./framing.ts";
import { concatBytes, fastRandomBytes, mutateBytes } from "./mutators.ts";
import { PlainConnection } from "./plain-connection.ts";

export type Surface = "frames" | "message1" | "message3";
export const SURFACES: readonly Surface[] = ["frames", "message1", "message3"];

/** How big a campaign is and how it reports. */
export interface CampaignOptions {
  readonly seed: number;
  /** Cases to process, per surface. */
  readonly cases: Readonly<Record<Surface, number>>;
  /** Concurrent connections, per surface. */
  readonly workers?: Readonly<Record<Surface, number>>;
  /** Run the victim with --verbose instead of --quiet. */
  readonly verbose?: boolean;
  /** Honest chat through the victim this often during the campaign. */
  readonly relayCheckEveryMs?: number;
  readonly progressEveryMs?: number;
  readonly onProgress?: (report: CampaignReport) => void;
  /** Frames cases per connection before a fresh one, even if the victim keeps it. */
  readonly casesPerConnection?: number;
  /** Frames cases per write (each with its probe). */
  readonly batch?: number;
  /** How frames cases are made (corpus.ts FRAME_MODES by default). */
  readonly frameModes?: Readonly<Record<keyof typeof FRAME_MODES, number>>;
  /** Replay: exactly these case indices, in this order, instead of 0, 1, 2… */
  readonly indices?: Partial<Readonly<Record<Surface, readonly number[]>>>;
  /** How long the victim may take to answer a probe or close (default 15 s). */
  readonly stallMs?: number;
  /** Sees the victim once it listens (tests of the oracle sabotage it). */
  readonly onVictim?: (victim: CliProcess) => void;
  /** Sees every line the victim writes to stderr. */
  readonly onStderr?: (line: string) => void;
  /** Sees every processed case and its outcome. */
  readonly onCase?: (surface: Surface, c: FuzzCase, outcome: Outcome) => void;
}

/** What the victim did after a case. */
export type Outcome = "survived" | "closed" | "answered";

/** Counters of one surface. */
export interface SurfaceStats {
  /** Cases the victim provably read. */
  processed: number;
  /** …after which the connection stayed up (frames: the probe was answered). */
  survived: number;
  /** …after which the victim closed the connection. */
  closed: number;
  /** …after which the victim answered (handshake surfaces: message 2, a transport message). */
  answered: number;
  /** Case transmissions, resends of unread cases included. */
  sent: number;
  connections: number;
  /** Connections the victim closed before any case could be sent (at its cap, say). */
  refused: number;
  /** Processed and closed, per seed and per mutation. */
  readonly bySeed: Map<string, { processed: number; closed: number }>;
  readonly byMutation: Map<string, { processed: number; closed: number }>;
}

/** Something the oracle caught, with the cases that may have caused it. */
export interface Anomaly {
  readonly what: string;
  /** Cases in flight on the connection concerned (or on every open one), described. */
  readonly cases: readonly string[];
  readonly at: number;
}

export interface CampaignReport {
  readonly seed: number;
  wallMs: number;
  readonly surfaces: Record<Surface, SurfaceStats>;
  readonly anomalies: Anomaly[];
  relayChecks: number;
  /** The victim's resident memory: before, highest seen during, and after the campaign. */
  rssKiB: { before: number; peak: number; after: number };
  /** The victim's exit status when stopped with SIGTERM (0: graceful); null while running. */
  victimExit: number | null;
  /** A fresh honest peer joined the victim after the campaign. */
  freshJoin: string;
  /** Victim stderr lines (warnings for every refused connection, with --quiet). */
  stderrLines: number;
}

/** Total cases processed over every surface. */
export function processedTotal(report: CampaignReport): number {
  return SURFACES.reduce((n, s) => n + report.surfaces[s].processed, 0);
}

/**
 * Output that means a bug: an error-level log line (the node logs its own exceptions so),
 * "internal error" (ERROR 8), anything unexpected, unhandled or uncaught, a JavaScript
 * error name, a stack frame, Bun's crash report. A warning for a refused connection is
 * expected and is not matched: it starts `[time] warn:`.
 */
const BAD_STDERR = [
  /unexpected error/i,
  /unhandled/i,
  /uncaught/i,
  /TypeError|RangeError|ReferenceError|SyntaxError/,
  /internal error/i,
  /\[ERROR 8 /,
  /^\[[\d:.]+\] (error|fatal):/,
  /^error:/,
  /^\w*Error: /,
  /^\s+at .*[:(]/,
  /^Bun v\d/,
  /panic|segmentation fault|Bun has crashed/i,
];

/** True for a line of the victim's stderr that the oracle counts as a bug. */
export function isBadStderrLine(line: string): boolean {
  return BAD_STDERR.some((p) => p.test(line));
}

/** Stall: by default, the victim neither answered a probe nor closed within this long. */
const STALL_MS = 15_000;
/** A tampered transport message must be refused (the connection closed) within this long. */
const TAMPER_CLOSE_MS = 5_000;
/** Connections remembered for blaming (log lines can trail the close a little). */
const MAX_TRACKED_CONNECTIONS = 4096;
/** Cases remembered per connection: the last ones are those that matter. */
const MAX_CASES_PER_RECORD = 32;

function newStats(): SurfaceStats {
  return {
    processed: 0,
    survived: 0,
    closed: 0,
    answered: 0,
    sent: 0,
    connections: 0,
    refused: 0,
    bySeed: new Map(),
    byMutation: new Map(),
  };
}

function tally(stats: SurfaceStats, c: FuzzCase, outcome: Outcome) {
  stats.processed++;
  stats[outcome]++;
  const closed = outcome === "closed" ? 1 : 0;
  const bump = (map: SurfaceStats["bySeed"], key: string) => {
    const entry = map.get(key) ?? { processed: 0, closed: 0 };
    entry.processed++;
    entry.closed += closed;
    map.set(key, entry);
  };
  bump(stats.bySeed, c.seed);
  for (const m of new Set(c.mutations)) bump(stats.byMutation, m.replace(/\(fixed\)$/, ""));
}

/**
 * Runs a campaign and returns its report; never throws for what the victim does (that
 * is in `anomalies`). Stops at the first anomaly.
 */
export async function runCampaign(options: CampaignOptions): Promise<CampaignReport> {
  const started = performance.now();
  const workers = options.workers ?? { frames: 8, message1: 4, message3: 2 };
  const report: CampaignReport = {
    seed: options.seed,
    wallMs: 0,
    surfaces: { frames: newStats(), message1: newStats(), message3: newStats() },
    anomalies: [],
    relayChecks: 0,
    rssKiB: { before: 0, peak: 0, after: 0 },
    victimExit: null,
    freshJoin: "not tried",
    stderrLines: 0,
  };
  const victim = new CliProcess(fromSource, [
    "127.0.0.1",
    "0",
    // Degree 0: the victim never dials what fuzzed PEERS frames tell it (tests touch
    // nothing but loopback); PEERS are still parsed and fed to its address book.
    "--degree",
    "0",
    "--json",
    options.verbose ? "--verbose" : "--quiet",
    "--nick",
    "victim",
  ]);
  let exited = false;
  void victim.exited.then(() => {
    exited = true;
  });
  const honest: RunningPeer[] = [];
  const timers: Array<ReturnType<typeof setInterval>> = [];
  try {
    const victimAt: Endpoint = { host: "127.0.0.1", port: await listenPortOf(victim) };
    options.onVictim?.(victim);
    const net = await honestNeighbours(victimAt, honest);
    report.rssKiB.before = (await victim.memoryKiB()).rss;

    const state = new CampaignState(options, report, victimAt, new AuthorPool(options.seed));
    const anomaly = (what: string, cases: readonly string[] = state.inFlight()) => {
      // The first of each kind, and not too many: one failure tends to cause others.
      if (report.anomalies.length < 10 && !report.anomalies.some((a) => a.what === what))
        report.anomalies.push({ what, cases, at: performance.now() - started });
      state.stopped = true;
    };
    state.anomaly = anomaly;

    // The oracle's watchers: process, stderr and stdout, honest links.
    const watch = setInterval(() => {
      if (exited && !state.stopped) anomaly("the victim exited");
      state.scanOutput(victim);
      if (net.downs.length > 0)
        anomaly(`an honest neighbour lost its link to the victim: ${JSON.stringify(net.downs)}`);
      for (const log of [net.aliceLog, net.bobLog]) {
        const bad = log.entries.find((e) => e.level <= 0);
        if (bad) anomaly(`an honest neighbour logged an error: ${log.text(bad)}`, []);
      }
    }, 50);
    timers.push(watch);
    const sampler = setInterval(() => {
      if (exited) return;
      void victim
        .memoryKiB()
        .then((m) => {
          report.rssKiB.peak = Math.max(report.rssKiB.peak, m.rss);
        })
        .catch(() => {});
    }, 1000);
    timers.push(sampler);
    const onProgress = options.onProgress;
    const progress = setInterval(() => {
      report.wallMs = performance.now() - started;
      onProgress?.(report);
    }, options.progressEveryMs ?? 2000);
    timers.push(progress);
    const relayLoop = (async () => {
      const every = options.relayCheckEveryMs ?? 5000;
      while (!state.done && !state.stopped) {
        await state.sleepUnlessDone(every);
        if (state.done || state.stopped) break;
        const problem = await net.relayCheck();
        if (problem) anomaly(`the victim stopped relaying during the campaign: ${problem}`);
        else report.relayChecks++;
      }
    })();

    const jobs: Promise<void>[] = [];
    for (let w = 0; w < workers.frames; w++) jobs.push(state.guard(() => state.framesWorker()));
    for (let w = 0; w < workers.message1; w++) jobs.push(state.guard(() => state.message1Worker()));
    for (let w = 0; w < workers.message3; w++) jobs.push(state.guard(() => state.message3Worker()));
    await Promise.all(jobs);
    state.done = true;
    state.wake();
    await relayLoop;
    clearInterval(progress);
    clearInterval(sampler);

    // After the campaign: still relaying both ways, links untouched, open to newcomers.
    if (!state.stopped) {
      const problem = await net.relayCheck();
      if (problem) anomaly(`the victim stopped relaying after the campaign: ${problem}`, []);
      else report.relayChecks++;
    }
    const sinceNow = [net.alice, net.bob].map(
      (p) => p.node.neighbours().find((n) => n.nick === "victim")?.since,
    );
    if (JSON.stringify(sinceNow) !== JSON.stringify(net.since))
      anomaly(`the honest links to the victim were replaced: ${net.since} → ${sinceNow}`, []);
    report.freshJoin = await freshJoin(victimAt);
    if (report.freshJoin !== "connected")
      anomaly(`a fresh honest peer could not join the victim: ${report.freshJoin}`, []);
    clearInterval(watch);
    state.scanOutput(victim);
    if (exited) anomaly("the victim exited", []);
    else report.rssKiB.after = (await victim.memoryKiB()).rss;
  } finally {
    for (const t of timers) clearInterval(t);
    await Promise.all(honest.map((p) => p.close()));
    report.victimExit = await victim.stop();
    report.stderrLines += victim.stderr.length;
    report.wallMs = performance.now() - started;
  }
  return report;
}

/**
 * Alice and Bob: honest peers linked to each other only through the victim. They are
 * added to `started` at once, so that they are closed whatever happens.
 */
async function honestNeighbours(victimAt: Endpoint, started: RunningPeer[]) {
  const aliceLog = testLogger(1);
  const bobLog = testLogger(1);
  // Degree 0: they never link to each other, nor dial what the victim advertises.
  const alice = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "alice",
    degree: 0,
    logger: aliceLog.logger,
  });
  const bob = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "bob",
    degree: 0,
    logger: bobLog.logger,
  });
  started.push(alice, bob);
  const inbox = { alice: [] as string[], bob: [] as string[] };
  const keep = (to: string[]) => (m: ChatMessage) => {
    if (m.text.startsWith("relay check ")) to.push(m.text);
  };
  alice.node.events.on("message", keep(inbox.alice));
  bob.node.events.on("message", keep(inbox.bob));
  alice.history.events.on("late", keep(inbox.alice));
  bob.history.events.on("late", keep(inbox.bob));
  const downs: PeerDown[] = [];
  alice.node.events.on("peer-down", (d) => downs.push(d));
  bob.node.events.on("peer-down", (d) => downs.push(d));
  for (const p of [alice, bob]) {
    const outcome = await p.connect(victimAt);
    if (outcome.status !== "connected")
      throw new Error(`honest peer could not join: ${JSON.stringify(outcome)}`);
  }
  const since = [alice, bob].map(
    (p) => p.node.neighbours().find((n) => n.nick === "victim")?.since,
  );
  let checks = 0;
  /** A chat each way through the victim; undefined if both arrive, else what went wrong. */
  const relayCheck = async (): Promise<string | undefined> => {
    const text = `relay check ${++checks}`;
    try {
      alice.node.sendChat(text);
      await waitFor(() => inbox.bob.includes(text), 10_000, `"${text}" at bob`);
      bob.node.sendChat(`${text} back`);
      await waitFor(() => inbox.alice.includes(`${text} back`), 10_000, `"${text} back" at alice`);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  return { alice, bob, aliceLog, bobLog, downs, since, relayCheck };
}

/** A new honest peer dials the victim: "connected" if it gets in. */
async function freshJoin(victimAt: Endpoint): Promise<string> {
  const carol = startPeer({
    host: "127.0.0.1",
    port: 0,
    nick: "carol",
    degree: 0,
    logger: testLogger(0).logger,
  });
  try {
    const outcome = await carol.connect(victimAt);
    return outcome.status === "failed" ? `failed: ${outcome.reason}` : outcome.status;
  } finally {
    await carol.close();
  }
}

/** Drops the first `seen` lines but `keep`; returns how many went. */
function trim(lines: string[], seen: number, keep: number): number {
  const n = Math.max(0, seen - keep);
  if (n > 0) lines.splice(0, n);
  return n;
}

/** What is on one connection, for blaming cases when the oracle catches something. */
interface ConnectionRecord {
  readonly surface: Surface;
  readonly cases: FuzzCase[];
  open: boolean;
}

class CampaignState {
  /** The latest connection of the frames surface. */
  lastFrames: ConnectionRecord | undefined;
  stopped = false;
  done = false;
  anomaly: (what: string, cases?: readonly string[]) => void = () => {};
  private readonly next: Record<Surface, number> = { frames: 0, message1: 0, message3: 0 };
  private readonly connections = new Map<number, ConnectionRecord>();
  private stdoutSeen = 0;
  private stderrSeen = 0;
  private serial = 0;
  private wakers: Array<() => void> = [];
  private readonly stallMs: number;

  constructor(
    private readonly options: CampaignOptions,
    private readonly report: CampaignReport,
    private readonly victimAt: Endpoint,
    private readonly authors: AuthorPool,
  ) {
    this.stallMs = options.stallMs ?? STALL_MS;
  }

  private env(): CaseEnv {
    return { now: Date.now(), authors: this.authors };
  }

  private wants(surface: Surface): boolean {
    return !this.stopped && this.report.surfaces[surface].processed < this.options.cases[surface];
  }

  /** Runs a worker; an exception in the harness itself is reported, not swallowed. */
  async guard(worker: () => Promise<void>): Promise<void> {
    try {
      await worker();
    } catch (error) {
      this.anomaly(
        `fuzzer failure: ${error instanceof Error ? (error.stack ?? error.message) : error}`,
      );
    }
  }

  sleepUnlessDone(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakers.push(done);
    });
  }

  wake(): void {
    for (const w of this.wakers) w();
    this.wakers = [];
  }

  private track(port: number, surface: Surface): ConnectionRecord {
    const record: ConnectionRecord = { surface, cases: [], open: true };
    this.connections.delete(port);
    this.connections.set(port, record);
    if (this.connections.size > MAX_TRACKED_CONNECTIONS) {
      const oldest = this.connections.keys().next().value;
      if (oldest !== undefined) this.connections.delete(oldest);
    }
    this.report.surfaces[surface].connections++;
    return record;
  }

  private describe(record: ConnectionRecord): string[] {
    return record.cases
      .slice(-20)
      .map(
        (c) =>
          `${record.surface} #${c.index}: ${describeCase(c)} = ${Buffer.from(c.bytes.subarray(0, 600)).toString("hex")}`,
      );
  }

  /** The cases on every connection still open: the suspects when no port is named. */
  inFlight(): string[] {
    return [...this.connections.values()].filter((r) => r.open).flatMap((r) => this.describe(r));
  }

  /** Checks the victim's new output lines, then drops them (a long run makes millions). */
  scanOutput(victim: CliProcess): void {
    this.scanLines(victim);
    this.stdoutSeen -= trim(victim.stdout, this.stdoutSeen, 0);
    // A few stderr lines stay, as context should a later line need blaming.
    const dropped = trim(victim.stderr, this.stderrSeen, 20);
    this.stderrSeen -= dropped;
    this.report.stderrLines += dropped;
  }

  private scanLines(victim: CliProcess): void {
    for (; this.stderrSeen < victim.stderr.length; this.stderrSeen++) {
      const line = victim.stderr[this.stderrSeen] as string;
      this.options.onStderr?.(line);
      if (!isBadStderrLine(line)) continue;
      const port = /127\.0\.0\.1:(\d+)/.exec(line)?.[1];
      const record = port ? this.connections.get(Number(port)) : undefined;
      const context = victim.stderr.slice(this.stderrSeen, this.stderrSeen + 12).join("\n");
      this.anomaly(`victim stderr: ${context}`, record ? this.describe(record) : this.inFlight());
      this.stderrSeen = victim.stderr.length;
      return;
    }
    for (; this.stdoutSeen < victim.stdout.length; this.stdoutSeen++) {
      const line = victim.stdout[this.stdoutSeen] as string;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.anomaly(`victim stdout line is not JSON: ${JSON.stringify(line.slice(0, 300))}`);
        this.stdoutSeen++;
        return;
      }
      if (event.type === "error" && /internal error/i.test(String(event.message))) {
        const port = (event.address as Endpoint | undefined)?.port;
        const record = port ? this.connections.get(port) : undefined;
        this.anomaly(
          `victim error event: ${line}`,
          record ? this.describe(record) : this.inFlight(),
        );
        this.stdoutSeen++;
        return;
      }
    }
  }

  /** The next case index of `surface`, or undefined when a replay list is used up. */
  private take(surface: Surface): number | undefined {
    const list = this.options.indices?.[surface];
    const i = this.next[surface]++;
    return list ? list[i] : i;
  }

  private tally(surface: Surface, c: FuzzCase, outcome: Outcome): void {
    tally(this.report.surfaces[surface], c, outcome);
    this.options.onCase?.(surface, c, outcome);
  }

  // The frames surface.

  async framesWorker(): Promise<void> {
    const stats = this.report.surfaces.frames;
    const batch = this.options.batch ?? 16;
    const perConnection = this.options.casesPerConnection ?? 1000;
    const backlog: FuzzCase[] = [];
    while (this.wants("frames")) {
      const client = await this.secureClient();
      if (!client) continue;
      const record = this.track(client.localPort, "frames");
      this.lastFrames = record;
      const tag = BigInt((0x8000_0000 | ++this.serial) >>> 0) << 32n;
      let probes = 0;
      let scanned = 0;
      let answered = -1;
      let onConnection = 0;
      while (!client.closed && onConnection < perConnection && this.wants("frames")) {
        // Cases, each completed to a frame boundary and followed by its probe.
        const tracker = new LengthTracker(4, (n) => n >= 1 && n <= 65_536);
        const sent: Array<{ c: FuzzCase; probe: number }> = [];
        const parts: Uint8Array[] = [];
        while (sent.length < batch && !tracker.dead) {
          const index = backlog.length > 0 ? undefined : this.take("frames");
          const c =
            backlog.shift() ??
            (index === undefined
              ? undefined
              : frameCase(this.options.seed, index, this.env(), this.options.frameModes));
          if (!c) break;
          tracker.feed(c.bytes);
          parts.push(
            c.bytes,
            tracker.completion(paddingRandom(this.options.seed, Stream.frames, c.index)),
          );
          const probe = tracker.dead ? -1 : probes++;
          if (probe >= 0) parts.push(encodePing(tag | BigInt(probe)));
          sent.push({ c, probe });
          record.cases.push(c);
        }
        if (sent.length === 0) {
          client.terminate();
          return;
        }
        if (record.cases.length > MAX_CASES_PER_RECORD)
          record.cases.splice(0, record.cases.length - MAX_CASES_PER_RECORD);
        client.write(concatBytes(...parts));
        stats.sent += sent.length;
        const last = sent[sent.length - 1] as { probe: number };
        const scan = () => {
          for (; scanned < client.frames.length; scanned++) {
            const f = client.frames[scanned] as { type: number; payload: Uint8Array };
            if (f.type !== FrameType.Pong || f.payload.length !== 8) continue;
            const nonce = new DataView(f.payload.buffer, f.payload.byteOffset, 8).getBigUint64(0);
            if ((nonce & 0xffff_ffff_0000_0000n) === tag)
              answered = Math.max(answered, Number(nonce & 0xffff_ffffn));
          }
          return (last.probe >= 0 && answered >= last.probe) || client.closed;
        };
        try {
          await waitFor(scan, this.stallMs, "probe", 1);
        } catch {
          this.anomaly(
            `stall: the victim neither answered probe ${last.probe} nor closed within ${this.stallMs} ms`,
            this.describe(record),
          );
          return;
        }
        scan();
        let fatal = true;
        for (const { c, probe } of sent) {
          if (probe >= 0 && probe <= answered) {
            this.tally("frames", c, "survived");
            onConnection++;
          } else if (fatal) {
            // The first unanswered case is the one the victim closed on: it read it.
            fatal = false;
            this.tally("frames", c, "closed");
          } else backlog.push(c);
        }
      }
      record.open = false;
      if (!client.closed) client.terminate();
    }
  }

  /** A secure connection with its HELLO through, or undefined if the victim closed it. */
  private async secureClient(): Promise<RawClient | undefined> {
    let client: RawClient;
    try {
      client = await rawConnect(this.victimAt);
    } catch (error) {
      this.anomaly(`the victim refused a TCP connection: ${error}`);
      return undefined;
    }
    client.write(encodeHello({ nodeId: client.nodeId, listenPort: 0, nick: "fuzz" }));
    try {
      await waitFor(() => client.frames.length > 0 || client.closed, this.stallMs, "HELLO", 1);
    } catch {
      // No case was sent on it yet: the suspects are those of the connections still open,
      // or else the last cases of the frames connection before it (what the victim read
      // last before it stopped answering).
      const open = this.inFlight();
      const last = this.lastFrames ? this.describe(this.lastFrames) : [];
      this.anomaly("stall: an honest handshake got no HELLO back", open.length > 0 ? open : last);
      return undefined;
    }
    if (client.closed) {
      this.report.surfaces.frames.refused++;
      await Bun.sleep(5);
      return undefined;
    }
    return client;
  }

  // The handshake surfaces.

  private async plain(): Promise<PlainConnection | undefined> {
    try {
      return await PlainConnection.open(this.victimAt);
    } catch (error) {
      this.anomaly(`the victim refused a TCP connection: ${error}`);
      return undefined;
    }
  }

  async message1Worker(): Promise<void> {
    const stats = this.report.surfaces.message1;
    while (this.wants("message1")) {
      const index = this.take("message1");
      if (index === undefined) return;
      const c = message1Case(this.options.seed, index);
      const conn = await this.plain();
      if (!conn) return;
      const record = this.track(conn.localPort, "message1");
      record.cases.push(c);
      // Message 1 is 48 bytes or refused; later handshake messages at most 1,024.
      const tracker = new LengthTracker(2, (n, i) => (i === 0 ? n === 48 : n >= 1 && n <= 1024));
      tracker.feed(c.bytes);
      conn.write(
        concatBytes(
          c.bytes,
          tracker.completion(paddingRandom(this.options.seed, Stream.message1, c.index)),
        ),
      );
      stats.sent++;
      if (!(await conn.until(() => conn.closed || conn.received.length > 0, this.stallMs))) {
        this.anomaly(`stall: no answer and no close after a message-1 case`, this.describe(record));
        return;
      }
      this.tally("message1", c, conn.received.length > 0 ? "answered" : "closed");
      record.open = false;
      conn.terminate();
    }
  }

  async message3Worker(): Promise<void> {
    const stats = this.report.surfaces.message3;
    while (this.wants("message3")) {
      const index = this.take("message3");
      if (index === undefined) return;
      const plan = message3Plan(this.options.seed, index);
      const conn = await this.plain();
      if (!conn) return;
      const record = this.track(conn.localPort, "message3");
      const first = plan.handshake.writeMessage();
      if (!first.ok) throw new Error(`message 1: ${first.reason}`);
      conn.write(noiseFramed(first.message));
      const second = await conn.noiseMessage(0, this.stallMs);
      if (!second) {
        if (conn.closed) {
          stats.refused++;
          record.open = false;
          await Bun.sleep(5);
          continue;
        }
        this.anomaly("stall: a valid message 1 got no message 2", []);
        return;
      }
      const read = plan.handshake.readMessage(second);
      if (!read.ok) {
        this.anomaly(`the victim's message 2 does not verify: ${read.reason}`, []);
        return;
      }
      const afterSecond = 2 + second.length;
      const c = await this.message3Case(plan, conn, afterSecond);
      if (!c) {
        record.open = false;
        conn.terminate();
        continue;
      }
      record.cases.push(c.fuzz);
      stats.sent++;
      if (!(await conn.until(c.done, c.timeoutMs))) {
        this.anomaly(c.timeoutMeans, this.describe(record));
        return;
      }
      this.tally("message3", c.fuzz, conn.closed ? "closed" : "answered");
      record.open = false;
      conn.terminate();
    }
  }

  /** Sends the mutated part of a message-3 case; says what to wait for. */
  private async message3Case(
    plan: ReturnType<typeof message3Plan>,
    conn: PlainConnection,
    afterSecond: number,
  ): Promise<
    { fuzz: FuzzCase; done: () => boolean; timeoutMs: number; timeoutMeans: string } | undefined
  > {
    const random = plan.random;
    const answeredOrClosed = () => conn.closed || conn.received.length > afterSecond;
    const writeThird = (payload: Uint8Array) => {
      let w = plan.handshake.writeMessage(payload);
      // Too big for one Noise message: refused before any state changed, so cut it down.
      if (!w.ok && w.reason === "too-large")
        w = plan.handshake.writeMessage(payload.subarray(0, 900));
      if (!w.ok) throw new Error(`message 3: ${w.reason}`);
      return noiseFramed(w.message);
    };
    const completed = (bytes: Uint8Array, accepts: (n: number) => boolean) => {
      const tracker = new LengthTracker(2, accepts);
      tracker.feed(bytes);
      return concatBytes(
        bytes,
        tracker.completion(paddingRandom(this.options.seed, Stream.message3, plan.index)),
      );
    };
    const stall = "stall: no answer and no close after a message-3 case";
    if (plan.mode === "payload") {
      const { payload, mutations } = mutatedHelloPayload(plan, this.env());
      const bytes = writeThird(payload);
      conn.write(bytes);
      return {
        fuzz: { index: plan.index, bytes: payload, seed: "message3/payload", mutations },
        done: answeredOrClosed,
        timeoutMs: this.stallMs,
        timeoutMeans: stall,
      };
    }
    const third = writeThird(encodeFields(helloPayloadFields(plan)));
    if (plan.mode === "wire") {
      const m = mutateBytes(third, random, {
        lengthBytes: 2,
        maxLength: 1024,
        other: () => noiseFramed(fastRandomBytes(random, 48)),
      });
      conn.write(completed(m.bytes, (n) => n >= 1 && n <= 1024));
      return {
        fuzz: { index: plan.index, bytes: m.bytes, seed: "message3/wire", mutations: m.applied },
        done: answeredOrClosed,
        timeoutMs: this.stallMs,
        timeoutMeans: stall,
      };
    }
    // transport: a valid message 3, the victim's confirmation, then a tampered message.
    conn.write(third);
    const confirmation = await conn.noiseMessage(afterSecond, this.stallMs);
    if (!confirmation) {
      if (conn.closed) {
        this.report.surfaces.message3.refused++;
        return undefined;
      }
      this.anomaly("stall: a valid message 3 got no confirmation", []);
      return undefined;
    }
    const ciphers = plan.handshake.split();
    const wire = noiseFramed(ciphers.send.encrypt(transportPlaintext(random)));
    const m = mutateBytes(wire, random, {
      lengthBytes: 2,
      maxLength: 65_535,
      other: () => noiseFramed(fastRandomBytes(random, 32)),
    });
    const fuzz: FuzzCase = {
      index: plan.index,
      bytes: m.bytes,
      seed: "message3/transport",
      mutations: m.applied,
    };
    if (m.bytes.length === wire.length && m.bytes.every((b, i) => b === wire[i])) {
      // A no-op mutation (a byte set to its own value): a valid message, nothing to refuse.
      conn.write(m.bytes);
      return { fuzz, done: () => true, timeoutMs: 0, timeoutMeans: "" };
    }
    conn.write(completed(m.bytes, (n) => n >= 1));
    return {
      fuzz,
      done: () => conn.closed,
      timeoutMs: TAMPER_CLOSE_MS,
      timeoutMeans: `a tampered transport message was not refused within ${TAMPER_CLOSE_MS} ms`,
    };
  }
}
