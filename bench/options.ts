/**
 * The bench's parameters: flags win over environment variables (`BENCH_<NAME>`, e.g. BENCH_TOTAL_MB=256), which win
 * over the defaults. The defaults are sized so that one run takes about a minute and a half on a 2-core machine.
 */
import { tmpdir } from 'node:os'
import { resolve } from 'node:path'
import { LEVEL_OPTIONS } from '../storage/database.js'
import { COMPRESSION_NAMES, type CompressionName } from '../protocol/compression.js'
import { badCommandLine, parseCommandLine } from './args.js'

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

/** The codecs Brook can compress with (it reads zstd but does not write it). */
const PRODUCER_CODECS = COMPRESSION_NAMES.filter((name) => name !== 'zstd')

/** The numeric flags; `unit` turns a flag's value into the option's (MiB into bytes, seconds into ms). */
const COUNTS = {
  'total-mb': { type: 'number', default: 1024, unit: MiB, help: 'MiB of record batches produced (and written raw)' },
  'warmup-mb': { type: 'number', default: 32, unit: MiB, help: 'MiB produced to a warm-up topic before timing' },
  'batch-bytes': { type: 'number', default: 16384, unit: 1, help: 'record batch size' },
  'record-bytes': { type: 'number', default: 100, unit: 1, help: 'record value size' },
  'pool-batches': { type: 'number', default: 256, unit: 1, help: 'distinct pre-encoded batches' },
  partitions: { type: 'number', default: 8, unit: 1, help: 'partitions of the bench topic' },
  'batches-per-request': { type: 'number', default: 1, unit: 1, help: 'partitions (one batch each) per Produce request' },
  window: { type: 'number', default: 16, unit: 1, help: 'in-flight Produce requests per connection' },
  connections: { type: 'number', default: 2, unit: 1, help: 'producer connections' },
  'fetch-connections': { type: 'number', default: 2, unit: 1, help: 'fetch connections (partitions split among them)' },
  'group-mb': { type: 'number', default: 128, unit: MiB, help: 'MiB read by one kafkajs group member (0 skips the group scenarios)' },
  'fetch-max-mb': { type: 'number', default: 64, unit: MiB, help: 'Fetch maxBytes' },
  'partition-max-mb': { type: 'number', default: 8, unit: MiB, help: 'Fetch partitionMaxBytes' },
  'raw-batches-per-write': { type: 'number', default: 16, unit: 1, help: 'batches per raw LevelDB write' },
  'tcp-seconds': { type: 'number', default: 3, unit: 1000, help: 'duration of the loopback TCP scenario' },
  repeat: { type: 'number', default: 1, unit: 1, help: 'whole runs (median and range reported)' },
} as const

type Count = keyof typeof COUNTS

const COMMAND = {
  name: 'bench',
  usage: 'npm run bench -- [options]',
  about: "Brook beside the machine's raw limits (loopback TCP, raw LevelDB), in one run; the report is markdown on stdout.",
  env: 'BENCH_',
  flags: {
    ...COUNTS,
    'raw-level-options': { type: 'string', default: JSON.stringify(LEVEL_OPTIONS), value: '<json>', help: 'options for the raw LevelDB database, by default those Brook opens its own with' },
    'tmp-dir': { type: 'string', default: tmpdir(), value: '<dir>', help: 'where data directories go' },
    'out-dir': { type: 'string', default: resolve(import.meta.dirname, '../../bench/results'), value: '<dir>', help: "where reports go ('' for none)" },
    'broker-cpu-prof': { type: 'string', value: '<dir>', help: 'run the broker with --cpu-prof, profiles into <dir>' },
    compression: { type: 'string', default: 'none', choices: PRODUCER_CODECS, help: 'codec of the produced batches' },
    validation: { type: 'string', default: 'full', choices: ['full', 'header-only'], help: 'header-only: the broker runs with --no-record-validation' },
    'cache-max-mb': { type: 'number', value: '<MiB>', help: "the broker's batch cache, --cache-max-bytes (not given: the broker's default)" },
    quiet: { type: 'boolean', help: 'no progress lines on stderr' },
  },
} as const

function jsonObject(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) badCommandLine(COMMAND, `--raw-level-options must be a JSON object, not '${text}'`)
  return value as Record<string, unknown>
}

/**
 * The options from `argv`, then the `BENCH_<NAME>` environment variables, then the defaults. `--help` prints the
 * usage and exits 0; bad input prints one line and exits 2 (bench/args.ts).
 */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseCommandLine(COMMAND, argv, env)
  const number = (flag: Count): number => Math.round(values[flag] * COUNTS[flag].unit)
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
    rawLevelOptions: jsonObject(values['raw-level-options']),
    tcpMs: number('tcp-seconds'),
    groupBytes: number('group-mb'),
    repeat: Math.max(1, number('repeat')),
    tmpDir: resolve(values['tmp-dir']),
    outDir: values['out-dir'],
    brokerCpuProfDir: values['broker-cpu-prof'] ?? '',
    compression: values.compression,
    validation: values.validation,
    brokerCacheMaxBytes: values['cache-max-mb'] === undefined ? null : Math.round(values['cache-max-mb'] * MiB),
    quiet: values.quiet,
  }
  if (options.batchesPerRequest > options.partitions) options.batchesPerRequest = options.partitions
  return options
}
