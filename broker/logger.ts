/** A small leveled logger writing one line per event to stderr: `2026-01-01T00:00:00.000Z INFO [node 1] text`. */
import type { LogLevel } from './config.js'

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 }

export class Logger {
  constructor(
    private readonly context: string,
    private readonly level: LogLevel = 'info',
  ) {}

  private write(level: LogLevel, text: string): void {
    if (RANK[level] > RANK[this.level]) return
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [${this.context}] ${text}\n`)
  }

  error(text: string): void {
    this.write('error', text)
  }

  warn(text: string): void {
    this.write('warn', text)
  }

  info(text: string): void {
    this.write('info', text)
  }

  debug(text: string): void {
    this.write('debug', text)
  }
}
