/**
 * LevelDB write throughput against the size of one write: the measurement behind the group commit's bound on one
 * write (storage/group-commit.ts MAX_WRITE_BYTES). Each size runs in a fresh process on a fresh database opened with
 * Brook's LEVEL_OPTIONS, writing the bench's record batches (~16 KiB, random values) under Brook-shaped log keys
 * round-robin over 8 partitions, `--total-mb` per run, in chained-batch writes of that many bytes each. It reports
 * MB/s, the time of one write (what every append of a group commit waits for) and the process's peak RSS.
 *
 *   npm run build && node dist/bench/write-size.js                       # 64 KiB .. 256 MiB, 512 MB each, 3 runs
 *   node dist/bench/write-size.js --sizes-kib 1024,32768 --total-mb 256 --runs 1
 *   node dist/bench/write-size.js --sync                                 # synced writes, as with `brook start --fsync`
 *
 * The last line is a markdown table: median [min..max] over the runs.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Level } from 'level'
import { LEVEL_OPTIONS, LOG_KEY_SIZE, PARTITION_KEY_SIZE, partitionKey } from '../storage/database.js'
import { batchCount, loadPool, makeBatchPool, savePool } from './batches.js'
import { MB, median, percentile } from './measure.js'
import { report, spawnWorker, workerInput } from './worker.js'

interface RunInput {
  dir: string
  poolFile: string
  totalBytes: number
  writeBytes: number
  sync: boolean
}

interface RunResult {
  writeBytes: number
  MBps: number
  writes: number
  p50Ms: number
  maxMs: number
  peakRssMB: number
}

const PARTITIONS = 8
const KiB = 1024

async function run(input: RunInput): Promise<void> {
  const pool = loadPool(input.poolFile)
  const total = batchCount(input.totalBytes, pool)
  const topicId = randomUUID()
  const partitions = Array.from({ length: PARTITIONS }, (_, p) => partitionKey(topicId, p))
  const nextOffset = new Array<bigint>(PARTITIONS).fill(0n)
  const key = (partition: number): Buffer => {
    const k = Buffer.allocUnsafe(LOG_KEY_SIZE)
    partitions[partition]!.copy(k, 0)
    nextOffset[partition]! += BigInt(pool.recordsPerBatch)
    k.writeBigInt64BE(nextOffset[partition]! - 1n, PARTITION_KEY_SIZE)
    return k
  }
  const db = new Level<Buffer, Buffer>(input.dir, { ...LEVEL_OPTIONS, keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  const times: number[] = []
  let bytes = 0
  const start = performance.now()
  for (let n = 0; n < total; ) {
    const batch = db.batch()
    let size = 0
    // At least one batch per write, as the group commit does with a batch larger than its bound.
    while (n < total && (size === 0 || size + pool.batches[n % pool.batches.length]!.length <= input.writeBytes)) {
      const value = pool.batches[n % pool.batches.length]!
      batch.put(key(n % PARTITIONS), value)
      size += value.length
      n++
    }
    const begin = performance.now()
    await batch.write({ sync: input.sync })
    times.push(performance.now() - begin)
    bytes += size
  }
  const seconds = (performance.now() - start) / 1000
  await db.close()
  times.sort((a, b) => a - b)
  const result: RunResult = {
    writeBytes: input.writeBytes,
    MBps: bytes / seconds / MB,
    writes: times.length,
    p50Ms: percentile(times, 50),
    maxMs: times.at(-1)!,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / MB,
  }
  report(result)
}

function spread(values: number[], digits = 0): string {
  const f = (v: number): string => v.toFixed(digits)
  return `${f(median(values))} [${f(Math.min(...values))}..${f(Math.max(...values))}]`
}

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * KiB ? `${bytes / (1024 * KiB)} MiB` : `${bytes / KiB} KiB`
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'sizes-kib': { type: 'string', default: '64,256,1024,4096,16384,32768,65536,262144' },
      'total-mb': { type: 'string', default: '512' },
      runs: { type: 'string', default: '3' },
      sync: { type: 'boolean', default: false },
    },
  })
  const sizes = values['sizes-kib'].split(',').map((s) => Number(s) * KiB)
  const totalBytes = Number(values['total-mb']) * MB
  const runs = Number(values.runs)
  const work = mkdtempSync(join(tmpdir(), 'brook-write-size-'))
  try {
    const poolFile = join(work, 'pool')
    savePool(makeBatchPool({ batches: 4096, batchBytes: 16 * KiB, recordBytes: 100 }), poolFile)
    const results = new Map<number, RunResult[]>()
    // Runs interleave the sizes, so that a burst of other load on the machine does not land on one size only.
    for (let r = 0; r < runs; r++) {
      for (const writeBytes of sizes) {
        const dir = join(work, `db-${writeBytes}-${r}`)
        const worker = spawnWorker('write-size.js', { dir, poolFile, totalBytes, writeBytes, sync: values.sync } satisfies RunInput)
        const result = await worker.next<RunResult>()
        await worker.exited
        rmSync(dir, { recursive: true, force: true })
        console.log(JSON.stringify(result))
        results.set(writeBytes, [...(results.get(writeBytes) ?? []), result])
      }
    }
    console.log('| write size | MB/s | ms per write, p50 | ms per write, max | peak RSS, MB |')
    console.log('|---|---|---|---|---|')
    for (const [writeBytes, list] of results) {
      console.log(
        `| ${sizeLabel(writeBytes)} | ${spread(list.map((x) => x.MBps))} | ${spread(list.map((x) => x.p50Ms), 1)} | ` +
          `${spread(list.map((x) => x.maxMs))} | ${spread(list.map((x) => x.peakRssMB))} |`,
      )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[2]?.startsWith('{')) await run(workerInput<RunInput>())
else await main()
