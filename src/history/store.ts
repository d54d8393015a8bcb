import { Database, type SQLQueryBindings, type Statement } from "bun:sqlite";
import { closeSync, existsSync, openSync } from "node:fs";
import { StoreError } from "../errors.ts";
import { MESSAGE_ID_BYTES } from "../protocol/constants.ts";
import {
  floodId,
  floodKind,
  floodOrigin,
  floodSentAt,
  floodSeq,
  setFloodHops,
} from "../protocol/flood.ts";
import { compareBytes, hex, latin1 } from "../protocol/hex.ts";
import { isFull, storeError } from "./store-file.ts";

/** A day, in milliseconds: retention is given in days. */
export const DAY_MS = 86_400_000;

/** How long messages are kept, by default: a week. */
export const DEFAULT_KEEP_DAYS = 7;

/** Messages kept per room at most, by default; past it the oldest go first. */
export const DEFAULT_MAX_MESSAGES = 100_000;

/** After a write failed for want of space, how long before writing is tried again. */
export const FULL_RETRY_MS = 30_000;

/** Past the cap, the oldest are dropped down to this share of it. */
const PRUNE_TO = 0.95;

/** The schema this code reads and writes (SQLite `user_version`). */
const SCHEMA_VERSION = 1;

/** One stored message: its original signed FLOOD payload and what queries need. */
export interface StoredMessage {
  /** The FLOOD payload (id to end of body), as signed by its origin, hops 0. */
  readonly payload: Uint8Array;
  readonly sentAt: number;
  /** Our clock when it arrived. */
  readonly receivedAt: number;
}

/** Options for {@link HistoryStore.open}. */
export interface StoreOptions {
  /** Messages sent longer ago than this are dropped, and never taken in. */
  readonly keepMs: number;
  /** Cap on messages held; past it the oldest are dropped. */
  readonly maxMessages: number;
  /** Told (once each time) when writing stops for want of space and when it works again. */
  readonly onProblem?: (message: string) => void;
  /** Time, for tests; `Date.now` by default. */
  readonly now?: () => number;
  /** Our own node id: the seq of our messages is kept, so numbering goes on after a restart. */
  readonly self?: Uint8Array;
}

/** The meta key of our own last seq. */
const OWN_SEQ = "own_seq";

/** What an {@link HistoryStore.add} did. */
export type AddOutcome = "added" | "duplicate" | "expired";

interface Row {
  payload: Uint8Array;
  sent_at: number;
  received_at: number;
}

/**
 * The room's messages on disk (bun:sqlite, WAL): the original signed bytes of every
 * message-carrying FLOOD, within retention. It is also the long-term seen set: an id is
 * looked up in memory (an index of every id held, loaded at open), never on disk.
 *
 * Inserts are batched: `add` takes a message at once (it is `has` from then on) and
 * writes it with everything else added in the same turn of the event loop, in one
 * transaction, so a busy relay pays for one commit per turn, not one per message. A full
 * disk stops the writing (the chat goes on) until there is room again.
 */
export class HistoryStore {
  /** Every id held (latin1 of its bytes) → its `sentAt`. */
  private readonly index = new Map<string, number>();
  private pending: Array<{ readonly key: string; readonly message: StoredMessage }> = [];
  private flushScheduled = false;
  private fullUntil = 0;
  /** Our own last seq, as written or about to be. */
  private ownSeq: number;
  private ownSeqWritten: number;
  private closed = false;
  private readonly insert: Statement;
  private readonly now: () => number;

  private constructor(
    private readonly db: Database,
    readonly path: string,
    private readonly options: StoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.insert = db.prepare(
      "INSERT OR IGNORE INTO messages (id, origin, seq, sent_at, received_at, kind, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    for (const row of db.query("SELECT id, sent_at FROM messages").values())
      this.index.set(latin1(row[0] as Uint8Array, 0, MESSAGE_ID_BYTES), row[1] as number);
    this.ownSeq = this.meta(OWN_SEQ) ?? 0;
    if (options.self) {
      const row = db
        .query("SELECT max(seq) AS seq FROM messages WHERE origin = ?")
        .get(options.self) as { seq: number | null };
      this.ownSeq = Math.max(this.ownSeq, row.seq ?? 0);
    }
    this.ownSeqWritten = this.ownSeq;
  }

  /** The seq of the last message this identity wrote, as far as this store knows. */
  get lastOwnSeq(): number {
    return this.ownSeq;
  }

  /** Each origin's highest seq held (hex origin → seq): where gap tracking starts. */
  highestSeqs(): Map<string, number> {
    const out = new Map<string, number>();
    const rows = this.db.query("SELECT origin, max(seq) FROM messages GROUP BY origin").values();
    for (const row of rows) out.set(hex(row[0] as Uint8Array), row[1] as number);
    return out;
  }

  /**
   * Opens (creating it if need be) the store at `path`, or an in-memory one for
   * `":memory:"`. Throws {@link StoreError} with a message that names the file and says
   * what to do.
   */
  static open(path: string, options: StoreOptions): HistoryStore {
    let db: Database | undefined;
    try {
      // Messages are private: the file (and the WAL beside it, which takes its mode) is
      // the user's alone. An empty file is an empty database to SQLite.
      if (path !== ":memory:" && !existsSync(path)) closeSync(openSync(path, "a", 0o600));
      db = new Database(path, { create: true, readwrite: true, strict: true });
      db.exec("PRAGMA busy_timeout = 1000");
      const version = (db.query("PRAGMA user_version").get() as { user_version: number })
        .user_version;
      if (version !== 0 && version !== SCHEMA_VERSION)
        throw new StoreError(
          "CORRUPT",
          `${path} was written by another version of peerchat (schema ${version}); move it away to start a new history`,
        );
      if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      // Rows are appended (rowid order) and found by time: duplicates are refused in
      // memory, by the index of ids, before anything reaches SQLite. An index keyed on the
      // random ids would cost every insert a random B-tree walk: 10× the time on disk.
      db.exec(`CREATE TABLE IF NOT EXISTS messages (
        id BLOB NOT NULL,
        origin BLOB NOT NULL,
        seq INTEGER NOT NULL,
        sent_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        payload BLOB NOT NULL
      )`);
      db.exec("CREATE INDEX IF NOT EXISTS messages_by_time ON messages (sent_at)");
      db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      const store = new HistoryStore(db, path, options);
      store.prune();
      return store;
    } catch (error) {
      db?.close();
      throw storeError(path, error);
    }
  }

  /** The cap on messages held. */
  get maxMessages(): number {
    return this.options.maxMessages;
  }

  /** Messages held. */
  get size(): number {
    return this.index.size;
  }

  /** True if the message with this id (16 bytes at `bytes[at…]`) is held. */
  has(bytes: Uint8Array, at = 0): boolean {
    return this.index.has(latin1(bytes, at, MESSAGE_ID_BYTES));
  }

  /** The oldest `sentAt` still kept at `now`. */
  horizon(now = this.now()): number {
    return now - this.options.keepMs;
  }

  /**
   * Takes in the (validated) FLOOD payload `bytes[start, end)` received at `receivedAt`:
   * copied, written with the rest of this turn's messages.
   */
  add(bytes: Uint8Array, start: number, end: number, receivedAt: number): AddOutcome {
    const key = latin1(bytes, start, MESSAGE_ID_BYTES);
    if (this.index.has(key)) return "duplicate";
    const sentAt = floodSentAt(bytes, start);
    if (sentAt < this.horizon()) return "expired";
    const payload = bytes.slice(start, end);
    setFloodHops(payload, 0, 0);
    if (this.options.self && compareBytes(floodOrigin(payload, 0), this.options.self) === 0)
      this.ownSeq = Math.max(this.ownSeq, floodSeq(payload, 0));
    this.index.set(key, sentAt);
    this.pending.push({ key, message: { payload, sentAt, receivedAt } });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return "added";
  }

  /** Writes what `add` took in; called once per turn, and on close. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const batch = this.pending;
    this.pending = [];
    if (this.fullUntil > this.now()) return; // no room: kept in memory only, until restart
    try {
      this.db.transaction(() => {
        for (const { message } of batch) {
          const p = message.payload;
          this.insert.run(
            floodId(p, 0),
            floodOrigin(p, 0),
            floodSeq(p, 0),
            message.sentAt,
            message.receivedAt,
            floodKind(p, 0),
            p,
          );
        }
        if (this.ownSeq !== this.ownSeqWritten) {
          this.setMeta(OWN_SEQ, this.ownSeq);
          this.ownSeqWritten = this.ownSeq;
        }
      })();
      if (this.fullUntil !== 0) {
        this.fullUntil = 0;
        this.options.onProblem?.(`the disk has room again: ${this.path} is being written`);
      }
    } catch (error) {
      if (!isFull(error)) throw error;
      if (this.fullUntil === 0)
        this.options.onProblem?.(
          `the disk is full: messages are no longer saved to ${this.path} (the chat goes on)`,
        );
      this.fullUntil = this.now() + FULL_RETRY_MS;
    }
    if (this.index.size > this.options.maxMessages) this.prune();
  }

  /**
   * Drops what is past retention, then the oldest past the cap. Returns how many went.
   * Messages that were never written (a full disk) are dropped from the index alike.
   */
  prune(now = this.now()): number {
    const before = this.index.size;
    const horizon = this.horizon(now);
    this.run("DELETE FROM messages WHERE sent_at < ?", horizon);
    for (const [key, sentAt] of this.index) if (sentAt < horizon) this.index.delete(key);
    // Past the cap, down to 95 % of it: a busy room then sorts its index once every few
    // thousand messages, not on every write.
    const max = this.options.maxMessages;
    const excess = this.index.size > max ? this.index.size - Math.floor(max * PRUNE_TO) : 0;
    if (excess > 0) {
      const oldest = this.db
        .query("SELECT rowid, id FROM messages ORDER BY sent_at, rowid LIMIT ?")
        .values(excess);
      this.run(
        "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages ORDER BY sent_at, rowid LIMIT ?)",
        excess,
      );
      for (const row of oldest)
        this.index.delete(latin1(row[1] as Uint8Array, 0, MESSAGE_ID_BYTES));
      // Taken in but never written (a full disk): dropped from the index, oldest first.
      const left = this.index.size - Math.floor(max * PRUNE_TO);
      if (left > 0)
        for (const [key] of [...this.index].sort((a, b) => a[1] - b[1]).slice(0, left))
          this.index.delete(key);
    }
    return before - this.index.size;
  }

  /** The `limit` latest messages sent before `before` (ms), oldest first. */
  latest(limit: number, before = Number.POSITIVE_INFINITY): StoredMessage[] {
    this.flush();
    const rows = this.db
      .query(
        "SELECT payload, sent_at, received_at FROM messages WHERE sent_at < ? ORDER BY sent_at DESC, origin DESC, seq DESC LIMIT ?",
      )
      .all(before === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : before, limit) as Row[];
    return rows.reverse().map(toMessage);
  }

  /** The messages with these ids (latin1 keys) that are held, oldest first. */
  get(keys: readonly string[]): StoredMessage[] {
    this.flush();
    // Found by time, then id: the index of ids knows when each was sent.
    const query = this.db.query(
      "SELECT payload, sent_at, received_at FROM messages WHERE sent_at = ? AND id = ?",
    );
    const found: StoredMessage[] = [];
    for (const key of keys) {
      const sentAt = this.index.get(key);
      if (sentAt === undefined) continue;
      const row = query.get(sentAt, Buffer.from(key, "latin1")) as Row | null;
      if (row) found.push(toMessage(row));
    }
    return found.sort(byTime);
  }

  /** Every id held, with its `sentAt`: what reconciliation works on. */
  ids(): ReadonlyMap<string, number> {
    return this.index;
  }

  /** A number kept across restarts (our own message counter). */
  meta(key: string): number | undefined {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as {
      value: number;
    } | null;
    return row?.value;
  }

  setMeta(key: string, value: number): void {
    this.run(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }

  /** A write that a full disk may refuse: refused, it is skipped (the index still rules). */
  private run(sql: string, ...params: SQLQueryBindings[]): void {
    try {
      this.db.query(sql).run(...params);
    } catch (error) {
      if (!isFull(error)) throw error;
    }
  }
}

/**
 * Oldest first; lines of one author sent within one millisecond (pasted, piped) keep
 * the order they were written in, by seq.
 */
function byTime(a: StoredMessage, b: StoredMessage): number {
  if (a.sentAt !== b.sentAt) return a.sentAt - b.sentAt;
  const origin = compareBytes(floodOrigin(a.payload, 0), floodOrigin(b.payload, 0));
  return origin !== 0 ? origin : floodSeq(a.payload, 0) - floodSeq(b.payload, 0);
}

function toMessage(row: Row): StoredMessage {
  return { payload: row.payload, sentAt: row.sent_at, receivedAt: row.received_at };
}
