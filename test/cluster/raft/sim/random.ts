/**
 * A seeded pseudo-random generator (mulberry32, seeded through splitmix32): the one source of randomness of a
 * simulated run, so a seed replays the run exactly.
 */
export class Random {
  private state: number

  constructor(seed: number) {
    this.state = splitmix32(seed >>> 0)
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  chance(probability: number): boolean {
    return this.next() < probability
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[Math.floor(this.next() * items.length)]!
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items]
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1))
      ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
    }
    return copy
  }

  /** A new generator whose sequence depends only on this seed and `salt` (for independent streams). */
  fork(salt: number): Random {
    return new Random(splitmix32((this.state ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0))
  }

  /** This generator as the `() => number` that code under test takes. */
  get fn(): () => number {
    return () => this.next()
  }
}

function splitmix32(seed: number): number {
  let z = (seed + 0x9e3779b9) | 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}
