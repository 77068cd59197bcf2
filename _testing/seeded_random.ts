/**
 * A small seeded random generator, so that random chunkings and random read
 * sizes replay exactly from their seed.
 *
 * @module
 */

/**
 * A small seeded generator (xorshift32) of numbers in [0, 1): the same seed
 * gives the same sequence on every run and platform.
 */
export function seededRandom(seed: number): () => number {
  // Spread nearby seeds apart; xorshift must never start at 0.
  let x = Math.imul((seed | 0) ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  if (x === 0) x = 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}
