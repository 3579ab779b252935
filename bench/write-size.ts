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
 *   node dist/bench/write-size.js --batch-kib 128                        # larger batches: larger LevelDB values
 *   node dist/bench/write-size.js --help                                 # every option, with its default
 *
 * The last line is a markdown table: median [min..max] over the runs.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { LEVEL_OPTIONS } from '../storage/database.js'
import { benchCommand, number, numbers } from './args.js'
import { batchCount, loadPool, makeBatchPool, savePool } from './batches.js'
import { MB, percentile } from './measure.js'
import { brookLogKeys, interleavedRuns, spread } from './interleaved.js'
import { report, workerInput } from './worker.js'

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
  const keys = brookLogKeys(PARTITIONS, pool.recordsPerBatch)
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
      batch.put(keys.next(n % PARTITIONS).key, value)
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

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * KiB ? `${bytes / (1024 * KiB)} MiB` : `${bytes / KiB} KiB`
}

const COMMAND = benchCommand(
  'write-size',
  'node dist/bench/write-size.js [options]',
  'LevelDB write throughput, time per write and peak RSS against the size of one write, each size in a fresh process.',
)
  .option('--sizes-kib <n,...>', 'sizes of one write, KiB', numbers, [64, 256, 1024, 4096, 16384, 32768, 65536, 262144])
  .option('--total-mb <n>', 'MB written per size and run', number(), 512)
  .option('--runs <n>', 'runs of every size', number(), 3)
  .option('--sync', 'synced writes, as with `brook start --fsync`', false)
  .option('--batch-kib <n>', 'batch size, KiB', number(), 16)

async function main(): Promise<void> {
  const values = COMMAND.parse().opts()
  const sizes = values.sizesKib.map((kib) => kib * KiB)
  const totalBytes = values.totalMb * MB
  const runs = values.runs
  const work = mkdtempSync(join(tmpdir(), 'brook-write-size-'))
  try {
    const poolFile = join(work, 'pool')
    savePool(makeBatchPool({ batches: 4096, batchBytes: values.batchKib * KiB, recordBytes: 100 }), poolFile)
    const results = await interleavedRuns<number, RunResult>({
      script: 'write-size.js',
      variants: sizes,
      runs,
      work,
      input: (writeBytes, dir) => ({ dir, poolFile, totalBytes, writeBytes, sync: values.sync }) satisfies RunInput,
    })
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
