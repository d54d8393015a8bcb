/**
 * The `peerchat` executable: what `bun run start` runs and `bun build --compile` bundles.
 */
import { main } from "./cli/main.ts";

process.exit(await main(process.argv.slice(2)));
