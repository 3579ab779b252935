/**
 * The bench's parameters: flags win over environment variables (`BENCH_<NAME>`, e.g. BENCH_TOTAL_MB=256), which win
 * over the defaults. The defaults are sized so that one run takes about a minute and a half on a 2-core machine.
 */
import { tmpdir } from 'node:os'
import { resolve } from 'node:path'
import { LEVEL_OPTIONS } from '../storage/database.js'
import { COMPRESSION_NAMES, type CompressionName } from '../protocol/compression.js'
import { InvalidArgumentError, Option } from '@commander-js/extra-typings'
import { benchCommand, number } from './args.js'

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


/** The numeric flags' parser: a number of at least 0, in the flag's unit (MiB, seconds); parseOptions converts it. */
const count = number()

const COMMAND = benchCommand(
  'bench',
  'npm run bench -- [options]',
  "Brook beside the machine's raw limits (loopback TCP, raw LevelDB), in one run; the report is markdown on stdout.",
)
  .addOption(new Option('--total-mb <n>', 'MiB of record batches produced (and written raw)').argParser(count).default(1024).env('BENCH_TOTAL_MB'))
  .addOption(new Option('--warmup-mb <n>', 'MiB produced to a warm-up topic before timing').argParser(count).default(32).env('BENCH_WARMUP_MB'))
  .addOption(new Option('--batch-bytes <n>', 'record batch size').argParser(count).default(16384).env('BENCH_BATCH_BYTES'))
  .addOption(new Option('--record-bytes <n>', 'record value size').argParser(count).default(100).env('BENCH_RECORD_BYTES'))
  .addOption(new Option('--pool-batches <n>', 'distinct pre-encoded batches').argParser(count).default(256).env('BENCH_POOL_BATCHES'))
  .addOption(new Option('--partitions <n>', 'partitions of the bench topic').argParser(count).default(8).env('BENCH_PARTITIONS'))
  .addOption(new Option('--batches-per-request <n>', 'partitions (one batch each) per Produce request').argParser(count).default(1).env('BENCH_BATCHES_PER_REQUEST'))
  .addOption(new Option('--window <n>', 'in-flight Produce requests per connection').argParser(count).default(16).env('BENCH_WINDOW'))
  .addOption(new Option('--connections <n>', 'producer connections').argParser(count).default(2).env('BENCH_CONNECTIONS'))
  .addOption(new Option('--fetch-connections <n>', 'fetch connections (partitions split among them)').argParser(count).default(2).env('BENCH_FETCH_CONNECTIONS'))
  .addOption(new Option('--group-mb <n>', 'MiB read by one kafkajs group member (0 skips the group scenarios)').argParser(count).default(128).env('BENCH_GROUP_MB'))
  .addOption(new Option('--fetch-max-mb <n>', 'Fetch maxBytes, MiB').argParser(count).default(64).env('BENCH_FETCH_MAX_MB'))
  .addOption(new Option('--partition-max-mb <n>', 'Fetch partitionMaxBytes, MiB').argParser(count).default(8).env('BENCH_PARTITION_MAX_MB'))
  .addOption(new Option('--raw-batches-per-write <n>', 'batches per raw LevelDB write').argParser(count).default(16).env('BENCH_RAW_BATCHES_PER_WRITE'))
  .addOption(new Option('--tcp-seconds <n>', 'duration of the loopback TCP scenario').argParser(count).default(3).env('BENCH_TCP_SECONDS'))
  .addOption(new Option('--repeat <n>', 'whole runs (median and range reported)').argParser(count).default(1).env('BENCH_REPEAT'))
  .addOption(
    new Option('--raw-level-options <json>', 'options for the raw LevelDB database, by default those Brook opens its own with')
      .argParser(jsonObject)
      .default<Record<string, unknown>>({ ...LEVEL_OPTIONS }, JSON.stringify(LEVEL_OPTIONS))
      .env('BENCH_RAW_LEVEL_OPTIONS'),
  )
  .addOption(new Option('--tmp-dir <dir>', 'where data directories go').default(tmpdir()).env('BENCH_TMP_DIR'))
  .addOption(new Option('--out-dir <dir>', "where reports go ('' for none)").default(resolve(import.meta.dirname, '../../bench/results')).env('BENCH_OUT_DIR'))
  .addOption(new Option('--broker-cpu-prof <dir>', 'run the broker with --cpu-prof, profiles into <dir>').env('BENCH_BROKER_CPU_PROF'))
  .addOption(new Option('--compression <codec>', 'codec of the produced batches').choices(COMPRESSION_NAMES).default('none').env('BENCH_COMPRESSION'))
  .addOption(new Option('--validation <mode>', 'header-only: the broker runs with --no-record-validation').choices(['full', 'header-only'] as const).default('full').env('BENCH_VALIDATION'))
  .addOption(new Option('--cache-max-mb <MiB>', "the broker's batch cache, --cache-max-bytes (not given: the broker's default)").argParser(count).env('BENCH_CACHE_MAX_MB'))
  .option('--quiet', 'no progress lines on stderr', false)

function jsonObject(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError('Expected a JSON object.')
  return value as Record<string, unknown>
}

/**
 * The options from `argv`, then the `BENCH_<NAME>` environment variables, then the defaults. `--help` prints the
 * usage and exits 0; bad input prints one line and exits 2 (bench/args.ts).
 */
export function parseOptions(argv: string[]): BenchOptions {
  const values = COMMAND.parse(argv, { from: 'user' }).opts()
  const bytes = (mib: number): number => Math.round(mib * MiB)
  const atLeastOne = (n: number): number => Math.max(1, Math.round(n))
  const options: BenchOptions = {
    totalBytes: bytes(values.totalMb),
    warmupBytes: bytes(values.warmupMb),
    batchBytes: Math.round(values.batchBytes),
    recordBytes: Math.round(values.recordBytes),
    poolBatches: atLeastOne(values.poolBatches),
    partitions: atLeastOne(values.partitions),
    batchesPerRequest: atLeastOne(values.batchesPerRequest),
    window: atLeastOne(values.window),
    connections: atLeastOne(values.connections),
    fetchConnections: atLeastOne(values.fetchConnections),
    fetchMaxBytes: bytes(values.fetchMaxMb),
    partitionMaxBytes: bytes(values.partitionMaxMb),
    rawBatchesPerWrite: atLeastOne(values.rawBatchesPerWrite),
    rawLevelOptions: values.rawLevelOptions,
    tcpMs: Math.round(values.tcpSeconds * 1000),
    groupBytes: bytes(values.groupMb),
    repeat: atLeastOne(values.repeat),
    tmpDir: resolve(values.tmpDir),
    outDir: values.outDir,
    brokerCpuProfDir: values.brokerCpuProf ?? '',
    compression: values.compression,
    validation: values.validation,
    brokerCacheMaxBytes: values.cacheMaxMb === undefined ? null : bytes(values.cacheMaxMb),
    quiet: values.quiet,
  }
  if (options.batchesPerRequest > options.partitions) options.batchesPerRequest = options.partitions
  return options
}
