import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { nickProblem } from "../protocol/text.ts";
import { MAX_INPUT_CHARS, MAX_INPUT_HISTORY } from "./line-editor.ts";

/** Most bytes read from either file: anything longer was not written by peerchat. */
const MAX_SETTINGS_FILE_BYTES = 4 * 1024 * 1024;

/** Identities `/ignore` keeps at most. */
export const MAX_IGNORED = 1_000;

/** What the interactive chat remembers between runs. */
export interface Settings {
  /** The nick last chosen with `/nick`; `--nick` wins over it. */
  readonly nick?: string;
  /** Node ids (hex) whose messages are not shown (`/ignore`). */
  readonly ignored: readonly string[];
}

/**
 * Where the chat keeps what it remembers (`settings.json`, `input-history`):
 * `$XDG_STATE_HOME/peerchat`, else `~/.local/state/peerchat`.
 */
export function defaultStateDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(base, "peerchat");
}

/**
 * The remembered nick, ignore list and typed lines, in `dir`. Reading never fails: a
 * missing, unreadable or mangled file (it is the user's to edit) counts as empty, and
 * what does not parse is left out. Writing is best effort, and atomic (a temporary file,
 * then a rename), so a crash or a full disk never leaves half a file.
 */
export class SettingsFile {
  constructor(readonly dir: string) {}

  /** The settings, with anything that does not parse left out. */
  load(): Settings {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readBounded(join(this.dir, "settings.json")) ?? "{}");
    } catch {
      parsed = {};
    }
    const raw = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<
      string,
      unknown
    >;
    const nick = typeof raw.nick === "string" && !nickProblem(raw.nick) ? raw.nick : undefined;
    const ignored = Array.isArray(raw.ignored)
      ? raw.ignored
          .filter((id): id is string => typeof id === "string" && /^[0-9a-f]{64}$/.test(id))
          .slice(0, MAX_IGNORED)
      : [];
    return nick === undefined ? { ignored } : { nick, ignored };
  }

  /** Replaces the settings. */
  save(settings: Settings): void {
    this.write("settings.json", `${JSON.stringify(settings, null, 2)}\n`);
  }

  /** The lines typed in earlier runs, oldest first. */
  loadInputHistory(): string[] {
    const text = readBounded(join(this.dir, "input-history")) ?? "";
    return text
      .split("\n")
      .filter((line) => line.trim() !== "" && line.length <= MAX_INPUT_CHARS)
      .slice(-MAX_INPUT_HISTORY);
  }

  /** Remembers the typed lines (the last {@link MAX_INPUT_HISTORY}). */
  saveInputHistory(lines: readonly string[]): void {
    const kept = lines.filter((line) => !line.includes("\n")).slice(-MAX_INPUT_HISTORY);
    this.write("input-history", kept.length === 0 ? "" : `${kept.join("\n")}\n`);
  }

  private write(name: string, text: string): void {
    const path = join(this.dir, name);
    const temporary = `${path}.${process.pid}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      // Typed lines may be private: only the user reads them.
      writeFileSync(temporary, text, { mode: 0o600 });
      renameSync(temporary, path);
    } catch {
      // Remembering is a convenience: a read-only or full disk must not stop the chat.
      rmSync(temporary, { force: true });
    }
  }
}

function readBounded(path: string): string | undefined {
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_SETTINGS_FILE_BYTES) return undefined;
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}
