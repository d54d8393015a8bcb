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

  /** The latest nick seen for `nodeId`, if any. */
  nickOf(nodeId: string): string | undefined {
    return this.nicks.get(nodeId);
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
