import { ProtocolError } from "../errors.ts";
import { MESSAGE_ID_BYTES } from "../protocol/constants.ts";
import { latin1 } from "../protocol/hex.ts";
import {
  decodeSync,
  encodeSyncBegin,
  encodeSyncDone,
  encodeSyncKeys,
  encodeSyncRetry,
  encodeSyncSketch,
  encodeSyncStrata,
  MAX_KEYS_PER_FRAME,
  MAX_SKETCH_CELLS,
  type SyncMessage,
  SyncOp,
  type Words,
} from "../protocol/sync.ts";
import {
  cellsFor,
  estimateDifference,
  Iblt,
  type KeySet,
  keySet,
  type Salt,
  STRATA,
  STRATUM_CELLS,
  sameSummary,
  strataOf,
  summarize,
} from "./sketch.ts";

/** Cells in a STRATA frame's block. */
export const STRATA_WIRE_CELLS = STRATA * STRATUM_CELLS;

/**
 * The oldest stretch of the retention window that is not reconciled: peers' clocks and
 * pruning differ by a little, and a message one side is about to drop is not worth
 * sending to the other (which would refuse it as too old).
 */
export const SYNC_MARGIN_MS = 10 * 60_000;

/**
 * The newest stretch that is not reconciled: messages this young are still on their way
 * by flood. Without it, every round during busy traffic would find the messages in
 * flight missing, push them as history, and the news would set off rounds with every
 * other neighbour: a storm. A second round shortly after a link comes up takes them in.
 */
export const SYNC_RECENT_MS = 5_000;

/** A sketch that fails to decode is resent larger at most this often, then listed. */
const MAX_RETRIES = 2;

/** What a session sees of the store: the ids held (latin1) and their `sentAt`. */
export interface SyncView {
  ids(): ReadonlyMap<string, number>;
  /** The oldest `sentAt` kept at `now`. */
  horizon(now: number): number;
  /** Most messages the store holds: no peer may make a session handle more. */
  readonly maxMessages: number;
}

/** What a session asks of the driver. */
export type SyncAction =
  | { readonly kind: "send"; readonly frame: Uint8Array }
  /** Send these messages (latin1 ids; the driver sends them oldest first) as HISTORY frames. */
  | { readonly kind: "push"; readonly ids: readonly string[] }
  /**
   * The session is over on this side: whether the sets were the same, and how many
   * messages we pushed and asked for.
   */
  | {
      readonly kind: "done";
      readonly inSync: boolean;
      readonly pushed: number;
      readonly wanted: number;
    };

/** The keys of the ids of one window, with the ids in the same order. */
interface Window {
  readonly since: number;
  readonly until: number;
  readonly ids: string[];
  readonly keys: KeySet;
}

/**
 * One round of reconciliation with one neighbour (docs/PROTOCOL.md §5c), on either side,
 * free of sockets and timers: fed the neighbour's SYNC frames, it returns the frames to
 * send and the messages to push. The initiator offers a summary of its window; the
 * responder answers "same" or with strata; the initiator sends an IBLT (or, for a
 * difference too large for one, all its keys); the responder decodes both differences,
 * pushes what the initiator lacks and asks for what it lacks itself; the initiator
 * pushes those.
 *
 * A message that breaks the exchange (wrong op for the state, a key list longer than
 * the store, a strata block of another size) throws {@link ProtocolError}: the driver
 * closes the link, as for any malformed frame.
 */
export class SyncSession {
  private window: Window | undefined;
  private retries = 0;
  private listed: Set<string> | undefined;
  private pushed = 0;
  /** Keys (as {@link keyString}) we asked for: what may arrive as HISTORY. */
  private wantedKeys = new Set<string>();
  /** Initiator: how many messages the responder may push at most. */
  private pushAllowance = 0;
  private finished = false;

  private constructor(
    readonly id: number,
    readonly role: "initiator" | "responder",
    private readonly salt: Salt,
    private readonly view: SyncView,
  ) {}

  /** Starts a round as the initiator: the BEGIN frame to send. */
  static begin(
    id: number,
    salt: Salt,
    view: SyncView,
    now: number,
    recent = false,
  ): [SyncSession, Uint8Array] {
    const session = new SyncSession(id, "initiator", salt, view);
    // A new link's first round takes the recent messages too: one sent before the link
    // came up reached no one across it, and no flood is coming with it.
    const w = session.windowOf(oldestSynced(view, now), now - (recent ? 0 : SYNC_RECENT_MS));
    const s = summarize(w.keys);
    return [session, encodeSyncBegin(id, salt, w.since, w.until, s.count, [s.sumHi, s.sumLo])];
  }

  /** Answers a BEGIN as the responder. */
  static answer(
    message: Extract<SyncMessage, { op: typeof SyncOp.Begin }>,
    view: SyncView,
    now: number,
  ): [SyncSession, SyncAction[]] {
    const session = new SyncSession(message.session, "responder", message.salt, view);
    const since = Math.max(message.since, oldestSynced(view, now));
    const w = session.windowOf(since, message.until);
    const s = summarize(w.keys);
    const theirs = { count: message.count, sumHi: message.sum[0], sumLo: message.sum[1] };
    if (since === message.since && sameSummary(s, theirs)) {
      session.finished = true;
      const done: SyncAction = { kind: "done", inSync: true, pushed: 0, wanted: 0 };
      return [session, [send(encodeSyncDone(session.id)), done]];
    }
    const cells = new Uint8Array(STRATA_WIRE_CELLS * 14);
    strataOf(w.keys).forEach((t, i) => {
      cells.set(t.encode(), i * STRATUM_CELLS * 14);
    });
    const strata = encodeSyncStrata(session.id, since, s.count, [s.sumHi, s.sumLo], cells);
    return [session, [send(strata)]];
  }

  /** True once this side has nothing more to do for the round. */
  get done(): boolean {
    return this.finished;
  }

  /** Decodes a SYNC payload for this round (same checks as for every SYNC frame). */
  static decode(payload: Uint8Array): SyncMessage {
    return decodeSync(payload, STRATA_WIRE_CELLS);
  }

  /** The neighbour's next SYNC frame in this round. */
  receive(message: SyncMessage): SyncAction[] {
    if (this.finished) throw violation(`SYNC op ${message.op} after the round ended`);
    if (this.role === "initiator") {
      switch (message.op) {
        case SyncOp.Done:
          this.finished = true;
          return [{ kind: "done", inSync: true, pushed: 0, wanted: 0 }];
        case SyncOp.Strata:
          return this.onStrata(message);
        case SyncOp.Retry:
          return this.sendSketch(message.cellCount);
        case SyncOp.Want:
          return this.onWant(message);
        default:
          throw violation(`SYNC op ${message.op} is not for the initiator`);
      }
    }
    switch (message.op) {
      case SyncOp.Sketch:
        return this.onSketch(message);
      case SyncOp.List:
        return this.onList(message);
      default:
        throw violation(`SYNC op ${message.op} is not for the responder`);
    }
  }

  /**
   * Whether a HISTORY message with this id (16 bytes at `id[at…]`) is one this round
   * may bring: for the responder, one it asked for (then crossed off); for the
   * initiator, one of at most as many as the responder said it holds.
   */
  expects(id: Uint8Array, at: number): boolean {
    if (this.role === "initiator") {
      if (this.pushAllowance <= 0) return false;
      this.pushAllowance--;
      return true;
    }
    const key = keyString(keySet([latin1(id, at, MESSAGE_ID_BYTES)], 1, this.salt).words, 0);
    return this.wantedKeys.delete(key);
  }

  private onStrata(message: Extract<SyncMessage, { op: typeof SyncOp.Strata }>): SyncAction[] {
    const w = this.window as Window;
    if (message.since < w.since) throw violation("SYNC strata for a wider window than asked");
    if (message.count > maxKeys(this.view))
      throw violation(`SYNC strata claims ${message.count} messages`);
    if (message.since !== w.since) this.windowOf(message.since, w.until);
    this.pushAllowance = message.count;
    const theirs: Iblt[] = [];
    for (let i = 0; i < STRATA; i++) {
      const at = i * STRATUM_CELLS * 14;
      theirs.push(
        Iblt.decodeCells(message.cells.subarray(at, at + STRATUM_CELLS * 14), STRATUM_CELLS),
      );
    }
    const estimate = estimateDifference(strataOf((this.window as Window).keys), theirs);
    return this.sendSketch(cellsFor(estimate));
  }

  /** A sketch of `cells` cells, or (0, or too large for a frame) every key in LIST frames. */
  private sendSketch(cells: number): SyncAction[] {
    const w = this.window as Window;
    if (cells > 0 && cells <= MAX_SKETCH_CELLS)
      return [send(encodeSyncSketch(this.id, Iblt.of(w.keys, cells).encode()))];
    const actions: SyncAction[] = [];
    const words = w.keys.words;
    for (let at = 0; at < w.keys.size || at === 0; at += MAX_KEYS_PER_FRAME) {
      const n = Math.min(MAX_KEYS_PER_FRAME, w.keys.size - at);
      const keys = wordsToBytes(words.subarray(at * 2, (at + n) * 2));
      const last = at + n >= w.keys.size;
      actions.push(send(encodeSyncKeys(SyncOp.List, this.id, last, keys)));
      if (last) break;
    }
    return actions;
  }

  private onWant(message: KeysMessage): SyncAction[] {
    const w = this.window as Window;
    const wanted = new Set<string>();
    const words = bytesToWords(message.keys);
    for (let i = 0; i < words.length / 2; i++) wanted.add(keyString(words, i));
    const ids = idsOf(w, wanted);
    this.pushed += wanted.size;
    if (this.pushed > w.keys.size) throw violation("SYNC asks for more than we hold");
    const actions: SyncAction[] = ids.length > 0 ? [{ kind: "push", ids }] : [];
    if (message.last) {
      this.finished = true;
      actions.push({ kind: "done", inSync: false, pushed: this.pushed, wanted: 0 });
    }
    return actions;
  }

  private onSketch(message: Extract<SyncMessage, { op: typeof SyncOp.Sketch }>): SyncAction[] {
    const w = this.window as Window;
    const theirs = Iblt.decodeCells(message.cells, message.cellCount);
    const diff = Iblt.of(w.keys, message.cellCount).minus(theirs).decode();
    if (diff === undefined) {
      this.retries++;
      const bigger = message.cellCount * 2;
      const next = this.retries > MAX_RETRIES || bigger > MAX_SKETCH_CELLS ? 0 : bigger;
      return [send(encodeSyncRetry(this.id, next))];
    }
    return this.settle(diff.ours, diff.theirs);
  }

  private onList(message: KeysMessage): SyncAction[] {
    const words = bytesToWords(message.keys);
    this.listed ??= new Set();
    for (let i = 0; i < words.length / 2; i++) this.listed.add(keyString(words, i));
    if (this.listed.size > maxKeys(this.view))
      throw violation(`SYNC lists more than ${maxKeys(this.view)} messages`);
    if (!message.last) return [];
    const w = this.window as Window;
    const ours: number[] = [];
    const own = new Set<string>();
    for (let i = 0; i < w.keys.size; i++) {
      const key = keyString(w.keys.words, i);
      own.add(key);
      if (!this.listed.has(key))
        ours.push(w.keys.words[i * 2] as number, w.keys.words[i * 2 + 1] as number);
    }
    const theirs: number[] = [];
    for (const key of this.listed) if (!own.has(key)) theirs.push(...stringToWords(key));
    this.listed = undefined;
    return this.settle(
      { words: Uint32Array.from(ours), size: ours.length / 2 },
      { words: Uint32Array.from(theirs), size: theirs.length / 2 },
    );
  }

  /** The responder knows both differences: push ours, ask for theirs, and end the round. */
  private settle(ours: KeySet, theirs: KeySet): SyncAction[] {
    const w = this.window as Window;
    const mine = new Set<string>();
    for (let i = 0; i < ours.size; i++) mine.add(keyString(ours.words, i));
    const ids = idsOf(w, mine);
    const actions: SyncAction[] = ids.length > 0 ? [{ kind: "push", ids }] : [];
    for (let i = 0; i < theirs.size; i++) this.wantedKeys.add(keyString(theirs.words, i));
    for (let at = 0; at < theirs.size || at === 0; at += MAX_KEYS_PER_FRAME) {
      const n = Math.min(MAX_KEYS_PER_FRAME, theirs.size - at);
      const last = at + n >= theirs.size;
      const keys = wordsToBytes(theirs.words.subarray(at * 2, (at + n) * 2));
      actions.push(send(encodeSyncKeys(SyncOp.Want, this.id, last, keys)));
      if (last) break;
    }
    this.finished = true;
    actions.push({ kind: "done", inSync: false, pushed: ids.length, wanted: theirs.size });
    return actions;
  }

  /** Keys of the ids in `[since, until)`, kept as this round's window. */
  private windowOf(since: number, until: number): Window {
    const ids: string[] = [];
    for (const [id, sentAt] of this.view.ids()) if (sentAt >= since && sentAt < until) ids.push(id);
    const w = { since, until, ids, keys: keySet(ids, ids.length, this.salt) };
    this.window = w;
    return w;
  }
}

/**
 * The start of the window a peer reconciles: its oldest kept `sentAt`, plus a margin of
 * {@link SYNC_MARGIN_MS}, or a tenth of the retention when that is shorter (so that a
 * short `--keep` still syncs most of what it keeps).
 */
function oldestSynced(view: SyncView, now: number): number {
  const horizon = view.horizon(now);
  return horizon + Math.min(SYNC_MARGIN_MS, (now - horizon) / 10);
}

/**
 * Most keys a neighbour may claim or list in a round: twice what we keep. A store runs a
 * little over its cap between prunes, and a neighbour may keep more than we do; past
 * twice, it is not an honest peer's store but an attempt on our memory.
 */
function maxKeys(view: SyncView): number {
  return 2 * view.maxMessages;
}

/** A LIST or WANT frame. */
type KeysMessage = { readonly last: boolean; readonly keys: Uint8Array };

function send(frame: Uint8Array): SyncAction {
  return { kind: "send", frame };
}

function violation(message: string): ProtocolError {
  return new ProtocolError("BAD_FIELD", message);
}

/** A key (words `2i`, `2i + 1`) as a 4-character string, for sets. */
function keyString(words: Uint32Array, i: number): string {
  const hi = words[i * 2] as number;
  const lo = words[i * 2 + 1] as number;
  return String.fromCharCode(hi >>> 16, hi & 0xffff, lo >>> 16, lo & 0xffff);
}

function stringToWords(key: string): Words {
  return [
    ((key.charCodeAt(0) << 16) | key.charCodeAt(1)) >>> 0,
    ((key.charCodeAt(2) << 16) | key.charCodeAt(3)) >>> 0,
  ];
}

/** The ids of the window whose keys are in `keys`. */
function idsOf(w: Window, keys: ReadonlySet<string>): string[] {
  const found: string[] = [];
  if (keys.size === 0) return found;
  for (let i = 0; i < w.keys.size; i++)
    if (keys.has(keyString(w.keys.words, i))) found.push(w.ids[i] as string);
  return found;
}

function wordsToBytes(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(i * 4, words[i] as number);
  return out;
}

function bytesToWords(bytes: Uint8Array): Uint32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4);
  return words;
}
