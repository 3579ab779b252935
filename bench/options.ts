/**
 * The bench's parameters: flags win over environment variables (`BENCH_<NAME>`, e.g. BENCH_TOTAL_MB=256), which win
 * over the defaults. The defaults are sized so that one run takes about a minute and a half on a 2-core machine.
 */
import { parseArgs } from 'node:util'
import { tmpdir } from 'node:os'
import { resolve } from 'node:path'
import { LEVEL_OPTIONS } from '../storage/database.js'
import { COMPRESSION_NAMES, type CompressionName } from '../protocol/compression.js'

export interface BenchOptions {
  /** Bytes of record batches produced to Brook, and written raw to LevelDB. */
  totalBytes: number
  /** Bytes produced to a separate topic before timing starts, so the broker's hot path is compiled. */
  warmupBytes: number
  batchBytes: number
  recordBytes: number
  /** Distinct pre-encoded batches; they are sent round-robin. */
  poolBatches: number
  partitions: number
  /** Partitions each Produce request carries (one batch each), as a client with several ready partitions sends. */
  batchesPerRequest: number
  /** In-flight Produce requests per connection. */
  window: number
  connections: number
  /** Connections the fetch scenario spreads the partitions over (one fetch in flight on each). */
  fetchConnections: number
  fetchMaxBytes: number
  partitionMaxBytes: number
  /** Batches in each raw LevelDB write (Brook's group commit writes what arrived together). */
  rawBatchesPerWrite: number
  /**
   * Options for the raw LevelDB database (`new Level(dir, options)`). The default, none, is what storage/database.ts
   * opens Brook's database with today; keep them the same so that the ratios compare like with like.
   */
  rawLevelOptions: Record<string, unknown>
  tcpMs: number
  /** Bytes of batches the consumer-group throughput scenario reads; 0 skips the group scenarios. */
  groupBytes: number
  /** Whole runs; the report gives the median and the range of each figure. */
  repeat: number
  /** Where data directories go (removed afterwards). */
  tmpDir: string
  /** Where the .json and .md reports go; empty for none. */
  outDir: string
  /** Passes --cpu-prof to the broker process and keeps the profiles in this directory. */
  brokerCpuProfDir: string
  /** The codec of the pool's batches (compression.ts names): what the producer compressed with. */
  compression: CompressionName
  /** full: the broker walks every produced batch's records (the default); header-only: --no-record-validation. */
  validation: 'full' | 'header-only'
  /** The broker's --cache-max-bytes; null leaves its default. */
  brokerCacheMaxBytes: number | null
  quiet: boolean
}

const MiB = 1024 * 1024

const SPEC = {
  'total-mb': { default: 1024, unit: MiB, help: 'MiB of record batches produced (and written raw)' },
  'warmup-mb': { default: 32, unit: MiB, help: 'MiB produced to a warm-up topic before timing' },
  'batch-bytes': { default: 16384, unit: 1, help: 'record batch size' },
  'record-bytes': { default: 100, unit: 1, help: 'record value size' },
  'pool-batches': { default: 256, unit: 1, help: 'distinct pre-encoded batches' },
  partitions: { default: 8, unit: 1, help: 'partitions of the bench topic' },
  'batches-per-request': { default: 1, unit: 1, help: 'partitions (one batch each) per Produce request' },
  window: { default: 16, unit: 1, help: 'in-flight Produce requests per connection' },
  connections: { default: 2, unit: 1, help: 'producer connections' },
  'fetch-connections': { default: 2, unit: 1, help: 'fetch connections (partitions split among them)' },
  'group-mb': { default: 128, unit: MiB, help: 'MiB read by one kafkajs group member (0 skips the group scenarios)' },
  'fetch-max-mb': { default: 64, unit: MiB, help: 'Fetch maxBytes' },
  'partition-max-mb': { default: 8, unit: MiB, help: 'Fetch partitionMaxBytes' },
  'raw-batches-per-write': { default: 16, unit: 1, help: 'batches per raw LevelDB write' },
  'tcp-seconds': { default: 3, unit: 1000, help: 'duration of the loopback TCP scenario' },
  repeat: { default: 1, unit: 1, help: 'whole runs (median and range reported)' },
} as const

type NumericFlag = keyof typeof SPEC

function envName(flag: string): string {
  return `BENCH_${flag.toUpperCase().replaceAll('-', '_')}`
}

export function usage(): string {
  const lines = Object.entries(SPEC).map(
    ([flag, spec]) => `  --${flag.padEnd(24)}${spec.help} (default ${spec.default}; env ${envName(flag)})`,
  )
  return [
    'usage: npm run bench -- [options]',
    ...lines,
    `  --${'raw-level-options <json>'.padEnd(24)}options for the raw LevelDB database (default: Brook's own; env BENCH_RAW_LEVEL_OPTIONS)`,
    `  --${'tmp-dir <dir>'.padEnd(24)}where data directories go (default the OS temp dir; env BENCH_TMP_DIR)`,
    `  --${'out-dir <dir>'.padEnd(24)}where reports go (default bench/results; '' for none; env BENCH_OUT_DIR)`,
    `  --${'broker-cpu-prof <dir>'.padEnd(24)}run the broker with --cpu-prof, profiles into <dir>`,
    `  --${'compression <codec>'.padEnd(24)}codec of the produced batches: ${PRODUCER_CODECS.join(', ')} (default none; env BENCH_COMPRESSION)`,
    `  --${'validation <mode>'.padEnd(24)}full, or header-only (the broker runs with --no-record-validation) (default full; env BENCH_VALIDATION)`,
    `  --${'cache-max-mb <MiB>'.padEnd(24)}the broker's batch cache (--cache-max-bytes; default the broker's; env BENCH_CACHE_MAX_MB)`,
    `  --${'quiet'.padEnd(24)}no progress lines on stderr`,
  ].join('\n')
}

function jsonObject(name: string, text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${name} must be a JSON object, not '${text}'`)
  }
  return value as Record<string, unknown>
}

/** The codecs Brook can compress with (it reads zstd but does not write it). */
const PRODUCER_CODECS = COMPRESSION_NAMES.filter((name) => name !== 'zstd')

/** `--cache-max-mb` in bytes, or null when not given (the broker keeps its default). */
function cacheMaxBytes(text: string): number | null {
  if (text === '') return null
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0) throw new Error(`--cache-max-mb must be a non-negative number, not '${text}'`)
  return Math.round(value * MiB)
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, not '${value}'`)
  return value as T
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(Object.keys(SPEC).map((flag) => [flag, { type: 'string' as const }])),
      'raw-level-options': { type: 'string' },
      'tmp-dir': { type: 'string' },
      'out-dir': { type: 'string' },
      'broker-cpu-prof': { type: 'string' },
      compression: { type: 'string' },
      validation: { type: 'string' },
      'cache-max-mb': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  })
  if (values.help) {
    console.log(usage())
    process.exit(0)
  }
  const given = values as Record<string, string | boolean | undefined>
  const number = (flag: NumericFlag): number => {
    const raw = (given[flag] as string | undefined) ?? env[envName(flag)]
    const value = raw === undefined ? SPEC[flag].default : Number(raw)
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} must be a non-negative number, not '${raw}'`)
    return Math.round(value * SPEC[flag].unit)
  }
  const string = (flag: 'tmp-dir' | 'out-dir' | 'broker-cpu-prof' | 'raw-level-options' | 'compression' | 'validation' | 'cache-max-mb', fallback: string): string =>
    (given[flag] as string | undefined) ?? env[envName(flag)] ?? fallback
  const options: BenchOptions = {
    totalBytes: number('total-mb'),
    warmupBytes: number('warmup-mb'),
    batchBytes: number('batch-bytes'),
    recordBytes: number('record-bytes'),
    poolBatches: Math.max(1, number('pool-batches')),
    partitions: Math.max(1, number('partitions')),
    batchesPerRequest: Math.max(1, number('batches-per-request')),
    window: Math.max(1, number('window')),
    connections: Math.max(1, number('connections')),
    fetchConnections: Math.max(1, number('fetch-connections')),
    fetchMaxBytes: number('fetch-max-mb'),
    partitionMaxBytes: number('partition-max-mb'),
    rawBatchesPerWrite: Math.max(1, number('raw-batches-per-write')),
    rawLevelOptions: jsonObject('--raw-level-options', string('raw-level-options', JSON.stringify(LEVEL_OPTIONS))),
    tcpMs: number('tcp-seconds'),
    groupBytes: number('group-mb'),
    repeat: Math.max(1, number('repeat')),
    tmpDir: resolve(string('tmp-dir', tmpdir())),
    outDir: string('out-dir', resolve(import.meta.dirname, '../../bench/results')),
    brokerCpuProfDir: string('broker-cpu-prof', ''),
    compression: oneOf('--compression', string('compression', 'none'), PRODUCER_CODECS),
    validation: oneOf('--validation', string('validation', 'full'), ['full', 'header-only'] as const),
    brokerCacheMaxBytes: cacheMaxBytes(string('cache-max-mb', '')),
    quiet: values.quiet ?? false,
  }
  if (options.batchesPerRequest > options.partitions) options.batchesPerRequest = options.partitions
  return options
}
