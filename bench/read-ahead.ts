/**
 * Reads from LevelDB against the iterator's read-ahead: the measurement behind level-log.ts READ_AHEAD_BYTES. The
 * bench's batches (~16 KiB) are appended through Brook's LogStore to `--partitions` partitions (`--total-mb` in all)
 * once; then each variant, in a fresh process that reopens the database and waits until LevelDB's compaction is done,
 * reads everything back as a consumer's fetches do: per partition, reads of `--read-mb`, `--hold-reads` of them kept
 * until the next (a Fetch response holds its partitions' buffers until the socket has taken them). Variants:
 *
 *   brook           PartitionLog.read, as the broker calls it
 *   <n> KiB         a LevelDB iterator per read, as `read` makes one, with highWaterMarkBytes n KiB
 *   one iterator    one iterator over everything, 64 MiB read-ahead: the bench's raw read (level-worker.ts)
 *
 * It reports the CPU (all threads) and the page faults of the process per MB read.
 *
 *   npm run build && node dist/bench/read-ahead.js                  # 8192,2048,1024,512,256 KiB; 256 MB; 2 runs
 *   node dist/bench/read-ahead.js --help                           # every option, with its default
 *   node dist/bench/read-ahead.js --read-ahead-kib 8192,1024 --runs 3
 *   node dist/bench/read-ahead.js --batch-kib 128                  # larger batches: larger LevelDB values
 *
 * The last lines are a markdown table: median [min..max] over the runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { Level } from 'level'
import { LEVEL_OPTIONS, databaseDir, partitionKey } from '../storage/database.js'
import { LogStore } from '../storage/log-store.js'
import type { PartitionLog } from '../storage/partition-log.js'
import { At } from '../protocol/record-batch.js'
import { benchCommand, number, numbers } from './args.js'
import { batchCount, loadPool, makeBatchPool, savePool } from './batches.js'
import { MB, waitUntilIdle } from './measure.js'
import { spread } from './interleaved.js'
import { report, spawnWorker, workerInput } from './worker.js'

const KiB = 1024
const MiB = 1024 * KiB
/** The sublevel prefix of the log keys (storage/database.ts), and the first key after every log key. */
const LOG_PREFIX = Buffer.from('!log!')
const LOG_END = Buffer.from('!log"')
const ONE_ITERATOR_READ_AHEAD = 64 * MiB

type Variant = { kind: 'brook' } | { kind: 'iterator per read'; readAhead: number } | { kind: 'one iterator' }

interface WriteInput {
  mode: 'write'
  dataDir: string
  poolFile: string
  topicId: string
  partitions: number
  totalBytes: number
}

interface ReadInput {
  mode: 'read'
  dataDir: string
  topicId: string
  partitions: number
  readBytes: number
  holdReads: number
  variant: Variant
}

interface ReadResult {
  bytes: number
  cpuMsPerMB: number
  faultsPerMB: number
  settledMs: number
}

/** CPU seconds (user + system, all threads) and minor page faults of this process so far, from /proc. */
function usage(): { cpuSeconds: number; faults: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpu = process.cpuUsage()
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, faults: Number(fields[7]) }
}

async function write(input: WriteInput): Promise<void> {
  const pool = loadPool(input.poolFile)
  const store = await LogStore.open(input.dataDir, { cacheMaxBytes: 0 })
  const logs: PartitionLog[] = []
  for (let p = 0; p < input.partitions; p++) logs.push(await store.log(input.topicId, p, { create: true }))
  const total = batchCount(input.totalBytes, pool)
  let pending: Promise<unknown>[] = []
  for (let n = 0; n < total; n++) {
    pending.push(logs[n % input.partitions]!.append(Buffer.from(pool.batches[n % pool.batches.length]!), { leaderEpoch: 0 }))
    // As producers with requests in flight: enough to fill the group commit's writes.
    if (pending.length >= 64) {
      await Promise.all(pending)
      pending = []
    }
  }
  await Promise.all(pending)
  await store.close()
  report({ written: total })
}

/** One read of at most `budget` bytes from `from`, through a LevelDB iterator with `readAhead`; the batches read. */
async function iteratorRead(db: Level<Buffer, Buffer>, partition: Buffer, from: bigint, budget: number, readAhead: number): Promise<Buffer[]> {
  const key = (offset: bigint): Buffer => {
    const k = Buffer.alloc(LOG_PREFIX.length + partition.length + 8)
    LOG_PREFIX.copy(k)
    partition.copy(k, LOG_PREFIX.length)
    k.writeBigInt64BE(offset, LOG_PREFIX.length + partition.length)
    return k
  }
  const iterator = db.values({ gte: key(from), lt: key(0x7fffffffffffffffn), fillCache: false, highWaterMarkBytes: readAhead })
  const batches: Buffer[] = []
  let bytes = 0
  try {
    for (;;) {
      const values = await iterator.nextv(1024)
      if (values.length === 0) return batches
      for (const value of values) {
        if (batches.length > 0 && bytes + value.length > budget) return batches
        batches.push(value)
        bytes += value.length
      }
    }
  } finally {
    await iterator.close()
  }
}

async function read(input: ReadInput): Promise<void> {
  const variant = input.variant
  let store: LogStore | null = null
  let db: Level<Buffer, Buffer> | null = null
  let logs: PartitionLog[] = []
  if (variant.kind === 'brook') {
    store = await LogStore.open(input.dataDir, { cacheMaxBytes: 0 })
    for (let p = 0; p < input.partitions; p++) logs.push(await store.log(input.topicId, p, { create: false }))
    for (const log of logs) log.setHighWatermark(log.durableEndOffset)
  } else {
    db = new Level<Buffer, Buffer>(databaseDir(input.dataDir), { ...LEVEL_OPTIONS, keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
  }
  const settledMs = await waitUntilIdle(process.pid)
  const start = usage()
  let bytes = 0
  if (variant.kind === 'one iterator') {
    const iterator = db!.values({ gte: LOG_PREFIX, lt: LOG_END, fillCache: false, highWaterMarkBytes: ONE_ITERATOR_READ_AHEAD })
    for (let values = await iterator.nextv(1000); values.length > 0; values = await iterator.nextv(1000)) {
      for (const value of values) bytes += value.length
    }
    await iterator.close()
  } else {
    const next = Array.from({ length: input.partitions }, () => 0n)
    let held: Buffer[][] = []
    for (let more = true; more; ) {
      more = false
      for (let p = 0; p < input.partitions; p++) {
        const batches =
          variant.kind === 'brook'
            ? await logs[p]!.read(next[p]!, { maxBytes: input.readBytes, upTo: logs[p]!.highWatermark, minOneMessage: true })
            : await iteratorRead(db!, partitionKey(input.topicId, p), next[p]!, input.readBytes, variant.readAhead)
        if (batches.length === 0) continue
        more = true
        for (const batch of batches) bytes += batch.length
        const last = batches.at(-1)!
        next[p] = last.readBigInt64BE(At.baseOffset) + BigInt(last.readInt32BE(At.lastOffsetDelta)) + 1n
        held.push(batches)
        // A response's buffers live until the socket has taken them; let the event loop turn as a write would.
        if (held.length >= input.holdReads) {
          await new Promise((resolve) => setImmediate(resolve))
          held = []
        }
      }
    }
  }
  const end = usage()
  await store?.close()
  await db?.close()
  const result: ReadResult = {
    bytes,
    cpuMsPerMB: ((end.cpuSeconds - start.cpuSeconds) * 1000) / (bytes / MB),
    faultsPerMB: (end.faults - start.faults) / (bytes / MB),
    settledMs,
  }
  report(result)
}

function label(variant: Variant): string {
  if (variant.kind === 'brook') return 'brook (PartitionLog.read)'
  if (variant.kind === 'one iterator') return `one iterator, ${ONE_ITERATOR_READ_AHEAD / MiB} MiB read-ahead`
  return variant.readAhead >= MiB ? `iterator per read, ${variant.readAhead / MiB} MiB read-ahead` : `iterator per read, ${variant.readAhead / KiB} KiB read-ahead`
}

const COMMAND = benchCommand(
  'read-ahead',
  'node dist/bench/read-ahead.js [options]',
  "Reads from LevelDB against the iterator's read-ahead, each variant in a fresh process: CPU and page faults per MB read.",
)
  .option('--read-ahead-kib <n,...>', 'read-aheads of the iterator-per-read variants, KiB', numbers, [8192, 2048, 1024, 512, 256])
  .option('--total-mb <n>', 'MB appended, and read back by each variant', number(), 256)
  .option('--partitions <n>', 'partitions appended to', number(), 8)
  .option('--read-mb <n>', 'MiB per read', number(), 8)
  .option('--hold-reads <n>', 'reads held until the next (as a Fetch response holds its buffers)', number(), 4)
  .option('--runs <n>', 'runs of every variant', number(), 2)
  .option('--batch-kib <n>', 'batch size, KiB', number(), 16)

async function main(): Promise<void> {
  const values = COMMAND.parse().opts()
  const partitions = values.partitions
  const variants: Variant[] = [
    { kind: 'brook' },
    ...values.readAheadKib.map((kib): Variant => ({ kind: 'iterator per read', readAhead: kib * KiB })),
    { kind: 'one iterator' },
  ]
  const work = mkdtempSync(join(tmpdir(), 'brook-read-ahead-'))
  try {
    const poolFile = join(work, 'pool')
    savePool(makeBatchPool({ batches: 256, batchBytes: values.batchKib * KiB, recordBytes: 100 }), poolFile)
    const dataDir = join(work, 'data')
    const topicId = randomUUID()
    const writer = spawnWorker('read-ahead.js', { mode: 'write', dataDir, poolFile, topicId, partitions, totalBytes: values.totalMb * MB } satisfies WriteInput)
    await writer.next()
    await writer.exited
    const results = new Map<Variant, ReadResult[]>()
    // Runs interleave the variants, so a burst of other load does not land on one variant only.
    for (let r = 0; r < values.runs; r++) {
      for (const variant of variants) {
        const input: ReadInput = { mode: 'read', dataDir, topicId, partitions, readBytes: values.readMb * MiB, holdReads: values.holdReads, variant }
        const worker = spawnWorker('read-ahead.js', input)
        const result = await worker.next<ReadResult>()
        await worker.exited
        console.log(JSON.stringify({ variant: label(variant), ...result }))
        results.set(variant, [...(results.get(variant) ?? []), result])
      }
    }
    console.log('| read | CPU ms per MB read | page faults per MB read |')
    console.log('|---|---|---|')
    for (const [variant, list] of results) {
      console.log(`| ${label(variant)} | ${spread(list.map((x) => x.cpuMsPerMB), 1)} | ${spread(list.map((x) => x.faultsPerMB))} |`)
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[2]?.startsWith('{')) {
  const input = workerInput<WriteInput | ReadInput>()
  await (input.mode === 'write' ? write(input) : read(input))
} else await main()
