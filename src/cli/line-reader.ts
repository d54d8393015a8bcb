/** When queued bytes towards neighbours pass this, piped input waits for them to drain. */
export const INPUT_HIGH_WATER_BYTES = 1024 * 1024;

/** A partial line longer than this is handed on in pieces rather than buffered further. */
export const MAX_LINE_BUFFER_BYTES = 64 * 1024;

/**
 * Reads piped stdin line by line, for as long as it lasts. Before each line it awaits
 * `ready()`, so a large file piped in is sent as fast as the neighbours take it rather
 * than piling up in memory (and getting them dropped as slow consumers).
 *
 * A line that fails is reported to `onError` and reading goes on; only the input itself
 * ending or failing (EOF, EBADF) ends the loop. Never rejects.
 */
export async function readLines(
  input: AsyncIterable<Uint8Array | string>,
  handlers: {
    line: (line: string) => void | Promise<void>;
    error: (error: unknown) => void;
    ready?: () => Promise<void>;
  },
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  const emit = async (line: string) => {
    try {
      await handlers.ready?.();
      await handlers.line(line);
    } catch (error) {
      handlers.error(error);
    }
  };
  try {
    for await (const chunk of input) {
      partial += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      let newline = partial.indexOf("\n");
      while (newline >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        await emit(line);
        newline = partial.indexOf("\n");
      }
      if (partial.length > MAX_LINE_BUFFER_BYTES) {
        const piece = partial;
        partial = "";
        await emit(piece);
      }
    }
  } catch {
    // stdin closed under us (EBADF, EPIPE): the same as the end of input.
  }
  partial += decoder.decode();
  if (partial.length > 0) await emit(partial);
}
