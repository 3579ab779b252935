/**
 * Anomaly operators for sensor streams. They read the final results of a windowed aggregation (one record per
 * group and window, in window order per group) and emit an alert record when a result is anomalous:
 *
 *   { ...groupFields, windowStart, windowEnd, value, baseline, score, reason }
 *
 *   threshold      value above `above` or below `below` (or the bounds `per` gives the result's group, e.g. its
 *                  sensor); baseline = the bound crossed, score = value - bound
 *   z-score        baseline = mean of the same group's previous `baselineWindows` results (never the current one);
 *                  score = (value - baseline) / their sample stddev; alert when |score| >= `threshold` once at least
 *                  `minBaselineWindows` results are in the baseline. A flat baseline (stddev 0) gives no score.
 *   rate of change baseline = the group's previous result; score = (value - baseline) per second between the two
 *                  windows' starts; alert when |score| > `maxPerSecond`
 *
 * State (z-score: the last values; rate of change: the previous result) is kept per group in the task's store,
 * so it survives restarts and moves with its partition.
 */
import { ProcessorErrorCode, RecordError, TopologyError } from './errors.js'
import type { KeyedState } from './state/task-store.js'

/** A threshold's bounds: alert above `above` or below `below` (either may be absent). */
export interface ThresholdBounds {
  readonly above?: number
  readonly below?: number
}

/**
 * Bounds per value of a result's field (`{ field: 'sensor', bounds: { pressure: { above: 1050, below: 975 } } }`): a
 * result whose `field` is one of `bounds`' names is held against those bounds instead of the threshold's own.
 */
export interface ThresholdPer {
  readonly field: string
  readonly bounds: Readonly<Record<string, ThresholdBounds>>
}

export type DetectorSpec =
  | ({ readonly kind: 'threshold'; readonly field: string; readonly per?: ThresholdPer } & ThresholdBounds)
  | { readonly kind: 'zscore'; readonly field: string; readonly threshold: number; readonly baselineWindows: number; readonly minBaselineWindows: number }
  | { readonly kind: 'rateOfChange'; readonly field: string; readonly maxPerSecond: number }

/**
 * A threshold on a window result's `field`: an alert when it is above `above` or below `below`; with `per`, a result
 * whose `per.field` names one of `per.bounds` is held against those bounds instead (a result of a group not named
 * there, against `above` and `below`, if any). Errors: a TopologyError when no bound is given anywhere, or when a
 * band's `below` is not below its `above` (every result would alert).
 */
export function threshold(options: { field: string; above?: number; below?: number; per?: ThresholdPer }): DetectorSpec {
  const bands: [string, ThresholdBounds][] = [['', options], ...Object.entries(options.per?.bounds ?? {}).map(([name, b]): [string, ThresholdBounds] => [` for ${options.per!.field} ${name}`, b])]
  if (bands.every(([, b]) => b.above === undefined && b.below === undefined)) throw new TopologyError('threshold needs `above`, `below` or both')
  for (const [which, b] of bands) {
    if (b.above !== undefined && b.below !== undefined && b.below >= b.above) throw new TopologyError(`threshold${which}: below ${b.below} must be below above ${b.above}: with the band empty, every window would raise an alert`)
  }
  return { kind: 'threshold', ...options }
}

export function zScore(options: { field: string; threshold?: number; baselineWindows?: number; minBaselineWindows?: number }): DetectorSpec {
  const spec = { kind: 'zscore' as const, field: options.field, threshold: options.threshold ?? 3, baselineWindows: options.baselineWindows ?? 30, minBaselineWindows: options.minBaselineWindows ?? 10 }
  if (!(spec.threshold > 0)) throw new TopologyError('zScore threshold must be more than 0')
  if (!Number.isInteger(spec.baselineWindows) || spec.baselineWindows < 2) throw new TopologyError('zScore baselineWindows must be an integer >= 2')
  if (spec.minBaselineWindows < 2 || spec.minBaselineWindows > spec.baselineWindows) throw new TopologyError('zScore minBaselineWindows must be within [2, baselineWindows]')
  return spec
}

export function rateOfChange(options: { field: string; maxPerSecond: number }): DetectorSpec {
  if (!(options.maxPerSecond > 0)) throw new TopologyError('rateOfChange maxPerSecond must be more than 0')
  return { kind: 'rateOfChange', ...options }
}

/** The input a detector reads: a window result (its group fields, window bounds and aggregate fields). */
export interface WindowedValue {
  readonly windowStart: number
  readonly windowEnd: number
  readonly [field: string]: unknown
}

export interface Alert {
  windowStart: number
  windowEnd: number
  value: number
  baseline: number
  score: number
  reason: string
  [field: string]: unknown
}

/** Per-group detector state: z-score keeps recent values, rate of change the previous [windowStart, value]. */
export type DetectorState = number[] | [number, number]

/**
 * `x` to 6 decimals. Past about 1.8e302, `x * 1e6` is Infinity, which JSON writes as null: an alert on a reading of
 * -1e308 had a null score. So large a number has no digits below 1e-6 to drop, and is kept as it is.
 */
function round(x: number): number {
  const rounded = Math.round(x * 1e6) / 1e6
  return Number.isFinite(rounded) ? rounded : x
}

/** One detector of one task. `groupFields` are the result's identity fields, copied into every alert. */
export class Detector {
  constructor(
    private readonly spec: DetectorSpec,
    private readonly state: KeyedState<DetectorState>,
  ) {}

  /** The alert for one window result, or null; updates the group's baseline. */
  async check(group: string, result: WindowedValue, groupFields: Record<string, unknown>): Promise<Alert | null> {
    const raw = result[this.spec.field]
    if (raw === null || raw === undefined) return null
    if (typeof raw !== 'number' || !Number.isFinite(raw)) throw new RecordError(ProcessorErrorCode.notNumeric, `field '${this.spec.field}' of a window result is not a number`)
    const value = raw
    const alert = (baseline: number, score: number, reason: string): Alert => ({
      ...groupFields,
      windowStart: result.windowStart,
      windowEnd: result.windowEnd,
      value,
      baseline: round(baseline),
      score: round(score),
      reason,
    })
    switch (this.spec.kind) {
      case 'threshold': {
        const { above, below } = boundsFor(this.spec, result)
        if (above !== undefined && value > above) return alert(above, value - above, `${this.spec.field} ${value} above ${above}`)
        if (below !== undefined && value < below) return alert(below, value - below, `${this.spec.field} ${value} below ${below}`)
        return null
      }
      case 'zscore': {
        const history = ((await this.state.get(group)) as number[] | undefined) ?? []
        let found: Alert | null = null
        if (history.length >= this.spec.minBaselineWindows) {
          const mean = history.reduce((a, b) => a + b, 0) / history.length
          const sd = Math.sqrt(history.reduce((a, b) => a + (b - mean) ** 2, 0) / (history.length - 1))
          if (sd > 0) {
            const score = (value - mean) / sd
            if (Math.abs(score) >= this.spec.threshold) {
              found = alert(mean, score, `${this.spec.field} z-score ${round(score)} beyond ±${this.spec.threshold} (baseline of ${history.length} windows)`)
            }
          }
        }
        const next = [...history, value]
        if (next.length > this.spec.baselineWindows) next.shift()
        this.state.put(group, next)
        return found
      }
      case 'rateOfChange': {
        const previous = (await this.state.get(group)) as [number, number] | undefined
        this.state.put(group, [result.windowStart, value])
        if (previous === undefined || result.windowStart <= previous[0]) return null
        const perSecond = ((value - previous[1]) * 1000) / (result.windowStart - previous[0])
        if (Math.abs(perSecond) <= this.spec.maxPerSecond) return null
        return alert(previous[1], perSecond, `${this.spec.field} changed ${round(perSecond)}/s, more than ${this.spec.maxPerSecond}/s`)
      }
    }
  }
}

/** The bounds a threshold holds `result` against: those `per` names for its group, else the threshold's own. */
function boundsFor(spec: Extract<DetectorSpec, { kind: 'threshold' }>, result: WindowedValue): ThresholdBounds {
  if (spec.per !== undefined) {
    const group = result[spec.per.field]
    if (typeof group === 'string' && Object.hasOwn(spec.per.bounds, group)) return spec.per.bounds[group]!
  }
  return spec
}
