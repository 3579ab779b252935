/**
 * `replay`: real `timestamp,value` series (such as NAB's) sent as readings with their own event times.
 *
 *   plan        each file becomes a series: deviceId (given, or the file's name), sensor (given, or recognised in
 *               the file's name), unit (given, or the sensor's); an unknown sensor stops the replay before it reads
 *   scan        a first pass over every file counts the good rows (the progress total), reports the bad ones
 *               (file:line, reason) and finds the oldest event time, which the topic's configs are checked against
 *   topic       created with retention.ms=-1 (topic.ts says why), or checked and warned about
 *   send        the files are read again and merged in event-time order (a heap of each file's next row; a file
 *               keeps its own order), paced by event time / speedup, or as fast as the cluster takes them
 *
 * Readings are keyed by deviceId, stamped with their event time, and counted once each: a replay that is not
 * stopped sends every good row exactly once.
 */
import { access, constants, stat } from 'node:fs/promises'
import { basename, extname, join, resolve } from 'node:path'
import { withTopicProducer, STDERR_LOG } from './connection.js'
import { badRowPosition, readSeries, type BadRow, type SeriesRow } from './csv-series.js'
import { SimulatorError, SimulatorErrorCode, fileErrorReason, unreadableFile } from './errors.js'
import { MinHeap } from './heap.js'
import { resolveReplayOptions, type Log, type ReplayOptions } from './options.js'
import type { Outgoing } from './reading.js'
import { sendPaced, type Unconfirmed } from './sender.js'
import { SENSOR_UNITS, sensorFromFileName } from './sensors.js'
import { iso, HISTORY_TOPIC_CONFIGS } from './topic.js'

/** One replayed file. */
export interface SeriesPlan {
  file: string
  deviceId: string
  sensor: string
  unit: string
}

export interface ReplayedSeries extends SeriesPlan {
  /** Good rows, and the event-time span they cover (null for a file with none). */
  rows: number
  firstTs: number | null
  lastTs: number | null
}

export interface ReplaySummary {
  topic: string
  topicCreated: boolean
  /** Readings acknowledged by the cluster. */
  sent: number
  /** Good rows in all files: what a replay that is not stopped sends. */
  total: number
  series: ReplayedSeries[]
  /** Bad rows, skipped (the first MAX_LISTED_BAD_ROWS of them), and how many there were in all. */
  badRows: BadRow[]
  badRowCount: number
  /** Event time reached: of the last reading acknowledged. */
  lastEventTimeMs: number | null
  elapsedMs: number
  readingsPerSecond: number
  aborted: boolean
  /** Readings of the batch in flight when the run was stopped that the cluster did not acknowledge. */
  unconfirmed: Unconfirmed | null
  warnings: string[]
}

/** Bad rows kept in the summary; all are counted. */
export const MAX_LISTED_BAD_ROWS = 1000
/** Bad rows logged one by one before the rest are summed up in one line. */
const MAX_LOGGED_BAD_ROWS = 20

/**
 * Each file's device, sensor and unit. Throws SimulatorError (UNKNOWN_SENSOR) for a file whose sensor is not given
 * and not recognisable from its name, or a sensor whose unit is neither given nor known; INVALID_OPTION for a file
 * named twice (its readings would all be sent twice, as the same device's).
 */
export function planSeries(files: readonly string[], options: Pick<ReplayOptions, 'deviceId' | 'sensor' | 'unit'> = {}): SeriesPlan[] {
  const named = new Map<string, string>()
  for (const file of files) {
    const earlier = named.get(resolve(file))
    if (earlier !== undefined) {
      const as = earlier === file ? '' : ` (as ${earlier})`
      throw new SimulatorError(SimulatorErrorCode.invalidOption, `${file} is given twice${as}: each of its readings would be sent twice; name each file once`)
    }
    named.set(resolve(file), file)
  }
  return files.map((file) => {
    const name = basename(file, extname(file))
    const sensor = options.sensor ?? sensorFromFileName(name)
    if (sensor === null) {
      throw new SimulatorError(SimulatorErrorCode.unknownSensor, `cannot tell the sensor of ${file} from its name; give it with --sensor (e.g. ${Object.keys(SENSOR_UNITS).join(', ')})`)
    }
    const unit = options.unit ?? SENSOR_UNITS[sensor]
    if (unit === undefined) throw new SimulatorError(SimulatorErrorCode.unknownSensor, `no unit is known for sensor '${sensor}'; give it with --unit`)
    return { file, deviceId: options.deviceId ?? name, sensor, unit }
  })
}

/**
 * Throws SimulatorError (UNREADABLE_FILE) for a file that cannot be read, or that is a directory: its CSV files were
 * meant, and the error says how to name them.
 */
async function checkReadable(file: string): Promise<void> {
  const stats = await access(file, constants.R_OK)
    .then(() => stat(file))
    .catch((error: unknown) => {
      throw unreadableFile(file, error)
    })
  if (stats.isDirectory()) {
    const reason = fileErrorReason({ code: 'EISDIR' })
    throw new SimulatorError(SimulatorErrorCode.unreadableFile, `cannot read ${file}: ${reason}; name the CSV files in it (a shell glob such as ${join(file, '*.csv')} works)`)
  }
}

/**
 * Replays the files to a topic and resolves with what was sent. Options and defaults: ReplayOptions and
 * REPLAY_DEFAULTS (options.ts). Throws SimulatorError: INVALID_OPTION, UNKNOWN_SENSOR or UNREADABLE_FILE (a file that
 * cannot be read, or no readable row in any file) before connecting; BROKER_REFUSED when the cluster cannot be reached, the topic cannot be created, or readings are refused.
 */
export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const o = resolveReplayOptions(options)
  const log = o.log ?? STDERR_LOG
  // A missing file or a directory is said so before anything is asked of its name.
  for (const file of o.files) await checkReadable(file)
  const plans = planSeries(o.files, o)

  const scan = await scanSeries(plans, log)
  const total = scan.series.reduce((sum, s) => sum + s.rows, 0)
  const summary: ReplaySummary = {
    topic: o.topic,
    topicCreated: false,
    sent: 0,
    total,
    series: scan.series,
    badRows: scan.badRows,
    badRowCount: scan.badRowCount,
    lastEventTimeMs: null,
    elapsedMs: 0,
    readingsPerSecond: 0,
    aborted: false,
    unconfirmed: null,
    warnings: [],
  }
  // Nothing to send is the user's mistake (a wrong file, a header alone), not a replay of nothing: said, not exit 0.
  if (total === 0) {
    const skipped = scan.badRowCount > 0 ? ` (${scan.badRowCount} bad ${scan.badRowCount === 1 ? 'row' : 'rows'} skipped)` : ''
    throw new SimulatorError(SimulatorErrorCode.unreadableFile, `no readable timestamp,value rows in ${o.files.join(', ')}${skipped}: nothing to replay`)
  }
  const oldestTs = Math.min(...scan.series.flatMap((s) => (s.firstTs === null ? [] : [s.firstTs])))
  const topicPlan = {
    topic: o.topic,
    partitions: o.partitions,
    replicationFactor: o.replicationFactor,
    configs: HISTORY_TOPIC_CONFIGS,
    reason:
      `replayed readings keep their event times (from ${iso(oldestTs)}) as record timestamps, and Kafka's retention acts on record timestamps: ` +
      'with a finite retention.ms they would be deleted minutes after they are written, and a finite message.timestamp.before.max.ms would refuse them',
    oldestTs,
    retentionWarning: 'any-finite' as const,
  }

  return withTopicProducer(o, topicPlan, log, async (producer, topic, sends) => {
    summary.topicCreated = topic.created
    summary.warnings = topic.warnings
    const merged = mergeByEventTime(plans)
    const result = await sendPaced(() => merged.next(), {
      producer,
      sends,
      topic: o.topic,
      speedup: o.speedup,
      batchSize: o.batchSize,
      signal: o.signal,
      log,
      onAcked(batch, elapsedMs) {
        summary.sent += batch.length
        summary.lastEventTimeMs = batch[batch.length - 1]!.reading.ts
        o.onProgress?.({ sent: summary.sent, total, eventTimeMs: summary.lastEventTimeMs, elapsedMs })
      },
    }).finally(() => merged.close())
    summary.elapsedMs = result.elapsedMs
    summary.readingsPerSecond = result.elapsedMs > 0 ? (result.sent * 1000) / result.elapsedMs : 0
    summary.aborted = result.aborted
    summary.unconfirmed = result.unconfirmed
    return summary
  })
}

/** The first pass: good rows and event-time span per file, bad rows reported and logged. */
async function scanSeries(plans: readonly SeriesPlan[], log: Log): Promise<{ series: ReplayedSeries[]; badRows: BadRow[]; badRowCount: number }> {
  const badRows: BadRow[] = []
  let badRowCount = 0
  const onBad = (bad: BadRow): void => {
    badRowCount++
    if (badRows.length < MAX_LISTED_BAD_ROWS) badRows.push(bad)
    if (badRowCount <= MAX_LOGGED_BAD_ROWS) log.warn(`${badRowPosition(bad)}: skipped: ${bad.reason}`)
  }
  const series: ReplayedSeries[] = []
  for (const plan of plans) {
    let rows = 0
    let firstTs: number | null = null
    let lastTs: number | null = null
    for await (const row of readSeries(plan.file, onBad)) {
      rows++
      if (firstTs === null || row.ts < firstTs) firstTs = row.ts
      if (lastTs === null || row.ts > lastTs) lastTs = row.ts
    }
    series.push({ ...plan, rows, firstTs, lastTs })
  }
  if (badRowCount > MAX_LOGGED_BAD_ROWS) log.warn(`${badRowCount - MAX_LOGGED_BAD_ROWS} more bad rows skipped (${badRowCount} in all)`)
  return { series, badRows, badRowCount }
}

interface Head {
  row: SeriesRow
  /** Index of the file: breaks ties of event time, so the merge does not depend on the heap's shape. */
  index: number
}

/** The files' good rows as readings, merged in event-time order. Bad rows were reported by the scan; skipped here. */
function mergeByEventTime(plans: readonly SeriesPlan[]): { next(): Promise<Outgoing | null>; close(): Promise<void> } {
  const iterators = plans.map((plan) => readSeries(plan.file, () => {}))
  const heads = new MinHeap<Head>((a, b) => a.row.ts < b.row.ts || (a.row.ts === b.row.ts && a.index < b.index))
  let started = false
  const advance = async (index: number): Promise<void> => {
    const step = await iterators[index]!.next()
    if (!step.done) heads.push({ row: step.value, index })
  }
  return {
    async next() {
      if (!started) {
        started = true
        await Promise.all(plans.map((_, index) => advance(index)))
      }
      const head = heads.pop()
      if (head === undefined) return null
      await advance(head.index)
      const { deviceId, sensor, unit } = plans[head.index]!
      return { reading: { deviceId, sensor, value: head.row.value, unit, ts: head.row.ts }, fault: null, delivery: null, dueMs: head.row.ts }
    },
    /** Closes the files of a replay that stopped early. */
    async close() {
      await Promise.all(iterators.map((iterator) => iterator.return(undefined)))
    },
  }
}
