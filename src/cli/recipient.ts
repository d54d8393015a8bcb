import { sanitize } from "./format.ts";
import { keyTag, type NickBook } from "./nick-book.ts";

/** Hex digits of a node id shown beside a nick to tell candidates apart. */
const SHOWN_ID_DIGITS = 8;

/** Who a `/msg` (or `/ignore`) means, or why it means nobody: the user is told, nothing is done. */
export type Recipient =
  | { readonly status: "found"; readonly nodeId: string; readonly nick: string | undefined }
  | { readonly status: "refused"; readonly message: string };

/**
 * Resolves the NAME of `/msg NAME TEXT` against the identities this peer has heard of:
 * exactly one must match. None, or several, and the user is shown the candidates (the
 * ones that match, or the ones with a similar nick) and how to name one exactly.
 */
export function resolveRecipient(book: NickBook, name: string): Recipient {
  const found = book.candidates(name);
  const [only] = found;
  if (found.length === 1 && only !== undefined) return { status: "found", ...only };
  const shownName = sanitize(name);
  if (found.length > 1) {
    const list = found.map((c) => describe(c.nodeId, c.nick)).join(", ");
    return {
      status: "refused",
      message: `"${shownName}" could be any of ${list}; name one as nick#tag, or by 8 or more hex digits of its node id`,
    };
  }
  const similar = book.similar(name);
  if (similar.length > 0) {
    const list = similar.map((c) => describe(c.nodeId, c.nick)).join(", ");
    return {
      status: "refused",
      message: `nobody known as "${shownName}"; known: ${list}`,
    };
  }
  return {
    status: "refused",
    message: `nobody known as "${shownName}" (/who lists who is here; a whole 64-digit node id always works)`,
  };
}

/** `alice#k3f9 (d75a9801)`: enough to tell two of one nick apart, and to copy. */
function describe(nodeId: string, nick: string | undefined): string {
  const id = nodeId.slice(0, SHOWN_ID_DIGITS);
  return nick === undefined ? id : `${sanitize(nick)}#${keyTag(nodeId)} (${id})`;
}
