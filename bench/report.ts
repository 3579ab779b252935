/**
 * The report: one JSON document (every run's figures, the medians, the parameters and the machine) and its markdown
 * rendering. The ratios compare Brook with the raw limits measured in the same run, and the median of the per-run
 * ratios is what is held against the aims, since the raw figures drift with the machine's load.
 */
import type { MachineInfo } from './machine.js'
import type { BenchOptions } from './options.js'
import type { BrookResult } from './brook-scenarios.js'
import { REBALANCE_SCENARIOS, type GroupResult } from './group-scenarios.js'
import type { RawLevelResult } from './raw-level.js'
import { median, type CpuUse, type Throughput } from './measure.js'

/** The aims the bench holds the broker to: produce and fetch at >= 70% of raw LevelDB write and read. */
export const AIMS = { produceVsRawWrite: 0.7, fetchVsRawRead: 0.7 } as const

export interface RunResult {
  startedAt: string
  loadAtStart: number[]
  loadAtEnd: number[]
  tcp: (Throughput & { cpu?: CpuUse }) | null
  raw: RawLevelResult
  brook: BrookResult
  /** Null when skipped (--group-mb 0). */
  groups: GroupResult | null
  ratios: { produceVsRawWrite: number; fetchWarmVsRawRead: number; fetchAfterRestartVsRawRead: number }
}

export interface Report {
  startedAt: string
  finishedAt: string
  machine: MachineInfo
  parameters: BenchOptions & { recordsPerBatch: number; batchBytesActual: number; totalBatches: number }
  aims: typeof AIMS
  runs: RunResult[]
  /** Median, min and max over the runs of each headline figure. */
  summary: Record<string, Spread>
  /** Every error any scenario saw; empty when the run is clean. */
  errors: string[]
}

export interface Spread {
  median: number
  min: number
  max: number
}

type Measured = Throughput & { cpu?: CpuUse }
export type MeasuredRun = Omit<RunResult, 'ratios'>

/** Every scenario of a run by name, with the process whose CPU it measures (the raw worker, or the broker). */
function scenarios(run: MeasuredRun): Record<string, { result: Measured; subjectCores?: number } | undefined> {
  const raw = (result: Measured) => ({ result, subjectCores: result.cpu?.processes.worker })
  const brook = (result: Measured) => ({ result, subjectCores: result.cpu?.processes.broker })
  return {
    tcp: run.tcp ? { result: run.tcp } : undefined,
    rawWrite: raw(run.raw.write),
    rawRead: raw(run.raw.read),
    rawReadReopened: raw(run.raw.readReopened),
    produce: brook(run.brook.produce),
    fetchWarm: brook(run.brook.fetchWarm),
    fetchAfterRestart: brook(run.brook.fetchAfterRestart),
  }
}

/** Each Brook scenario, the raw limit it is held against, and the aim. */
const PAIRS = [
  { ratio: 'produceVsRawWrite', brook: 'produce', raw: 'rawWrite', aim: AIMS.produceVsRawWrite },
  { ratio: 'fetchWarmVsRawRead', brook: 'fetchWarm', raw: 'rawRead', aim: AIMS.fetchVsRawRead },
  { ratio: 'fetchAfterRestartVsRawRead', brook: 'fetchAfterRestart', raw: 'rawReadReopened', aim: AIMS.fetchVsRawRead },
] as const

/** MB moved per CPU-second of the process doing the work: less sensitive than MB/s to other load on the machine. */
function mbPerCoreSecond(entry: { result: Measured; subjectCores?: number } | undefined): number | undefined {
  return entry?.subjectCores ? entry.result.MBps / entry.subjectCores : undefined
}

export function ratios(run: MeasuredRun): RunResult['ratios'] {
  const all = scenarios(run)
  return Object.fromEntries(
    PAIRS.map((pair) => [pair.ratio, all[pair.brook]!.result.MBps / all[pair.raw]!.result.MBps]),
  ) as RunResult['ratios']
}

/** The headline figures of one run, by name. */
/** The figure name of a rebalance scenario: `rebalance.delay3000.members1`. */
function rebalanceKey(scenario: { initialDelayMs: number; members: number }): string {
  return `rebalance.delay${scenario.initialDelayMs}.members${scenario.members}`
}

function headlines(run: RunResult): Record<string, number | undefined> {
  const figures: Record<string, number | undefined> = {
    'produce.latencyP50Ms': run.brook.produce.latencyMs.p50,
    'produce.latencyP99Ms': run.brook.produce.latencyMs.p99,
    restartMs: run.brook.restartMs,
    settledMs: run.brook.settledMs,
    rawSettledMs: run.raw.readReopened.settledMs,
  }
  for (const rebalance of run.groups?.rebalance ?? []) {
    const key = rebalanceKey(rebalance)
    figures[`${key}.firstMs`] = rebalance.firstRecordMs[0]
    figures[`${key}.lastMs`] = rebalance.firstRecordMs.at(-1)
  }
  if (run.groups) {
    figures['kafkajsConsumer.recordsPerSec'] = run.groups.kafkajsConsumer.recordsPerSec
    figures['kafkajsConsumer.MBps'] = run.groups.kafkajsConsumer.MBps
    figures['groupRawFetch.recordsPerSec'] = run.groups.rawFetch.recordsPerSec
    figures['groupRawFetch.MBps'] = run.groups.rawFetch.MBps
    figures['ratio.kafkajsConsumerVsRawFetch'] = run.groups.kafkajsConsumer.recordsPerSec / run.groups.rawFetch.recordsPerSec
  }
  const all = scenarios(run)
  for (const [name, entry] of Object.entries(all)) {
    figures[`${name}.MBps`] = entry?.result.MBps
    figures[`${name}.recordsPerSec`] = entry?.result.recordsPerSec || undefined
    figures[`${name}.MBperCoreSecond`] = mbPerCoreSecond(entry)
  }
  for (const pair of PAIRS) {
    figures[`ratio.${pair.ratio}`] = run.ratios[pair.ratio]
    const brook = mbPerCoreSecond(all[pair.brook])
    const raw = mbPerCoreSecond(all[pair.raw])
    figures[`costRatio.${pair.ratio}`] = brook !== undefined && raw !== undefined ? brook / raw : undefined
  }
  return figures
}

export function summarize(runs: readonly RunResult[]): Record<string, Spread> {
  const values = new Map<string, number[]>()
  for (const run of runs) {
    for (const [name, value] of Object.entries(headlines(run))) {
      if (value === undefined) continue
      values.set(name, [...(values.get(name) ?? []), value])
    }
  }
  return Object.fromEntries(
    [...values].map(([name, list]) => [name, { median: median(list), min: Math.min(...list), max: Math.max(...list) }]),
  )
}

export function runErrors(run: RunResult): string[] {
  const errors: string[] = []
  const { produce, fetchWarm, fetchAfterRestart } = run.brook
  if (produce.errors > 0) errors.push(`produce: ${produce.errors} partition errors, first: ${produce.firstError}`)
  for (const [name, fetched] of [['fetch (warm)', fetchWarm], ['fetch (after restart)', fetchAfterRestart]] as const) {
    if (fetched.errors > 0) errors.push(`${name}: ${fetched.errors} errors, first: ${fetched.firstError}`)
    if (!fetched.complete) errors.push(`${name}: did not read every partition to its end`)
    if (fetched.records !== produce.records) {
      errors.push(`${name}: read ${fetched.records} records, ${produce.records} were acknowledged`)
    }
  }
  const groupFetch = run.groups?.rawFetch
  if (groupFetch && (groupFetch.errors > 0 || !groupFetch.complete)) errors.push(`group scenario raw fetch: ${groupFetch.firstError ?? 'incomplete'}`)
  for (const rebalance of run.groups?.rebalance ?? []) {
    if (rebalance.generationMembers !== rebalance.members) {
      errors.push(`rebalance (delay ${rebalance.initialDelayMs} ms): ${rebalance.generationMembers} members, not ${rebalance.members}`)
    }
  }
  return errors
}

// ---- markdown ----

function number(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`
  if (value >= 1e4) return `${(value / 1e3).toFixed(0)} k`
  if (value >= 100) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(1)
}

function percent(value: number): string {
  return `${(value * 100).toFixed(0)}%`
}

function cell(spread: Spread | undefined, format: (value: number) => string, runs: number): string {
  if (!spread) return '–'
  if (runs === 1) return format(spread.median)
  return `${format(spread.median)} [${format(spread.min)}..${format(spread.max)}]`
}

function cpuCell(use: (CpuUse | undefined)[], subject: string): string {
  const present = use.filter((u): u is CpuUse => u !== undefined)
  if (present.length === 0) return '–'
  const parts = [
    ...Object.keys(present[0]!.processes).map((name) => {
      const total = median(present.map((u) => u.processes[name] ?? 0))
      const main = median(present.map((u) => u.mainThreads[name] ?? 0))
      return `${name} ${total.toFixed(2)} (main thread ${main.toFixed(2)})`
    }),
    ...(subject in present[0]!.processes ? [] : [`${subject} ${median(present.map((u) => u.client)).toFixed(2)}`]),
    `others ${median(present.map((u) => u.others)).toFixed(2)}`,
  ]
  return parts.join(' · ')
}

export function renderMarkdown(report: Report): string {
  const { machine, parameters: p, summary: s, runs } = report
  const n = runs.length
  const figure = (name: string, format: (value: number) => string): string => cell(s[name], format, n)
  const ratio = (name: string, aim: number): string => {
    const spread = s[`ratio.${name}`]
    const mark = spread ? (spread.median >= aim ? ' ✓' : ' ✗') : ''
    return `${cell(spread, percent, n)}${mark}`
  }
  const cpu = (pick: (run: RunResult) => CpuUse | undefined, subject: string): string => cpuCell(runs.map(pick), subject)
  const row = (title: string, name: string, pick: (run: RunResult) => CpuUse | undefined, subject: string, pair?: (typeof PAIRS)[number]): string[] => [
    title,
    figure(`${name}.MBps`, number),
    figure(`${name}.recordsPerSec`, number),
    pair ? ratio(pair.ratio, pair.aim) : '',
    pair ? `≥ ${percent(pair.aim)}` : '',
    `${figure(`${name}.MBperCoreSecond`, number)}${pair ? ` (${figure(`costRatio.${pair.ratio}`, percent)} of raw)` : ''}`,
    cpu(pick, subject),
  ]
  const [produce, fetchWarm, fetchAfterRestart] = PAIRS
  const rows = [
    row('loopback TCP, 2 processes', 'tcp', (r) => r.tcp?.cpu, 'source'),
    row('raw LevelDB write', 'rawWrite', (r) => r.raw.write.cpu, 'worker'),
    row('**Brook produce** (acks=1)', 'produce', (r) => r.brook.produce.cpu, 'client', produce),
    row('raw LevelDB read, right after the write', 'rawRead', (r) => r.raw.read.cpu, 'worker'),
    row('**Brook fetch**, right after produce', 'fetchWarm', (r) => r.brook.fetchWarm.cpu, 'client', fetchWarm),
    row('raw LevelDB read, after reopening', 'rawReadReopened', (r) => r.raw.readReopened.cpu, 'worker'),
    row('**Brook fetch**, after restart', 'fetchAfterRestart', (r) => r.brook.fetchAfterRestart.cpu, 'client', fetchAfterRestart),
  ]
  const table = [
    '| scenario | MB/s | records/s | vs raw | aim | MB per CPU-second | CPU, cores (median) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
  ]
  const load = (values: number[]): string => values.map((v) => v.toFixed(2)).join(' ')
  const MiB = 1024 * 1024
  const lines = [
    `# Brook bench, ${report.startedAt}`,
    '',
    `${n === 1 ? 'One run' : `${n} runs: median [min..max]`}. MB = 10^6 bytes of record batches; records are ${p.recordBytes}-byte values.`,
    '',
    ...table,
    '',
    `- produce latency per request: p50 ${figure('produce.latencyP50Ms', (v) => v.toFixed(1))} ms, p99 ${figure('produce.latencyP99Ms', (v) => v.toFixed(1))} ms; broker restart (open + recovery): ${figure('restartMs', (v) => v.toFixed(0))} ms, then ${figure('settledMs', (v) => v.toFixed(0))} ms until LevelDB's compaction after the reopen was done (raw: ${figure('rawSettledMs', (v) => v.toFixed(0))} ms); both reads after reopening start then`,
    '- MB per CPU-second: MB/s over the cores used by the process doing the work (the raw worker, or the broker with all its threads; not the client). Its ratio to raw is less sensitive to other load on the machine than the MB/s ratio.',
    `- checks: ${report.errors.length === 0 ? 'every request answered without error; every acknowledged record fetched back, twice' : report.errors.join('; ')}`,
    ...(runs.some((r) => r.groups)
      ? [
          '',
          '## Consumer groups',
          '',
          '| scenario | result |',
          '|---|---|',
          ...REBALANCE_SCENARIOS.map((scenario) => {
            const key = rebalanceKey(scenario)
            const joined = scenario.members === 1 ? 'a lone kafkajs member joins' : `${scenario.members} kafkajs members join`
            const which = scenario.members === 1 ? '' : ' (first member / last member)'
            const times = scenario.members === 1 ? `${figure(`${key}.firstMs`, (v) => v.toFixed(0))} ms` : `${figure(`${key}.firstMs`, (v) => v.toFixed(0))} ms / ${figure(`${key}.lastMs`, (v) => v.toFixed(0))} ms`
            return `| ${joined}, group.initial.rebalance.delay.ms ${scenario.initialDelayMs}: start to first record${which} | ${times} |`
          }),
          `| one kafkajs 2.2.4 group member, eachBatch, first to last batch | ${figure('kafkajsConsumer.recordsPerSec', number)} records/s, ${figure('kafkajsConsumer.MBps', number)} MB/s |`,
          `| raw Fetch of the same data (same 10 MiB / 1 MiB limits, no record decoding) | ${figure('groupRawFetch.recordsPerSec', number)} records/s, ${figure('groupRawFetch.MBps', number)} MB/s |`,
          `| kafkajs member / raw fetch | ${figure('ratio.kafkajsConsumerVsRawFetch', percent)} |`,
          '',
          `- ${(p.groupBytes / MiB).toFixed(0)} MiB in ${p.partitions} partitions for the consumer; the rebalance topic has 6 partitions and 12 batches. Kafka's default initial delay makes a new group wait one delay for more members, and once more after each wait during which members joined (InitialDelayedJoin), within the rebalance timeout.`,
        ]
      : []),
    '',
    '## Parameters',
    '',
    `- data: ${(p.totalBytes / MiB).toFixed(0)} MiB per scenario = ${p.totalBatches.toLocaleString('en-US')} batches of ${p.batchBytesActual} B, ${p.recordsPerBatch} records each, from a pool of ${p.poolBatches} distinct batches (random values, ${p.compression === 'none' ? 'uncompressed' : p.compression}); broker record validation ${p.validation}; warm-up ${(p.warmupBytes / MiB).toFixed(0)} MiB; broker batch cache ${p.brokerCacheMaxBytes === null ? 'its default' : `${(p.brokerCacheMaxBytes / MiB).toFixed(0)} MiB`}`,
    `- produce: ${p.partitions} partitions, ${p.batchesPerRequest} batch(es) per request, ${p.window} in flight × ${p.connections} connection(s), Produce v${runs[0]?.brook.versions.produce ?? '?'}`,
    `- fetch: Fetch v${runs[0]?.brook.versions.fetch ?? '?'}, maxBytes ${(p.fetchMaxBytes / MiB).toFixed(0)} MiB, partitionMaxBytes ${(p.partitionMaxBytes / MiB).toFixed(0)} MiB, ${p.fetchConnections} connection(s), one fetch in flight each`,
    `- raw LevelDB: ${p.rawBatchesPerWrite} batches per chained-batch write, round-robin over ${p.partitions} partitions, 28-byte keys, options ${JSON.stringify(p.rawLevelOptions)}; read with one iterator (nextv, highWaterMarkBytes 64 MiB, fillCache false)`,
    `- data directories under ${p.tmpDir}; page cache not dropped between write and read`,
    '',
    '## Machine',
    '',
    `- ${machine.cpuModel}, ${machine.cores} cores${machine.cpuMHz ? ` @ ${machine.cpuMHz} MHz` : ''}, ${machine.memoryGB} GB, Linux ${machine.kernel}`,
    `- Node ${machine.node}, level ${machine.packages.level}, classic-level ${machine.packages['classic-level']}`,
    `- load average (1 5 15 min) at the start of each run: ${runs.map((r) => load(r.loadAtStart)).join(' | ')}; at the end: ${runs.map((r) => load(r.loadAtEnd)).join(' | ')}`,
  ]
  return `${lines.join('\n')}\n`
}
