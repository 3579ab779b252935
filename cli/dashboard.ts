/**
 * The live view of `brook demo`: what the pipeline writes (counts per output topic, the latest window stats and
 * alerts), late records, the consumer lag of the pipeline's group, and throughput in and out, refreshed every second.
 *
 * On a terminal the view is redrawn in place with log-update (7.x, the last line of releases that runs on Node 20).
 * When stdout is not a terminal (a pipe, a log file, a test), or is one that reports no size (0x0: `script` without a
 * terminal of its own, some `docker run -t` and CI runners; log-update fits the view to 0 rows and prints nothing),
 * it prints the title once it is known and one plain summary line per second instead, with each new alert and log
 * line on a line of its own, so the output reads as a log.
 *
 *   sources                      Dashboard                          output
 *   pipeline 'output' events ──▶ counts per topic, latest stats,    every second:
 *   pipeline metrics()        ──▶ alerts; rates over the last 5 s ──▶ terminal: redraw (log-update)
 *   simulator onProgress      ──▶                                    other: one summary line (+ alerts, logs)
 *   lag probe (kafkajs admin) ──▶
 */
import logUpdate from 'log-update'
import type { Metrics, OutputEvent } from '../processor/index.js'
import { count } from './pipeline-format.js'

export interface DashboardOptions {
  /** What runs where, shown at the top of the view (setTitle changes it). */
  title: string[]
  statsTopic: string
  alertsTopic: string
  /** The pipeline's counters; null before it runs. */
  metrics: () => Metrics | null
  /** Committed lag of the pipeline's group on its input (records), or null while it has no offsets to compare. */
  lag: () => Promise<number | null>
  /** Redraw in place (a terminal, canRedraw) or print a line per second. */
  interactive: boolean
  /** Terminal width, for the interactive view. */
  columns: () => number
}

interface Sample {
  atMs: number
  sent: number
  recordsIn: number
  windowsEmitted: number
}

type Values = Record<string, unknown>

const REFRESH_MS = 1000
const RATE_WINDOW_MS = 5000
const LATEST_STATS = 6
const LATEST_ALERTS = 8
const LATEST_LOG_LINES = 6

/** Local wall-clock time of day, `14:05:00`. */
function clock(ms: unknown): string {
  return typeof ms === 'number' ? new Date(ms).toTimeString().slice(0, 8) : '-'
}

function windowText(value: Values): string {
  return `${clock(value.windowStart)}-${clock(value.windowEnd)}`
}

function decimal(value: unknown): string {
  return typeof value === 'number' ? value.toFixed(2) : '-'
}

/** Lays out rows in columns, each aligned as `align` says: `l` for text, `r` for numbers. */
function table(rows: readonly string[][], align: string): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)))
  return rows.map((row) => `  ${row.map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd())
}

/** Whether `stream` is a terminal the view can be redrawn on: one that says how many columns and rows it has. */
export function canRedraw(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && (stream.columns ?? 0) > 0 && (stream.rows ?? 0) > 0
}

export class Dashboard {
  private readonly perTopic = new Map<string, number>()
  private readonly stats: Values[] = []
  private readonly alerts: Values[] = []
  /** Alerts and log lines not yet printed, in plain mode. */
  private readonly unprinted: string[] = []
  private readonly logLines: string[] = []
  private readonly samples: Sample[] = []
  private readonly startedMs = Date.now()
  private sent = 0
  private lag: number | null = null
  private status = 'running; Ctrl-C stops everything'
  private timer: NodeJS.Timeout | null = null
  private refreshing = false
  private title: string[]

  constructor(private readonly options: DashboardOptions) {
    this.title = options.title
    if (!options.interactive) this.unprinted.push(...options.title)
  }

  /** The lines at the top of the view; printed as they are when the view is plain lines. */
  setTitle(title: string[]): void {
    this.title = title
    if (!this.options.interactive) this.unprinted.push(...title)
  }

  /** A line from the broker, the pipeline or the simulator. */
  log(line: string): void {
    const stamped = `${clock(Date.now())} ${line}`
    this.logLines.push(stamped)
    if (this.logLines.length > LATEST_LOG_LINES) this.logLines.shift()
    if (!this.options.interactive) this.unprinted.push(`log ${stamped}`)
  }

  /** A record the pipeline wrote (after the commit that wrote it). */
  onOutput(event: OutputEvent): void {
    this.perTopic.set(event.topic, (this.perTopic.get(event.topic) ?? 0) + 1)
    if (event.topic !== this.options.statsTopic && event.topic !== this.options.alertsTopic) return
    let value: Values
    try {
      value = JSON.parse(String(event.value)) as Values
    } catch {
      return
    }
    if (event.topic === this.options.statsTopic) {
      this.stats.push(value)
      if (this.stats.length > LATEST_STATS) this.stats.shift()
      return
    }
    this.alerts.push(value)
    if (this.alerts.length > LATEST_ALERTS) this.alerts.shift()
    if (!this.options.interactive) this.unprinted.push(`alert ${this.alertText(value)}`)
  }

  /** Readings the simulator has had acknowledged so far. */
  onSent(sent: number): void {
    this.sent = sent
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS)
    void this.refresh()
  }

  /** Shown in place of "running" while the demo stops. */
  setStatus(status: string): void {
    this.status = status
    if (this.options.interactive) this.draw()
  }

  /** Stops refreshing; the terminal keeps the last view. */
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.options.interactive) {
      this.draw()
      logUpdate.done()
    } else {
      this.printPlain()
    }
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return
    this.refreshing = true
    try {
      this.lag = await this.options.lag().catch(() => this.lag)
      const m = this.options.metrics()
      const now = Date.now()
      this.samples.push({ atMs: now, sent: this.sent, recordsIn: m?.recordsIn ?? 0, windowsEmitted: m?.windowsEmitted ?? 0 })
      while (this.samples.length > 2 && now - this.samples[1]!.atMs >= RATE_WINDOW_MS) this.samples.shift()
      if (this.timer === null) return
      if (this.options.interactive) this.draw()
      else this.printPlain()
    } finally {
      this.refreshing = false
    }
  }

  /** Per second over the last few seconds: readings sent, readings in, windows out. */
  private rates(): { sent: number; recordsIn: number; windows: number } {
    const first = this.samples[0]
    const last = this.samples.at(-1)
    if (!first || !last || last.atMs === first.atMs) return { sent: 0, recordsIn: 0, windows: 0 }
    const seconds = (last.atMs - first.atMs) / 1000
    return { sent: (last.sent - first.sent) / seconds, recordsIn: (last.recordsIn - first.recordsIn) / seconds, windows: (last.windowsEmitted - first.windowsEmitted) / seconds }
  }

  private alertText(a: Values): string {
    return `${String(a.deviceId)} ${String(a.sensor)} ${windowText(a)} value ${decimal(a.value)} baseline ${decimal(a.baseline)} score ${decimal(a.score)}: ${String(a.reason)}`
  }

  private summary(): { throughput: string; written: string } {
    const m = this.options.metrics()
    const r = this.rates()
    const windowsPerSecond = r.windows.toFixed(r.windows < 10 ? 1 : 0)
    const throughput = `simulator ${count(r.sent)} readings/s · pipeline in ${count(r.recordsIn)} readings/s, out ${windowsPerSecond} windows/s · lag ${this.lag === null ? '-' : count(this.lag)} · late ${count(m?.late ?? 0)} · dead letters ${count(m?.deadLetters ?? 0)}`
    const written = this.perTopic.size === 0 ? 'nothing yet' : [...this.perTopic].map(([topic, n]) => `${topic} ${count(n)}`).join(' · ')
    return { throughput, written }
  }

  private printPlain(): void {
    for (const line of this.unprinted.splice(0)) process.stdout.write(`${line}\n`)
    const { throughput, written } = this.summary()
    process.stdout.write(`${clock(Date.now())} ${throughput} · written: ${written}\n`)
  }

  private draw(): void {
    const { throughput, written } = this.summary()
    const uptime = new Date(Date.now() - this.startedMs).toISOString().slice(11, 19)
    const lines = [...this.title, `${uptime} ${this.status}`, '', `Throughput  ${throughput}`, `Written     ${written}`, '', `Latest windows (${this.options.statsTopic})`]
    if (this.stats.length === 0) lines.push('  none yet: a window is written once it closes, at its end plus the grace period')
    else {
      const header = ['window', 'device', 'sensor', 'count', 'min', 'avg', 'max', 'stddev', 'p95']
      lines.push(...table([header, ...this.stats.map((s) => [windowText(s), String(s.deviceId), String(s.sensor), String(s.count), decimal(s.min), decimal(s.avg), decimal(s.max), decimal(s.stddev), decimal(s.p95)])], 'lllrrrrrr'))
    }
    lines.push('', `Latest alerts (${this.options.alertsTopic})`)
    if (this.alerts.length === 0) lines.push('  none yet: threshold alerts come with closed windows, z-score alerts once a series has its baseline of windows')
    else {
      const header = ['window', 'device', 'sensor', 'value', 'baseline', 'score', 'reason']
      lines.push(...table([header, ...this.alerts.map((a) => [windowText(a), String(a.deviceId), String(a.sensor), decimal(a.value), decimal(a.baseline), decimal(a.score), String(a.reason)])], 'lllrrrl'))
    }
    lines.push('', 'Log', ...this.logLines.map((line) => `  ${line}`))
    const width = Math.max(20, this.options.columns())
    logUpdate(lines.map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line)).join('\n'))
  }
}
