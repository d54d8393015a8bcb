/**
 * A line saying `nick` is in the room: `bob joined`, `bob is here`, or the newcomer's
 * one line about those already there, `3 here: carol (you), alice, bob` (which of these
 * a peer prints depends on who was first: a test must accept each).
 */
export function arrived(nick: string): RegExp {
  return new RegExp(`\\b${nick} (joined|is here)|\\d+ here: .*\\b${nick}\\b`);
}
