/** A seeded PRNG (mulberry32): the same seed gives the same test, and failures print it. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export function randomInt(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

/** `n` random bytes from `random`. */
export function randomBytes(random: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = randomInt(random, 256);
  return out;
}

/** The seed for a randomized test: `TEST_SEED` if set (to replay a failure), else fixed. */
export function testSeed(fallback: number): number {
  const fromEnv = process.env.TEST_SEED;
  return fromEnv ? Number(fromEnv) : fallback;
}
