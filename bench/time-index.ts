/**
 * `node dist/bench/time-index.js --records 10000000` (`--help` lists the options): ListOffsets by timestamp on one large partition, through the
 * time index (storage/time-index.ts) beside a scan of batch headers from the log start (how Brook searched before it
 * had the index; it is also what a lookup would cost without one). In process, on a LogStore in a temporary
 * directory: `--records` 100-byte records in batches of `--batch-bytes`, stamped about 10 ms apart with up to 0.5 s of
 * disorder, are appended; the store is reopened (nothing cached), then each target is looked up `--rounds` times both
 * ways and the median is reported, with the answers (they must agree). MAX_TIMESTAMP is timed as the first lookup
 * after opening (it reads the index to find its block) and once known.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeRecordBatch, searchRecords } from '../protocol/record-batch.js'
import { LogStore } from '../storage/log-store.js'
import type { PartitionLog, RecordSearch, TimestampMatch } from '../storage/partition-log.js'
import { benchCommand, number } from './args.js'
import { median } from './measure.js'

const COMMAND = benchCommand(
  'time-index',
  'node dist/bench/time-index.js [options]',
  'ListOffsets by timestamp on one large partition: through the time index beside a scan of batch headers.',
)
  .option('--records <n>', '100-byte records appended', number(), 10_000_000)
  .option('--batch-bytes <n>', 'batch size', number(), 16384)
  .option('--rounds <n>', 'lookups of each target each way (the median is reported)', number(), 5)
  .option('--tmp-dir <dir>', 'where the log store goes', tmpdir())
const values = COMMAND.parse().opts()
const totalRecords = values.records
const perBatch = Math.max(1, Math.floor(values.batchBytes / 110))
const rounds = Math.max(1, values.rounds)
const BASE = 1_700_000_000_000
const TOPIC_ID = '6f0a1c52-3b1e-4d7a-9a34-1d2f0e8b7c61'

const search: RecordSearch = async (batch, query) => searchRecords(batch, { ...query, maxInflatedBytes: 64 * 1024 * 1024 })
const values100 = Array.from({ length: 1024 }, () => randomBytes(100))
let seed = 1
const jitter = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) % 1001) - 500

/** Record i's timestamp: 10 ms apart, up to half a second early or late. */
const stampOf = (i: number): bigint => BigInt(BASE + i * 10 + jitter())

async function fill(log: PartitionLog): Promise<void> {
  const inFlight: Promise<unknown>[] = []
  for (let first = 0; first < totalRecords; first += perBatch) {
    const count = Math.min(perBatch, totalRecords - first)
    const batch = encodeRecordBatch(Array.from({ length: count }, (_, i) => ({ value: values100[(first + i) % values100.length]!, timestamp: stampOf(first + i) })))
    inFlight.push(log.append(batch, { leaderEpoch: 0 }))
    if (inFlight.length >= 64) await Promise.all(inFlight.splice(0))
    if (first % (perBatch * 5000) === 0) process.stderr.write(`time-index: ${first} of ${totalRecords} records appended\n`)
  }
  await Promise.all(inFlight)
  log.setHighWatermark(log.durableEndOffset)
}

/** The answer by scanning batch headers from the log start, then reading the first batch that can hold it. */
async function scan(log: PartitionLog, timestamp: bigint | null): Promise<TimestampMatch | null> {
  let best: { bytes: Buffer; maxTimestamp: bigint; leaderEpoch: number } | null = null
  for await (const batch of log.batches(log.logStartOffset, log.highWatermark)) {
    if (timestamp === null) {
      if (!best || batch.maxTimestamp > best.maxTimestamp) best = batch
    } else if (batch.maxTimestamp >= timestamp) {
      best = batch
      break
    }
  }
  if (!best) return null
  const found = await search(best.bytes, { minOffset: log.logStartOffset, timestamp: timestamp ?? undefined })
  return found && { ...found, leaderEpoch: best.leaderEpoch }
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const start = performance.now()
  const result = await work()
  return { ms: performance.now() - start, result }
}

const dir = mkdtempSync(join(values.tmpDir, 'brook-time-index-'))
try {
  let store = await LogStore.open(dir)
  const appendStart = performance.now()
  await fill(await store.log(TOPIC_ID, 0, { create: true }))
  const appendSeconds = (performance.now() - appendStart) / 1000
  await store.close()
  store = await LogStore.open(dir)
  const log = await store.log(TOPIC_ID, 0, { create: false })
  log.setHighWatermark(log.durableEndOffset)
  const options = { upTo: log.highWatermark, search }
  const rows: string[] = []
  const firstMax = await timed(() => log.offsetOfMaxTimestamp(options))
  const targets: [string, bigint | null][] = [
    ['1% into the log', stampOf(Math.floor(totalRecords * 0.01))],
    ['the middle', stampOf(Math.floor(totalRecords * 0.5))],
    ['99% into the log', stampOf(Math.floor(totalRecords * 0.99))],
    ['after the last record (none)', stampOf(totalRecords) + 10_000n],
    ['MAX_TIMESTAMP (-3)', null],
  ]
  for (const [what, timestamp] of targets) {
    const indexed: number[] = []
    const scanned: number[] = []
    let answers: (TimestampMatch | null)[] = []
    for (let round = 0; round < rounds; round++) {
      const byIndex = await timed(() => (timestamp === null ? log.offsetOfMaxTimestamp(options) : log.offsetForTimestamp(timestamp, options)))
      const byScan = await timed(() => scan(log, timestamp))
      indexed.push(byIndex.ms)
      scanned.push(byScan.ms)
      answers = [byIndex.result, byScan.result]
    }
    const [fromIndex, fromScan] = answers
    if (JSON.stringify(fromIndex, (_, v) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(fromScan, (_, v) => (typeof v === 'bigint' ? String(v) : v))) {
      throw new Error(`answers differ for ${what}: index ${fromIndex?.offset}, scan ${fromScan?.offset}`)
    }
    rows.push(`| ${what} | ${fromIndex?.offset ?? 'none'} | ${median(indexed).toFixed(2)} | ${median(scanned).toFixed(0)} |`)
  }
  await store.close()
  process.stdout.write(
    [
      `# ListOffsets by timestamp on ${totalRecords.toLocaleString('en')} records`,
      '',
      `${perBatch} records of 100 bytes per batch, appended in ${appendSeconds.toFixed(0)} s; lookups after reopening the store, median of ${rounds}.`,
      `MAX_TIMESTAMP's first lookup after opening (reading the index to find its block): ${firstMax.ms.toFixed(1)} ms.`,
      '',
      '| target | answer (offset) | time index, ms | scan from the log start, ms |',
      '|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
