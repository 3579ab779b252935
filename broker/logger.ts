/**
 * A small leveled logger writing one line per event to stderr: `2026-01-01T00:00:00.000Z INFO [node 1] text`. Its
 * level starts as the node's --log-level and can be changed while the node runs (`setLevel`: IncrementalAlterConfigs
 * of the node's BROKER_LOGGER resource, handlers/broker-loggers.ts).
 */
import type { LogLevel } from './config.js'
import { monotonicMs } from './clock.js'

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }
/** How many keys `warnOncePer` remembers before it forgets those whose interval has passed. */
const MAX_REPEAT_KEYS = 1000

export class Logger {
  constructor(
    private readonly context: string,
    private currentLevel: LogLevel = 'info',
  ) {}

  /** The most detailed level written: `error` writes errors only, `debug` everything. */
  get level(): LogLevel {
    return this.currentLevel
  }

  /** Writes from now on what `level` allows (not kept across a restart, as Kafka's runtime log4j changes are not). */
  setLevel(level: LogLevel): void {
    this.currentLevel = level
  }

  private write(level: LogLevel, text: string): void {
    if (RANK[level] > RANK[this.currentLevel]) return
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [${this.context}] ${text}\n`)
  }

  error(text: string): void {
    this.write('error', text)
  }

  warn(text: string): void {
    this.write('warn', text)
  }

  /**
   * Per key of `warnOncePer`: when it last logged (monotonic, so that a step of the wall clock neither silences the key
   * for the step's length nor lets it flood; and as a wall-clock time for the message), and how many like it it has
   * not logged since.
   */
  private readonly repeats = new Map<string, { loggedAtMs: number; loggedAtWallMs: number; skipped: number }>()

  /**
   * A warning that a client may cause again and again (an old client reconnecting ten times a second with a version
   * it is refused): logged at most once per `intervalMs` for one `key`, the next one saying how many were not logged.
   */
  warnOncePer(key: string, text: string, intervalMs = 60_000): void {
    const nowMs = monotonicMs()
    const seen = this.repeats.get(key)
    if (seen && nowMs - seen.loggedAtMs < intervalMs) {
      seen.skipped++
      return
    }
    const skipped = seen?.skipped ?? 0
    if (this.repeats.size >= MAX_REPEAT_KEYS) {
      for (const [other, entry] of this.repeats) if (nowMs - entry.loggedAtMs >= intervalMs) this.repeats.delete(other)
      if (this.repeats.size >= MAX_REPEAT_KEYS) this.repeats.clear()
    }
    this.repeats.set(key, { loggedAtMs: nowMs, loggedAtWallMs: Date.now(), skipped: 0 })
    this.write('warn', skipped > 0 ? `${text} (${skipped} more like it not logged since ${new Date(seen!.loggedAtWallMs).toISOString()})` : text)
  }

  info(text: string): void {
    this.write('info', text)
  }

  debug(text: string): void {
    this.write('debug', text)
  }
}
