import { type SyncAction, SyncSession, type SyncView } from "../../src/history/sync-session.ts";

/**
 * Reconciliation rounds between two stores in memory, frame by frame: what the tests of
 * the sync session and the benchmark (scripts/bench.ts) measure.
 */

export const NOW = 1_800_000_000_000;
const KEEP_MS = 7 * 86_400_000;

/** A store's ids: `n` random 16-byte ids (latin1) sent over the last day (not the last minute). */
export function ids(random: () => number, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    let id = "";
    for (let j = 0; j < 16; j++) id += String.fromCharCode(Math.floor(random() * 256));
    m.set(id, NOW - 60_000 - Math.floor(random() * 86_400_000));
  }
  return m;
}

function view(m: Map<string, number>, maxMessages = 200_000): SyncView {
  return { ids: () => m, horizon: (now) => now - KEEP_MS, maxMessages };
}

/**
 * Runs one round between two stores, in memory: returns what each side pushed, the
 * frames each way and their bytes, and the round trips (a reply to the other side's
 * frames is one more half trip).
 */
export function round(a: Map<string, number>, b: Map<string, number>, maxMessages?: number) {
  const [initiator, begin] = SyncSession.begin(7, [1, 2], view(a, maxMessages), NOW);
  let responder: SyncSession | undefined;
  const pushed = { a: [] as string[], b: [] as string[] };
  const bytes = { a: begin.length, b: 0 };
  let halfTrips = 1;
  let toB: Uint8Array[] = [begin];
  let toA: Uint8Array[] = [];
  const take = (actions: SyncAction[], side: "a" | "b", out: Uint8Array[]) => {
    for (const action of actions) {
      if (action.kind === "send") {
        out.push(action.frame);
        bytes[side] += action.frame.length;
      } else if (action.kind === "push") pushed[side].push(...action.ids);
    }
  };
  while (toB.length > 0 || toA.length > 0) {
    const next: Uint8Array[] = [];
    for (const frame of toB) {
      const message = SyncSession.decode(frame.subarray(5));
      if (responder === undefined && message.op === 1) {
        const [session, actions] = SyncSession.answer(message, view(b, maxMessages), NOW);
        responder = session;
        take(actions, "b", next);
      } else take((responder as SyncSession).receive(message), "b", next);
    }
    toB = [];
    if (next.length > 0) halfTrips++;
    toA = next;
    const back: Uint8Array[] = [];
    for (const frame of toA)
      take(initiator.receive(SyncSession.decode(frame.subarray(5))), "a", back);
    toA = [];
    if (back.length > 0) halfTrips++;
    toB = back;
  }
  return {
    initiator,
    responder: responder as SyncSession,
    pushed,
    bytes,
    roundTrips: halfTrips / 2,
  };
}
