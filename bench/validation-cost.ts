/**
 * `node dist/bench/validation-cost.js [options]` (`--help` lists them): what produce's checks cost the event loop per batch, in process, on the
 * bench's own batches (bench/batches.ts: ~16 KiB of 100-byte random records):
 *
 *   header only         checkProducedBatch (length, CRC-32C, counts): what produce did before it walked records
 *   records, none       + validateRecords on an uncompressed batch: the walk, in place
 *   records, <codec>    + validateRecords on a compressed batch read on the event loop: inflate, then walk
 *   worker, <codec>     a batch too large for the event loop (~256 KiB inflated) handed to the worker pool: the
 *                       event loop's share (copy, post, answer) per batch, with 16 in flight, and the wall time
 *   <codec> -> <other>  a batch rebuilt with another codec, as a topic's compression.type makes produce do (decode
 *                       every record, encode and compress them again); lz4, gzip and zstd as targets, 1/20 of
 *                       the rounds
 *
 * Each figure is the best of five timed rounds after a warm-up, so other load on a shared machine inflates it less.
 * The produce throughput these costs come to is measured end to end by `npm run bench -- --validation header-only`
 * beside the default (full), with `--compression lz4` for compressed batches.
 */
import { performance } from 'node:perf_hooks'
import { checkProducedBatch, decodeRecords, rebuildBatch, validateRecords, type RecordRules } from '../protocol/record-batch.js'
import { Compression, inflationLimit, loadCodec, type CompressionName } from '../protocol/compression.js'
import { BatchInflater } from '../broker/batch-inflater.js'
import { badCommandLine, benchCommand, number } from './args.js'
import { makeBatchPool } from './batches.js'

const MAX_MESSAGE_BYTES = 1048588
const RULES: RecordRules = {
  now: Date.now(),
  timestampBounds: { beforeMaxMs: Number.MAX_SAFE_INTEGER, afterMaxMs: 3_600_000 },
  requireKeys: false,
  maxInflatedBytes: inflationLimit(MAX_MESSAGE_BYTES),
}

interface Row {
  scenario: string
  batchBytes: number
  records: number
  /** Event-loop microseconds per batch. */
  eventLoopUs: number
  /** Wall microseconds per batch, where work runs elsewhere too (the worker pool). */
  wallUs?: number
}

/** Best of five rounds of `rounds` calls, in microseconds per call, after a warm-up. */
function timeEach(rounds: number, call: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(rounds, 2000); i++) call(i)
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    const start = performance.now()
    for (let i = 0; i < rounds; i++) call(i)
    best = Math.min(best, ((performance.now() - start) * 1000) / rounds)
  }
  return best
}

function inline(codec: CompressionName, rounds: number): Row[] {
  const pool = makeBatchPool({ batches: 64, batchBytes: 16384, recordBytes: 100, compression: codec })
  const batch = (i: number): Buffer => pool.batches[i % pool.batches.length]!
  const header = timeEach(rounds, (i) => checkProducedBatch(batch(i), { allowZstd: true, maxMessageBytes: MAX_MESSAGE_BYTES }))
  const full = timeEach(rounds, (i) => {
    checkProducedBatch(batch(i), { allowZstd: true, maxMessageBytes: MAX_MESSAGE_BYTES })
    const check = validateRecords(batch(i), RULES)
    if (!check.ok) throw new Error(`the bench's own batch was refused: ${check.message}`)
  })
  const row = (scenario: string, eventLoopUs: number): Row => ({ scenario, batchBytes: batch(0).length, records: pool.recordsPerBatch, eventLoopUs })
  const rebuilt = (['lz4', 'gzip', 'zstd'] as const)
    .filter((target) => target !== codec)
    .map((target) => row(`${codec} -> ${target} (compression.type)`, timeEach(Math.max(100, Math.round(rounds / 20)), (i) => rebuildBatch(batch(i), decodeRecords(batch(i)), { codec: Compression[target] }))))
  return [...(codec === 'none' ? [row('header only', header)] : []), row(`header + records, ${codec}`, full), ...rebuilt]
}

async function viaWorkers(codec: CompressionName, count: number): Promise<Row> {
  const pool = makeBatchPool({ batches: 16, batchBytes: 256 * 1024, recordBytes: 100, compression: codec })
  const inflater = new BatchInflater(1)
  try {
    const run = async (n: number): Promise<void> => {
      let next = 0
      const lane = async (): Promise<void> => {
        while (next < n) {
          const check = await inflater.validate(pool.batches[next++ % pool.batches.length]!, RULES)
          if (!check.ok) throw new Error(`the bench's own batch was refused: ${check.message}`)
        }
      }
      await Promise.all(Array.from({ length: 16 }, lane))
    }
    await run(200)
    const before = performance.eventLoopUtilization()
    const start = performance.now()
    await run(count)
    const wallUs = ((performance.now() - start) * 1000) / count
    const eventLoopUs = (performance.eventLoopUtilization(before).active * 1000) / count
    return { scenario: `worker pool, ${codec}`, batchBytes: pool.batches[0]!.length, records: pool.recordsPerBatch, eventLoopUs, wallUs }
  } finally {
    await inflater.close()
  }
}

const COMMAND = benchCommand(
  'validation-cost',
  'node dist/bench/validation-cost.js [options]',
  "What produce's checks cost the event loop per batch, in process, on the bench's batches.",
)
  .option('--rounds <n>', 'batches checked per timed round', number(), 20_000)
  .option('--codecs <a,b>', 'codecs of the batches', 'none,lz4,gzip,snappy')

async function main(): Promise<void> {
  const values = COMMAND.parse().opts()
  const rounds = values.rounds
  const codecs = values.codecs.split(',') as CompressionName[]
  for (const codec of codecs) if (!(codec in Compression)) badCommandLine(COMMAND, `--codecs: '${codec}' is not a codec`)
  await loadCodec(Compression.zstd)
  const rows: Row[] = []
  for (const codec of codecs) rows.push(...inline(codec, rounds))
  for (const codec of codecs.filter((c) => c !== 'none')) rows.push(await viaWorkers(codec, Math.max(200, rounds / 20)))
  const lines = [
    '| scenario | batch bytes | records | event loop µs per batch | wall µs per batch |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scenario} | ${r.batchBytes} | ${r.records} | ${r.eventLoopUs.toFixed(1)} | ${r.wallUs?.toFixed(1) ?? ''} |`),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

await main()
