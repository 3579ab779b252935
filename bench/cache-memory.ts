/**
 * What the batch cache costs the write path, against its budget: the measurement behind storage/README.md's
 * "What the cache costs produce". Each budget runs in a fresh process on a fresh database opened with Brook's
 * LEVEL_OPTIONS. The process writes the bench's record batches (~16 KiB, random values) under Brook-shaped log keys
 * round-robin over 8 partitions, 16 batches per chained-batch write (as a group commit of 16 produce requests), and
 * admits each batch to a real `BatchCache` of that budget, each in a buffer of its own (as a produce request's bytes
 * arrive in a fresh buffer). Budget 0 caches nothing. Before anything is measured, it writes as much as the budget, so
 * the cache is full (as in a node that has run for a while); the first fill of the cache costs more (fresh pages).
 *
 *   npm run build && node dist/bench/cache-memory.js                     # budgets 0,16,64,256 MiB, 1024 MiB each, 3 runs
 *   node dist/bench/cache-memory.js --budgets-mib 0,256 --total-mb 512 --runs 1
 *
 * It reports, per MiB written: the process's CPU time, the time spent in `batch.put` (LevelDB copying the value into
 * its write batch) and the minor page faults (pages the kernel had to hand out fresh). The last line is a markdown
 * table: median [min..max] over the runs.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { LEVEL_OPTIONS } from '../storage/database.js'
import { BatchCache, type CacheRun } from '../storage/batch-cache.js'
import { benchCommand, number, numbers } from './args.js'
import { batchCount, loadPool, makeBatchPool, savePool } from './batches.js'
import { brookLogKeys, interleavedRuns, spread } from './interleaved.js'
import { report, workerInput } from './worker.js'

interface RunInput {
  dir: string
  poolFile: string
  totalBytes: number
  budgetBytes: number
}

interface RunResult {
  budgetMiB: number
  cpuMsPerMiB: number
  putMsPerMiB: number
  faultsPerMiB: number
  peakRssMB: number
}

const PARTITIONS = 8
const BATCHES_PER_WRITE = 16
const MiB = 1024 * 1024

async function run(input: RunInput): Promise<void> {
  const pool = loadPool(input.poolFile)
  const total = batchCount(input.totalBytes, pool)
  const keys = brookLogKeys(PARTITIONS, pool.recordsPerBatch)
  const cache = new BatchCache(input.budgetBytes)
  const runs: CacheRun[] = Array.from({ length: PARTITIONS }, () => cache.run())
  const db = new Level<Buffer, Buffer>(input.dir, { ...LEVEL_OPTIONS, keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  let n = 0
  let putNs = 0n
  /** Writes `count` more batches, 16 per write, each also admitted to the cache; returns their bytes. */
  const write = async (count: number): Promise<number> => {
    let bytes = 0
    for (const last = n + count; n < last; ) {
      const batch = db.batch()
      for (const end = Math.min(last, n + BATCHES_PER_WRITE); n < end; n++) {
        const partition = n % PARTITIONS
        const stored = pool.batches[n % pool.batches.length]!
        const value = Buffer.allocUnsafeSlow(stored.length)
        stored.copy(value)
        const { key, baseOffset, lastOffset } = keys.next(partition)
        const putStart = process.hrtime.bigint()
        batch.put(key, value)
        putNs += process.hrtime.bigint() - putStart
        runs[partition]!.append({ baseOffset, lastOffset, bytes: value })
        bytes += value.length
      }
      await batch.write()
    }
    return bytes
  }
  // A node that has run for a while: its cache is full before anything is measured.
  await write(batchCount(input.budgetBytes, pool))
  putNs = 0n
  const faultsBefore = process.resourceUsage().minorPageFault
  const cpuBefore = process.cpuUsage()
  const bytes = await write(total)
  const cpu = process.cpuUsage(cpuBefore)
  const faults = process.resourceUsage().minorPageFault - faultsBefore
  await db.close()
  const mib = bytes / MiB
  report({
    budgetMiB: input.budgetBytes / MiB,
    cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / mib,
    putMsPerMiB: Number(putNs) / 1e6 / mib,
    faultsPerMiB: faults / mib,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6,
  } satisfies RunResult)
}

const COMMAND = benchCommand(
  'cache-memory',
  'node dist/bench/cache-memory.js [options]',
  'What the batch cache costs the write path, per budget, each in a fresh process: CPU, batch.put time and page faults per MiB.',
)
  .option('--budgets-mib <n,...>', 'cache budgets, MiB', numbers, [0, 16, 64, 256])
  .option('--total-mb <n>', 'MB written per budget and run', number(1), 1024)
  .option('--runs <n>', 'runs of each budget', number(1), 3)

async function main(): Promise<void> {
  const values = COMMAND.parse().opts()
  const budgets = values.budgetsMib.map((mib) => mib * MiB)
  const totalBytes = values.totalMb * 1e6
  const runs = values.runs
  const work = mkdtempSync(join(tmpdir(), 'brook-cache-memory-'))
  try {
    const poolFile = join(work, 'pool')
    savePool(makeBatchPool({ batches: 256, batchBytes: 16 * 1024, recordBytes: 100 }), poolFile)
    const results = await interleavedRuns<number, RunResult>({
      script: 'cache-memory.js',
      variants: budgets,
      runs,
      work,
      input: (budgetBytes, dir) => ({ dir, poolFile, totalBytes, budgetBytes }) satisfies RunInput,
    })
    console.log('| cache budget | CPU ms per MiB written | of it in batch.put | minor page faults per MiB | peak RSS, MB |')
    console.log('|---|---|---|---|---|')
    for (const [budgetBytes, list] of results) {
      console.log(
        `| ${budgetBytes / MiB} MiB | ${spread(list.map((x) => x.cpuMsPerMiB), 2)} | ${spread(list.map((x) => x.putMsPerMiB), 2)} | ` +
          `${spread(list.map((x) => x.faultsPerMiB), 0)} | ${spread(list.map((x) => x.peakRssMB), 0)} |`,
      )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[2]?.startsWith('{')) await run(workerInput<RunInput>())
else await main()
