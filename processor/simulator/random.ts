/**
 * The simulator's randomness, all of it from a seed, so that a seed names one fleet and one stream of readings.
 *
 * - `Random` is sfc32 (Chris Doty-Humphrey's Small Fast Counter, 128 bits of state, passes PractRand and BigCrush),
 *   seeded through splitmix32. It is a few lines here rather than a library on purpose: the readings of a seed must
 *   stay the same across Brook versions, and a dependency's upgrade could change its sequence.
 * - `unitHash` gives a fixed property (a device's baseline, its cycle's phase) from the seed and the property's
 *   coordinates, so that a device keeps its character whatever else the run draws, e.g. device 7's baselines do not
 *   change with --devices or --rate.
 */

const TWO_POW_32 = 0x1_0000_0000

/** MurmurHash3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The low and high 32 bits of a seed (a whole number from 0 to 2^53-1). */
function seedWords(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / TWO_POW_32) >>> 0]
}

/** A number in [0, 1) fixed by the seed and the coordinates (small whole numbers). */
export function unitHash(seed: number, ...coordinates: number[]): number {
  let h = seedHash(seed)
  for (const c of coordinates) h = mixCoordinate(h, c)
  return h / TWO_POW_32
}

/** What unitHash starts from for a seed: `unitHash3(seedHash(seed), a, b, c)` is `unitHash(seed, a, b, c)`. */
export function seedHash(seed: number): number {
  const [low, high] = seedWords(seed)
  return fmix32(low ^ fmix32(high ^ 0x9e3779b9))
}

/** unitHash of three coordinates from a seedHash, without the argument array (the simulator's hot path). */
export function unitHash3(seedHashed: number, a: number, b: number, c: number): number {
  return mixCoordinate(mixCoordinate(mixCoordinate(seedHashed, a), b), c) / TWO_POW_32
}

function mixCoordinate(h: number, c: number): number {
  return fmix32(h ^ Math.imul(c + 1, 0x9e3779b1))
}

/** A standard normal number from two independent uniform ones in [0, 1) (Box-Muller). */
export function normalFrom(u1: number, u2: number): number {
  // 1 - u1 is in (0, 1], so the logarithm is finite.
  return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2)
}

/** A seeded stream of uniform and normal numbers (sfc32). */
export class Random {
  private a: number
  private b: number
  private c: number
  private d = 1
  /** Box-Muller makes normals in pairs; the second waits here. */
  private spare: number | null = null

  /** `stream` tells apart independent streams of one seed. */
  constructor(seed: number, stream = 0) {
    const [low, high] = seedWords(seed)
    let state = fmix32(low ^ 0x6a09e667) ^ fmix32(high ^ 0xbb67ae85) ^ fmix32(stream + 0x3c6ef372)
    const splitmix32 = (): number => {
      state = (state + 0x9e3779b9) >>> 0
      return fmix32(state)
    }
    this.a = splitmix32()
    this.b = splitmix32()
    this.c = splitmix32()
    // The first outputs of a freshly seeded sfc32 are still close to the seed's bits.
    for (let i = 0; i < 12; i++) this.uint32()
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / TWO_POW_32
  }

  /** A whole number from low to high, both included. */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1))
  }

  /** Standard normal (mean 0, standard deviation 1), by Box-Muller. */
  normal(): number {
    if (this.spare !== null) {
      const value = this.spare
      this.spare = null
      return value
    }
    // 1 - next() is in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()))
    const angle = 2 * Math.PI * this.next()
    this.spare = radius * Math.sin(angle)
    return radius * Math.cos(angle)
  }
}
