/** Seeded randomness for the property scenarios, so a failing run can be repeated with `SEED=<n>`. */

/** Numbers in [0, 1) from mulberry32, a small generator seeded with `seed`. */
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

/** Whole numbers in [low, high] from `next`. */
export function integers(next: () => number): (low: number, high: number) => number {
  return (low, high) => low + Math.floor(next() * (high - low + 1))
}

/** The seeds a property scenario runs: `defaults`, or the one in SEED. */
export function seeds(defaults: number[]): number[] {
  return process.env.SEED ? [Number(process.env.SEED)] : defaults
}
