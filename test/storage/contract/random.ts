/** Seeded randomness for the property scenarios, so a failing run can be repeated with `SEED=<n>`. */

export { seeded } from '../../helpers/random.js'

/** Whole numbers in [low, high] from `next`. */
export function integers(next: () => number): (low: number, high: number) => number {
  return (low, high) => low + Math.floor(next() * (high - low + 1))
}

/** The seeds a property scenario runs: `defaults`, or the one in SEED. */
export function seeds(defaults: number[]): number[] {
  return process.env.SEED ? [Number(process.env.SEED)] : defaults
}
