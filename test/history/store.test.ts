import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreError } from "../../src/errors.ts";
import { DAY_MS, HistoryStore } from "../../src/history/store.ts";
import { historyFileName } from "../../src/history/store-file.ts";
import { encodeChatBody } from "../../src/protocol/chat.ts";
import { FloodKind } from "../../src/protocol/constants.ts";
import { encodeFlood, signFloodFrame } from "../../src/protocol/flood.ts";
import { identityFromSeed } from "../../src/secure/identity.ts";
import { asNobody, readableBundle } from "../helpers/as-nobody.ts";

const NOW = 1_800_000_000_000;
const ALICE = identityFromSeed(new Uint8Array(32).fill(1));
const BOB = identityFromSeed(new Uint8Array(32).fill(2));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "peerchat-store-"));
  dirs.push(dir);
  return dir;
}

let nextId = 1;
/** A signed CHAT FLOOD payload from `author`. */
function message(author = ALICE, seq = 1, sentAt = NOW, text = `hello ${seq}`): Uint8Array {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(0, nextId++);
  const frame = encodeFlood({
    id,
    origin: author.publicKey,
    seq,
    sentAt,
    hops: 3,
    kind: FloodKind.Chat,
    signature: new Uint8Array(64),
    body: encodeChatBody({ nick: "alice", text }),
  });
  signFloodFrame(frame, (m) => author.sign(m));
  return frame.subarray(5);
}

const open = (path = ":memory:", options: Partial<Parameters<typeof HistoryStore.open>[1]> = {}) =>
  HistoryStore.open(path, { keepMs: 7 * DAY_MS, maxMessages: 1000, now: () => NOW, ...options });

describe("the history store", () => {
  test("takes a message once, as its original bytes with hops 0, and knows it at once", () => {
    const store = open();
    const m = message();
    expect(store.add(m, 0, m.length, NOW)).toBe("added");
    expect(store.has(m)).toBe(true);
    expect(store.add(m, 0, m.length, NOW)).toBe("duplicate");
    const [kept] = store.latest(10);
    expect(kept?.payload.length).toBe(m.length);
    expect(kept?.payload[60]).toBe(0); // hops
    expect(kept?.payload.subarray(61)).toEqual(m.subarray(61));
    expect(kept?.sentAt).toBe(NOW);
    store.close();
  });

  test("a message older than retention is refused", () => {
    const store = open();
    const old = message(ALICE, 1, NOW - 8 * DAY_MS);
    expect(store.add(old, 0, old.length, NOW)).toBe("expired");
    expect(store.size).toBe(0);
  });

  test("survives a restart: WAL on disk, the same messages, our seq going on", () => {
    const dir = tempDir();
    const path = join(dir, historyFileName("lobby", ALICE.publicKey));
    const store = open(path, { self: ALICE.publicKey });
    for (let seq = 1; seq <= 5; seq++) {
      const m = message(ALICE, seq, NOW - 1000 + seq);
      store.add(m, 0, m.length, NOW);
    }
    const b = message(BOB, 9);
    store.add(b, 0, b.length, NOW);
    store.close();
    const db = new Database(path, { readonly: true });
    expect((db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe(
      "wal",
    );
    db.close();
    const again = open(path, { self: ALICE.publicKey });
    expect(again.size).toBe(6);
    expect(again.lastOwnSeq).toBe(5);
    expect(again.latest(2).map((m) => m.sentAt)).toEqual([NOW - 1000 + 5, NOW]);
    again.close();
  });

  test("our seq is remembered even once our messages have expired", () => {
    const dir = tempDir();
    const path = join(dir, "h.db");
    let now = NOW;
    const store = open(path, { self: ALICE.publicKey, now: () => now });
    const m = message(ALICE, 41);
    store.add(m, 0, m.length, now);
    store.close();
    now = NOW + 8 * DAY_MS;
    const later = open(path, { self: ALICE.publicKey, now: () => now });
    expect(later.size).toBe(0);
    expect(later.lastOwnSeq).toBe(41);
    later.close();
  });

  test("the cap drops the oldest first, down to 95 % of it", () => {
    const store = open(":memory:", { maxMessages: 20 });
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 25; i++) {
      const m = message(BOB, i + 1, NOW - 10_000 + i);
      ids.push(m);
      store.add(m, 0, m.length, NOW);
    }
    store.flush();
    expect(store.size).toBe(19);
    expect(ids.map((m) => store.has(m))).toEqual([
      ...Array(6).fill(false),
      ...Array(19).fill(true),
    ]);
    expect(store.latest(100).map((m) => m.sentAt)[0]).toBe(NOW - 10_000 + 6);
  });

  test("retention: what falls out of the window on a prune is gone", () => {
    let now = NOW;
    const store = open(":memory:", { now: () => now });
    const m = message(BOB, 1, NOW - 6 * DAY_MS);
    store.add(m, 0, m.length, NOW);
    store.flush();
    now = NOW + 2 * DAY_MS;
    expect(store.prune()).toBe(1);
    expect(store.has(m)).toBe(false);
    expect(store.latest(10)).toEqual([]);
  });

  test("a full disk: the chat goes on, one warning, nothing more saved until there is room", () => {
    const dir = tempDir();
    const problems: string[] = [];
    let now = NOW;
    const store = open(join(dir, "h.db"), { onProblem: (p) => problems.push(p), now: () => now });
    // SQLite's page cap stands in for a full disk: the next write fails with SQLITE_FULL.
    const db = (store as unknown as { db: Database }).db;
    const pages = (db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`);
    const big = (i: number) => message(BOB, i, NOW, "x".repeat(4000));
    for (let i = 1; i <= 20; i++) {
      const m = big(i);
      expect(store.add(m, 0, m.length, NOW)).toBe("added");
      store.flush();
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("the disk is full");
    // Room again, and time to try: saving resumes, and says so.
    db.exec("PRAGMA max_page_count = 1000000");
    now += 60_000;
    const m = big(21);
    store.add(m, 0, m.length, now);
    store.flush();
    expect(problems).toHaveLength(2);
    expect(problems[1]).toContain("room again");
    expect(store.latest(100).some((x) => x.payload.length === m.length && x.sentAt === NOW)).toBe(
      true,
    );
    store.close();
  });

  test("a file that is not a database: a StoreError that names it and says what to do", () => {
    const dir = tempDir();
    const path = join(dir, "broken.db");
    writeFileSync(path, "this is not a database, it is a grocery list ".repeat(200));
    try {
      open(path);
      throw new Error("opened");
    } catch (error) {
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe("CORRUPT");
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toContain("move it away");
    }
  });

  test("a read-only directory: a StoreError that says to use another or --ephemeral", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o555);
    const path = join(dir, "h.db");
    // Root writes through a directory's mode bits: then the check runs as nobody.
    const script = await readableBundle(
      "store check",
      `
      import { HistoryStore } from ${JSON.stringify(join(import.meta.dir, "../../src/history/store.ts"))};
      try { HistoryStore.open(process.argv[2], { keepMs: 1, maxMessages: 1 }); console.log("opened"); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
    );
    const proc = Bun.spawn(asNobody([process.execPath, script, path]), {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = (await new Response(proc.stdout).text()).trim();
    await proc.exited;
    const result = JSON.parse(out) as { code: string; message: string };
    expect(result.code).toBe("READ_ONLY");
    expect(result.message).toContain(path);
    expect(result.message).toContain("--ephemeral");
  });

  test("the file name hides the room name and differs per identity and room", () => {
    const a = historyFileName("our secret", ALICE.publicKey);
    expect(a).toMatch(/^[0-9a-f]{32}\.db$/);
    expect(a).not.toContain("secret");
    expect(historyFileName("our secret", BOB.publicKey)).not.toBe(a);
    expect(historyFileName("lobby", ALICE.publicKey)).not.toBe(a);
  });
});
