/**
 * The built-in IoT pipeline (`brook process iot`, and what `npm start` runs). Input: readings
 * `{ deviceId, sensor, value, unit, ts }` (ts in ms since the epoch) keyed by deviceId. Per deviceId and sensor:
 *
 *   readings ─▶ validate ─┬─▶ tumbling 1m: count, min, max, avg, stddev, p50, p95, p99 ─▶ readings-stats-1m
 *                         │        ├─▶ threshold on max (above) / min (below) per sensor ┐
 *                         │        └─▶ z-score of avg against the previous 30 windows ─┴─▶ readings-alerts
 *                         └─▶ hopping 5m every 1m: count, avg ─────────────────────────▶ readings-avg-5m
 *   late records ─▶ readings-late        unreadable readings ─▶ <applicationId>-dlq
 *
 * Window results: `{ deviceId, sensor, windowStart, windowEnd, <aggregates> }`, keyed by deviceId.
 */
import { avg, count, max, min, notNumberReason, percentile, stddev } from './aggregate/aggregations.js'
import { threshold, zScore, type ThresholdBounds } from './anomaly.js'
import { jsonOrText, ProcessorErrorCode, RecordError, TopologyError } from './errors.js'
import { TopologyBuilder } from './topology/builder.js'
import { eventTime, type Topology } from './topology/topology.js'
import { formatMs, type Duration } from './time.js'
import { hopping, tumbling, type TimeWindowSpec } from './windows/spec.js'
import { DEFAULT_THRESHOLD_ABOVE, DEFAULT_THRESHOLDS } from './iot-thresholds.js'

/** One sensor reading. */
export interface Reading {
  deviceId: string
  sensor: string
  value: number
  unit?: string
  ts: number
}

export interface IotPipelineOptions {
  /** Default `readings`. */
  inputTopic?: string
  /** Default `readings-stats-1m`. */
  statsTopic?: string
  /** Default `readings-avg-5m`. */
  averagesTopic?: string
  /** Default `readings-alerts`. */
  alertsTopic?: string
  /** Default `readings-late`. */
  lateTopic?: string
  /** Stats window size (default 1m). */
  statsWindow?: Duration
  /** Averages window size and advance (default 5m every 1m). */
  averageWindow?: Duration
  averageAdvance?: Duration
  /** How late a reading may be and still count (default 10s). */
  grace?: Duration
  /**
   * Threshold alerts, for every sensor alike: a window's max above `thresholdAbove`, or its min below
   * `thresholdBelow`. Either one given replaces the default bands, DEFAULT_THRESHOLDS per sensor (any other sensor:
   * max above DEFAULT_THRESHOLD_ABOVE).
   */
  thresholdAbove?: number
  thresholdBelow?: number
  /** z-score alerts on the window average (defaults: |z| >= 4 against the previous 30 windows, at least 10). */
  zScoreThreshold?: number
  zScoreBaselineWindows?: number
  zScoreMinBaselineWindows?: number
}

/** The default bands as a threshold's `per` for one side (`above` on max, `below` on min). */
function defaultBounds(side: keyof ThresholdBounds): { field: string; bounds: Record<string, ThresholdBounds> } {
  const bounds = Object.entries(DEFAULT_THRESHOLDS).map(([sensor, band]: [string, ThresholdBounds]) => [sensor, { [side]: band[side] }])
  return { field: 'sensor', bounds: Object.fromEntries(bounds) }
}

const NAME_FIELDS = ['deviceId', 'sensor'] as const

/** Checks one reading's shape; anything else is a RecordError (the reading goes to the dead-letter topic). */
export function validateReading(value: unknown): Reading {
  if (value === null || typeof value !== 'object') throw new RecordError(ProcessorErrorCode.missingField, 'reading is not an object')
  const r = value as Record<string, unknown>
  for (const field of NAME_FIELDS) {
    const name = r[field]
    if (name === undefined || name === null || name === '') throw new RecordError(ProcessorErrorCode.missingField, `reading has no ${field}`)
    if (typeof name !== 'string') throw new RecordError(ProcessorErrorCode.missingField, `reading ${field} is not a string: ${jsonOrText(name).slice(0, 40)}`)
  }
  if (r.value === undefined || r.value === null) throw new RecordError(ProcessorErrorCode.missingField, 'reading has no value')
  if (typeof r.value !== 'number' || !Number.isFinite(r.value)) throw new RecordError(ProcessorErrorCode.notNumeric, notNumberReason('reading value', r.value, 40))
  return value as Reading
}

export function iotPipeline(options: IotPipelineOptions = {}): Topology {
  const builder = new TopologyBuilder()
  const grace = options.grace ?? '10s'
  const late = options.lateTopic ?? 'readings-late'
  const bySensor = builder
    .stream<unknown>(options.inputTopic ?? 'readings', { eventTime: eventTime.field('ts') })
    .map(validateReading, { name: 'validate' })
    .groupByKey({ fields: (r) => ({ deviceId: r.deviceId, sensor: r.sensor }) })

  // The windowed operators are named after their windows (stats-1m, avg-5m by default): state is kept per operator
  // name, and state kept for one window size cannot make windows of another (runtime/task.ts refuses it), so a run
  // with other sizes keeps its state apart, as a new operator, and the late-records header names the window.
  const statsWindow = tumbling({ size: options.statsWindow ?? '1m', grace }) as TimeWindowSpec
  const averageWindow = hopping({ size: options.averageWindow ?? '5m', advance: options.averageAdvance ?? '1m', grace }) as TimeWindowSpec
  const averagesEvery = averageWindow.advanceMs === 60_000 ? '' : `-every-${formatMs(averageWindow.advanceMs)}`
  const stats = bySensor.windowedBy(statsWindow).aggregate(
    { count: count(), min: min('value'), max: max('value'), avg: avg('value'), stddev: stddev('value'), p50: percentile('value', 0.5), p95: percentile('value', 0.95), p99: percentile('value', 0.99) },
    { name: `stats-${formatMs(statsWindow.sizeMs)}`, lateTopic: late },
  )
  stats.to(options.statsTopic ?? 'readings-stats-1m')
  const alerts = options.alertsTopic ?? 'readings-alerts'
  const { thresholdAbove: above, thresholdBelow: below } = options
  if (above === undefined && below === undefined) {
    stats.detect(threshold({ field: 'max', above: DEFAULT_THRESHOLD_ABOVE, per: defaultBounds('above') }), { name: 'threshold-above' }).to(alerts)
    stats.detect(threshold({ field: 'min', per: defaultBounds('below') }), { name: 'threshold-below' }).to(alerts)
  } else {
    // A band whose bottom is not below its top alerts on every window: a mistake, refused before anything runs.
    if (above !== undefined && below !== undefined && below >= above) {
      throw new TopologyError(`thresholdBelow (--threshold-below) ${below} must be below thresholdAbove (--threshold-above) ${above}: with the band empty, every window would raise an alert`)
    }
    if (above !== undefined) stats.detect(threshold({ field: 'max', above }), { name: 'threshold-above' }).to(alerts)
    if (below !== undefined) stats.detect(threshold({ field: 'min', below }), { name: 'threshold-below' }).to(alerts)
  }
  stats
    .detect(zScore({ field: 'avg', threshold: options.zScoreThreshold ?? 4, baselineWindows: options.zScoreBaselineWindows ?? 30, minBaselineWindows: options.zScoreMinBaselineWindows ?? 10 }), { name: 'zscore' })
    .to(alerts)

  bySensor
    .windowedBy(averageWindow)
    .aggregate({ count: count(), avg: avg('value') }, { name: `avg-${formatMs(averageWindow.sizeMs)}${averagesEvery}`, lateTopic: late })
    .to(options.averagesTopic ?? 'readings-avg-5m')
  return builder.build()
}
