/**
 * Reading `timestamp,value` series from CSV files, such as the NAB ones, with csv-parse (quoting, a BOM, CRLF line
 * ends and odd rows are its business; see README.md for why this library).
 *
 * - Header: a first row naming `timestamp` and `value` (any case, in any order, other columns ignored) says where
 *   they are; without one, the first two columns are timestamp and value and the first row is data.
 * - Timestamps: `2013-12-02 21:15:00` (NAB's form) is UTC, as are the same with a `T`, without seconds, with a
 *   fraction, or a bare date. One with a zone (`Z`, `+02:00`) keeps its zone.
 * - A bad row (a timestamp or value that does not parse, a timestamp before 1970, the wrong number of fields, broken
 *   quoting) is reported through `onBad` with its line and skipped; it never stops the reading. csv-parse detects
 *   broken quoting where the quoted field ends, possibly lines later, so such a report covers the lines from the
 *   previous record on.
 */
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream'
import { parse, type CsvError } from 'csv-parse'
import { unreadableFile } from './errors.js'

export interface SeriesRow {
  /** Event time, ms since the epoch. */
  ts: number
  value: number
  /** Line in the file (1 is the first). */
  line: number
}

export interface BadRow {
  file: string
  /** First line of the skipped row. */
  line: number
  /** Last line, when the skipped row spanned several (an unbalanced quote). */
  lastLine?: number
  reason: string
}

/** `file:line` or `file:first-last`, as editors and compilers print positions. */
export function badRowPosition(bad: BadRow): string {
  return `${bad.file}:${bad.line}${bad.lastLine !== undefined && bad.lastLine !== bad.line ? `-${bad.lastLine}` : ''}`
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i

/** ms since the epoch of a CSV timestamp (zone-less = UTC), or null if it is not one. */
export function parseTimestamp(text: string): number | null {
  const match = TIMESTAMP.exec(text.trim())
  if (!match) return null
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = match
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (day > daysInMonth) return null
  const ms = fraction === '' ? 0 : Math.floor(Number(`0${fraction}`) * 1000)
  let offsetMinutes = 0
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '')
    const hours = Number(digits.slice(1, 3))
    const minutes = Number(digits.slice(3, 5))
    if (hours > 23 || minutes > 59) return null
    offsetMinutes = (digits[0] === '-' ? -1 : 1) * (hours * 60 + minutes)
  }
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms))
  date.setUTCFullYear(year)
  return date.getTime() - offsetMinutes * 60_000
}

/** A reading's value from its CSV text, or null: decimal notation only (no hex, no Infinity, no empty field). */
export function parseValue(text: string): number | null {
  const trimmed = text.trim()
  if (!NUMBER.test(trimmed)) return null
  const value = Number(trimmed)
  return Number.isFinite(value) ? value : null
}

interface Columns {
  timestamp: number
  value: number
  count: number
}

/** The header's columns, or null when the first row is data. */
function headerColumns(fields: readonly string[]): Columns | null {
  const names = fields.map((field) => field.trim().toLowerCase())
  const timestamp = names.indexOf('timestamp')
  const value = names.indexOf('value')
  return timestamp >= 0 && value >= 0 ? { timestamp, value, count: fields.length } : null
}

/**
 * The good rows of one file, in file order; each bad row goes to `onBad`. Throws SimulatorError (UNREADABLE_FILE)
 * when the file cannot be read.
 */
export async function* readSeries(file: string, onBad: (bad: BadRow) => void): AsyncGenerator<SeriesRow> {
  // The line the next record starts after: a skipped record spans the lines from here to where its error showed.
  let lastLine = 0
  const parser = parse({
    bom: true,
    trim: true,
    skip_empty_lines: true,
    relax_column_count: true,
    skip_records_with_error: true,
    info: true,
    on_skip: (error: CsvError | undefined) => {
      const at = (error as { lines?: number } | undefined)?.lines ?? lastLine + 1
      onBad({ file, line: lastLine + 1, lastLine: at, reason: error?.message.replace(/ at line \d+.*$/, '') ?? 'unreadable row' })
      lastLine = at
      return undefined
    },
  })
  // pipeline, not pipe: a read error (a missing file) destroys the parser with it, so the iteration below throws.
  // The iteration reports it; the callback has nothing to add.
  pipeline(createReadStream(file), parser, () => {})
  let columns: Columns | null = null
  let first = true
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines
      lastLine = line
      if (first) {
        first = false
        columns = headerColumns(record)
        if (columns !== null) continue
        columns = { timestamp: 0, value: 1, count: 2 }
      }
      const { timestamp, value, count } = columns!
      if (record.length !== count) {
        onBad({ file, line, reason: `expected ${count} fields, found ${record.length}` })
        continue
      }
      const ts = parseTimestamp(record[timestamp]!)
      if (ts === null) {
        onBad({ file, line, reason: `unparsable timestamp '${record[timestamp]}'` })
        continue
      }
      // Kafka's producer refuses a negative timestamp (ProducerRecord: "Timestamp should always be non-negative or
      // null"), -1 means none, and the processor dead-letters event times below 0.
      if (ts < 0) {
        onBad({ file, line, reason: `timestamp '${record[timestamp]}' is before 1970-01-01T00:00:00Z: a Kafka record timestamp cannot be negative` })
        continue
      }
      const number = parseValue(record[value]!)
      if (number === null) {
        onBad({ file, line, reason: `unparsable value '${record[value]}'` })
        continue
      }
      yield { ts, value: number, line }
    }
  } catch (error) {
    throw unreadableFile(file, error)
  }
}
