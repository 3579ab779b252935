/**
 * What the pipeline commands (`simulate`, `process`, `demo`) print about counts and times: thousands separated
 * (`12,345 readings`), instants as ISO 8601 in UTC, the pipeline's counters in one line.
 */
import type { Metrics } from '../processor/index.js'

/** `12,345`. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US')
}

/** `1 reading`, `12,345 readings`. */
export function many(value: number, singular: string, plural = `${singular}s`): string {
  return `${count(value)} ${value === 1 ? singular : plural}`
}

/** An instant (ms since the epoch) as ISO 8601 in UTC; `-` for none. */
export function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString()
}

/**
 * What a pipeline did: `12,000 records in, 1,200 out (1,180 windows, 20 alerts), 3 late, 0 dead letters, 12 commits`;
 * with `lateTopic` (where every late record of the pipeline goes), `3 late (in readings-late)`.
 */
export function formatMetrics(metrics: Metrics, options: { lateTopic?: string } = {}): string {
  const where = options.lateTopic === undefined ? '' : ` (in ${options.lateTopic})`
  return `${many(metrics.recordsIn, 'record')} in, ${count(metrics.recordsOut)} out (${many(metrics.windowsEmitted, 'window')}, ${many(metrics.alerts, 'alert')}), ${count(metrics.late)} late${where}, ${many(metrics.deadLetters, 'dead letter')}, ${many(metrics.commits, 'commit')}`
}
