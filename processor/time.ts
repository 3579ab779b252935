/**
 * Durations in the DSL: milliseconds as a number, or a string with a unit (`'500ms'`, `'10s'`, `'1m'`, `'2h'`,
 * `'1d'`). Everything inside the processor is milliseconds since the epoch (event time) or milliseconds (durations).
 */
import { TopologyError } from './errors.js'

export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** A duration in milliseconds; throws TopologyError for a negative, fractional-millisecond or malformed one. */
export function toMs(duration: Duration, what: string): number {
  let ms: number
  // A JavaScript pipeline, or TypeScript run without type checks, can leave an option out.
  if (duration === undefined || duration === null) throw new TopologyError(`${what} is missing: give a number of ms or e.g. '10s', '1m' (0 for none)`)
  if (typeof duration === 'number') {
    ms = duration
  } else {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(duration)
    if (!match) throw new TopologyError(`${what}: '${duration}' is not a duration (use a number of ms or e.g. '10s', '1m')`)
    ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
  }
  if (!Number.isSafeInteger(ms) || ms < 0) throw new TopologyError(`${what}: ${duration} is not a whole number of milliseconds >= 0`)
  return ms
}

/** Renders milliseconds the short way (`60000` -> `1m`), for describe output and log lines. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
