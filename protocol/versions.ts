/**
 * Version ranges in Kafka's own syntax, as the message JSON writes them:
 * `'3+'` (3 and up), `'0-2'` (inclusive), `'5'` (exactly 5), `'none'` (never).
 */
export type VersionRange = string

export interface ParsedRange {
  readonly min: number
  /** Inclusive; `Infinity` for an open range. */
  readonly max: number
}

const NEVER: ParsedRange = { min: 1, max: 0 }
const cache = new Map<string, ParsedRange>()

export function parseRange(range: VersionRange): ParsedRange {
  let parsed = cache.get(range)
  if (parsed) return parsed
  if (range === 'none') parsed = NEVER
  else if (range.endsWith('+')) parsed = { min: Number(range.slice(0, -1)), max: Infinity }
  else if (range.includes('-')) {
    const [min, max] = range.split('-').map(Number)
    parsed = { min: min!, max: max! }
  } else parsed = { min: Number(range), max: Number(range) }
  if (Number.isNaN(parsed.min) || Number.isNaN(parsed.max)) throw new Error(`bad version range '${range}'`)
  cache.set(range, parsed)
  return parsed
}

export function inRange(range: VersionRange | undefined, version: number): boolean {
  if (range === undefined) return false
  const { min, max } = parseRange(range)
  return version >= min && version <= max
}
