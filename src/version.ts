import pkg from "../package.json" with { type: "json" };

/** The package version, printed by `peerchat --version`. */
export const VERSION: string = pkg.version;
