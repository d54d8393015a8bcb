import type { Output } from "./output.ts";
import { MAX_IGNORED } from "./settings-file.ts";

/** Identities whose messages this user does not want to see (`/ignore`): local, nobody is told. */
export class IgnoreList {
  private readonly ids: Set<string>;

  constructor(
    ids: readonly string[] = [],
    /** Called with the whole list after each change, to remember it. */
    private readonly changed: (ids: readonly string[]) => void = () => {},
  ) {
    this.ids = new Set(ids);
  }

  has(nodeId: string): boolean {
    return this.ids.has(nodeId);
  }

  /** The ignored node ids, in the order they were added. */
  get list(): readonly string[] {
    return [...this.ids];
  }

  /** Ignores `nodeId`; false if the list is full. */
  add(nodeId: string): boolean {
    if (this.ids.has(nodeId)) return true;
    if (this.ids.size >= MAX_IGNORED) return false;
    this.ids.add(nodeId);
    this.changed(this.list);
    return true;
  }

  /** Stops ignoring `nodeId`; false if it was not ignored. */
  remove(nodeId: string): boolean {
    if (!this.ids.delete(nodeId)) return false;
    this.changed(this.list);
    return true;
  }
}

/**
 * `output` without the messages of ignored identities: room messages (live, late,
 * stored) and direct messages. Their presence (joins, leaves) is still shown, so the
 * user knows who is around.
 */
export function withoutIgnored(output: Output, ignore: IgnoreList): Output {
  return {
    ...output,
    message: (m) => (ignore.has(m.origin) ? undefined : output.message(m)),
    late: (m) => (ignore.has(m.origin) ? undefined : output.late(m)),
    backlog: (messages) => output.backlog(messages.filter((m) => !ignore.has(m.origin))),
    history: (messages) => output.history(messages.filter((m) => !ignore.has(m.origin))),
    direct: (m) => (!m.own && ignore.has(m.from) ? undefined : output.direct(m)),
  };
}
