/**
 * `npm run bench`: measures Brook beside the physical limits of the same machine, in one run.
 *
 *   pool of batches -> loopback TCP -> raw LevelDB write + read -> Brook produce, fetch, restart, fetch
 *   -> consumer groups (rebalance time, one kafkajs member's throughput) -> report
 *
 * Options: `npm run bench -- --help`. The report is printed as markdown and written to bench/results/<time>.json/.md.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Compression, loadCodec } from '../protocol/compression.js'
import { batchCount, makeBatchPool, savePool, type BatchPool } from './batches.js'
import { brookScenarios } from './brook-scenarios.js'
import { groupScenarios } from './group-scenarios.js'
import { machineInfo } from './machine.js'
import { parseOptions, type BenchOptions } from './options.js'
import { rawLevel } from './raw-level.js'
import { rawTcp } from './raw-tcp.js'
import { AIMS, ratios, renderMarkdown, runErrors, summarize, type Report, type RunResult } from './report.js'

/**
 * Lets the previous scenario's dirty pages reach the disk before the next one starts, so that one scenario's
 * writeback is not charged to the next.
 */
async function settle(): Promise<void> {
  try {
    execFileSync('sync')
  } catch {
    // Not every platform has sync(1); the pause still helps.
  }
  await sleep(1000)
}

async function runOnce(options: BenchOptions, pool: BatchPool, progress: (line: string) => void): Promise<RunResult> {
  const startedAt = new Date().toISOString()
  const loadAtStart = loadavg()
  const dir = mkdtempSync(join(options.tmpDir, 'brook-bench-'))
  try {
    const poolFile = join(dir, 'pool.bin')
    savePool(pool, poolFile)
    progress('loopback TCP')
    const tcp = options.tcpMs > 0 ? await rawTcp(options.tcpMs) : null
    await settle()
    progress('raw LevelDB write and read')
    const raw = await rawLevel({
      dir: join(dir, 'raw'),
      poolFile,
      totalBytes: options.totalBytes,
      partitions: options.partitions,
      batchesPerWrite: options.rawBatchesPerWrite,
      levelOptions: options.rawLevelOptions,
    })
    await settle()
    progress('Brook produce, fetch, restart, fetch')
    const brook = await brookScenarios(options, pool, dir)
    let groups = null
    if (options.groupBytes > 0) {
      await settle()
      progress('consumer groups: rebalance, kafkajs consumer')
      // kafkajs reads only uncompressed and gzip batches, so the group scenarios keep to uncompressed ones.
      const groupPool = options.compression === 'none' ? pool : makeBatchPool({ batches: options.poolBatches, batchBytes: options.batchBytes, recordBytes: options.recordBytes })
      groups = await groupScenarios({ pool: groupPool, totalBytes: options.groupBytes, partitions: options.partitions, dataDir: dir })
    }
    const run = { startedAt, loadAtStart, loadAtEnd: loadavg(), tcp, raw, brook, groups }
    return { ...run, ratios: ratios(run) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const progress = (line: string): void => {
    if (!options.quiet) process.stderr.write(`bench: ${line}\n`)
  }
  const startedAt = new Date().toISOString()
  const machine = machineInfo()
  await loadCodec(Compression[options.compression])
  const pool = makeBatchPool({ batches: options.poolBatches, batchBytes: options.batchBytes, recordBytes: options.recordBytes, compression: options.compression })
  const runs: RunResult[] = []
  for (let i = 0; i < options.repeat; i++) {
    progress(`run ${i + 1} of ${options.repeat}`)
    runs.push(await runOnce(options, pool, progress))
  }
  const report: Report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    parameters: {
      ...options,
      recordsPerBatch: pool.recordsPerBatch,
      batchBytesActual: pool.batches[0]!.length,
      totalBatches: batchCount(options.totalBytes, pool),
    },
    aims: AIMS,
    runs,
    summary: summarize(runs),
    errors: runs.flatMap(runErrors),
  }
  const markdown = renderMarkdown(report)
  process.stdout.write(markdown)
  if (options.outDir) {
    mkdirSync(options.outDir, { recursive: true })
    const base = join(options.outDir, startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z'))
    writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`)
    writeFileSync(`${base}.md`, markdown)
    progress(`report written to ${base}.json and .md`)
  }
  if (report.errors.length > 0) process.exitCode = 1
}

await main()
