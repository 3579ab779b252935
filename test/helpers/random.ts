/**
 * Seeded randomness for property and fuzz tests: the same seed gives the same cases on every machine, so a failing
 * run prints its seed and can be repeated.
 */

/** Numbers in [0, 1) from mulberry32, a small, well-mixed 32-bit generator seeded with `seed`. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Whole numbers in [0, below) from the generator seeded with `seed`. */
export function seededBelow(seed: number): (below: number) => number {
  const next = seeded(seed)
  return (below) => Math.floor(next() * below)
}
