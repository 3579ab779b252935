/**
 * Counters of a running pipeline (all instance-wide, since the process started).
 * - `recordsIn` counts every input record processed, dead letters included, and work redone after a failed commit or
 *   a rebalance again: it is the work done, and can exceed what the input holds (how far the input has been processed
 *   is each task's position).
 * - `late`, `deadLetters`, `windowsEmitted` and `alerts` count the records committed to the late-records and
 *   dead-letter topics, the window results and the alerts, when their commit is durable, so work redone after a
 *   failure counts once; a commit whose answer was lost but which went through counts when its task restarts from it.
 *   An input record late for several windowed operators counts once (twice only if they send late records to two
 *   topics).
 */
export interface Metrics {
  recordsIn: number
  recordsOut: number
  late: number
  deadLetters: number
  windowsEmitted: number
  alerts: number
  commits: number
  /** Changelog records applied by restores, and the time they took. */
  restoredRecords: number
  restoreMs: number
}

export function newMetrics(): Metrics {
  return { recordsIn: 0, recordsOut: 0, late: 0, deadLetters: 0, windowsEmitted: 0, alerts: 0, commits: 0, restoredRecords: 0, restoreMs: 0 }
}
