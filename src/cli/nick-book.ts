import { sanitize } from "./format.ts";

/** Nicks remembered at most; past it the oldest are forgotten (they were long quiet). */
const MAX_REMEMBERED = 10_000;

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * The short key tag shown after a nick: the first 20 bits of the node id (an Ed25519
 * public key) in lowercase base32, `k3f9`. Not a proof of anything, but a copied nick
 * shows a different tag, and the node id itself is in `/who` and the JSON events.
 */
export function keyTag(nodeIdHex: string): string {
  const bits = Number.parseInt(nodeIdHex.slice(0, 5), 16);
  let tag = "";
  for (let shift = 15; shift >= 0; shift -= 5) tag += BASE32[(bits >> shift) & 31];
  return tag;
}

/**
 * Which identities use which nick, so that a nick is shown as `alice#k3f9` whenever two
 * identities (ourselves included) have used it: a copied nick cannot pass for the
 * original. Nicks are compared as people read them: case-folded, NFKC-normalised.
 */
export class NickBook {
  /** node id → latest nick. Map order: least recently seen first. */
  private readonly nicks = new Map<string, string>();
  /** normalised nick → node ids that used it. */
  private readonly holders = new Map<string, Set<string>>();

  /** Notes that `nodeId` goes by `nick`; returns how to show it. */
  label(nodeId: string, nick: string): string {
    this.see(nodeId, nick);
    const others = this.holders.get(normalise(nick));
    const shown = sanitize(nick);
    return others && others.size > 1 ? `${shown}#${keyTag(nodeId)}` : shown;
  }

  /** How to show `nodeId`: its label if a nick is known, else its first 8 hex digits. */
  shown(nodeId: string): string {
    const nick = this.nicks.get(nodeId);
    return nick === undefined ? nodeId.slice(0, 8) : this.label(nodeId, nick);
  }

  /** The latest nick seen for `nodeId`, if any. */
  nickOf(nodeId: string): string | undefined {
    return this.nicks.get(nodeId);
  }

  /**
   * Who `name` may mean, as `/msg` takes it: 8 to 64 hex digits are a node-id prefix (a
   * whole id answers even when unknown); `nick#tag` is a nick and its key tag; anything
   * else, a nick (the latest each identity used; an older one if none uses it now).
   */
  candidates(name: string): Array<{ nodeId: string; nick: string | undefined }> {
    if (/^[0-9a-f]{8,64}$/i.test(name)) {
      const prefix = name.toLowerCase();
      const found = [...this.nicks]
        .filter(([id]) => id.startsWith(prefix))
        .map(([nodeId, nick]) => ({ nodeId, nick }));
      if (found.length === 0 && prefix.length === 64) return [{ nodeId: prefix, nick: undefined }];
      return found;
    }
    const hash = name.lastIndexOf("#");
    const tag = hash > 0 ? name.slice(hash + 1).toLowerCase() : undefined;
    const key = normalise(hash > 0 ? name.slice(0, hash) : name);
    const holders = [...(this.holders.get(key) ?? [])].filter(
      (id) => tag === undefined || keyTag(id) === tag,
    );
    const current = holders.filter((id) => normalise(this.nicks.get(id) ?? "") === key);
    return (current.length > 0 ? current : holders).map((nodeId) => ({
      nodeId,
      nick: this.nicks.get(nodeId),
    }));
  }

  /** Known nicks that look like `name` (share its first letters), for a "did you mean". */
  similar(name: string, limit = 8): Array<{ nodeId: string; nick: string }> {
    const key = normalise(name.split("#")[0] ?? "");
    const stem = key.slice(0, Math.max(1, Math.min(3, key.length - 1)));
    const found: Array<{ nodeId: string; nick: string }> = [];
    for (const [nodeId, nick] of [...this.nicks].reverse()) {
      if (found.length >= limit) break;
      if (normalise(nick).startsWith(stem)) found.push({ nodeId, nick });
    }
    return found;
  }

  /** Records `nick` for `nodeId` (the old one is kept too: it may still be in view). */
  see(nodeId: string, nick: string): void {
    this.nicks.delete(nodeId);
    this.nicks.set(nodeId, nick);
    const key = normalise(nick);
    let set = this.holders.get(key);
    if (!set) {
      set = new Set();
      this.holders.set(key, set);
    }
    set.add(nodeId);
    if (this.nicks.size > MAX_REMEMBERED) this.forgetOldest();
  }

  private forgetOldest(): void {
    const nodeId = this.nicks.keys().next().value as string;
    this.nicks.delete(nodeId);
    for (const [key, set] of this.holders) {
      if (!set.delete(nodeId)) continue;
      if (set.size === 0) this.holders.delete(key);
    }
  }
}

function normalise(nick: string): string {
  return nick.normalize("NFKC").toLowerCase();
}
