/**
 * A terminal progress bar for a run, drawn with cli-progress: plug `bar.onProgress` into the run's `onProgress` and
 * call `bar.stop()` when the run resolves (or fails).
 *
 *   replay [███████████░░░░░░░░░] 55% | 21,103/38,352 readings | event time 2014-01-28T04:10:00Z | 41,200/s | ETA 0s
 *
 * With no known total (a fleet run without a count) it shows the count, event time and rate without a bar. Like
 * cli-progress itself, it draws only on a terminal (a TTY stream) and writes nothing into logs and pipes.
 */
import cliProgress from 'cli-progress'
import type { Progress } from './options.js'
import { iso } from './topic.js'

export interface ProgressBar {
  onProgress(progress: Progress): void
  stop(): void
}

export interface ProgressBarOptions {
  /** Default: process.stderr, so that stdout stays free for data. */
  stream?: NodeJS.WritableStream
  /** The bar's first word (default: `sent`). */
  label?: string
}

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** A bar that starts drawing at the first progress report (when the total is known) and stops at `stop()`. */
export function createProgressBar(options: ProgressBarOptions = {}): ProgressBar {
  const label = options.label ?? 'sent'
  let bar: cliProgress.SingleBar | null = null
  return {
    onProgress(progress) {
      const payload = {
        label,
        sent: count.format(progress.sent),
        eventTime: iso(progress.eventTimeMs),
        rate: count.format(progress.elapsedMs > 0 ? (progress.sent * 1000) / progress.elapsedMs : 0),
        of: progress.total === null ? '' : `/${count.format(progress.total)}`,
      }
      if (bar === null) {
        const known = progress.total !== null
        bar = new cliProgress.SingleBar(
          {
            format: known
              ? '{label} [{bar}] {percentage}% | {sent}{of} readings | event time {eventTime} | {rate}/s | ETA {eta_formatted}'
              : '{label} {sent} readings | event time {eventTime} | {rate}/s',
            stream: options.stream ?? process.stderr,
            hideCursor: true,
            etaBuffer: 50,
          },
          cliProgress.Presets.shades_classic,
        )
        bar.start(progress.total ?? 0, progress.sent, payload)
        return
      }
      if (progress.total !== null) bar.setTotal(progress.total)
      bar.update(progress.sent, payload)
    },
    stop() {
      bar?.stop()
    },
  }
}
