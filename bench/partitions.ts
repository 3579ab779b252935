/**
 * `node dist/bench/partitions.js --partitions 2000 --total-mb 2048` (`--help` lists the options): a broker's memory with many partitions. A broker
 * process gets a topic of `--partitions` partitions, `--total-mb` of 100-byte records spread evenly over them
 * (pre-encoded batches of `--batch-bytes`, `--batches-per-request` partitions per Produce request), then everything is
 * fetched back; the broker is restarted (its cold start on that data is timed; `--kill` stops it with kill -9 first, a
 * clean stop otherwise) and everything is fetched again.
 *
 * Reported after each phase: the broker's resident memory (VmRSS) and its peak so far (VmHWM), from /proc, and the
 * phase's throughput. The node-wide batch cache (`--cache-max-mb`, the broker's --cache-max-bytes) is what bounds the
 * memory of recently produced batches; LevelDB's own (two 64 MiB write buffers, its block and table caches) comes on
 * top. Figures, not asserted anywhere.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KafkaClient, checkError } from '../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { fetch } from '../protocol/messages/fetch.js'
import { produce } from '../protocol/messages/produce.js'
import { benchCommand, number } from './args.js'
import { batchCount, makeBatchPool } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { fetchLoad } from './fetch-load.js'
import { produceLoad } from './produce-load.js'

const TOPIC = 'many'
const MiB = 1024 * 1024

const COMMAND = benchCommand(
  'partitions',
  'node dist/bench/partitions.js [options]',
  "A broker's memory with many partitions: RSS after producing, fetching, a restart (timed) and fetching again.",
)
  .option('--partitions <n>', 'partitions of the topic', number(), 2000)
  .option('--total-mb <n>', 'MiB of 100-byte records, spread evenly over the partitions', number(), 2048)
  .option('--batch-bytes <n>', 'pre-encoded batch size', number(), 16384)
  .option('--batches-per-request <n>', 'partitions (one batch each) per Produce request', number(), 20)
  .option('--window <n>', 'Produce requests in flight per connection', number(), 8)
  .option('--connections <n>', 'producer and fetch connections', number(), 2)
  .option('--fetch-max-mb <n>', 'Fetch maxBytes, MiB', number(), 16)
  .option('--partition-max-kb <n>', 'Fetch partitionMaxBytes, KiB', number(), 1024)
  .option('--cache-max-mb <n>', "the broker's batch cache (--cache-max-bytes), MiB", number(), 256)
  .option('--tmp-dir <dir>', 'where the data directory goes', tmpdir())
  .option('--kill', 'stop the broker with kill -9 before the restart (a clean stop otherwise)', false)
const values = COMMAND.parse().opts()
const partitions = values.partitions
const totalBytes = values.totalMb * MiB

/**
 * A process's resident memory in MB (10^6 bytes), from /proc: all of it (VmRSS), its peak (VmHWM), and the part that
 * is the process's own (RssAnon: heaps, the batch cache, LevelDB's write buffers) rather than file pages it has
 * mapped (RssFile: LevelDB reads its tables through mmap, so the page cache's copies of what it read count too).
 */
function memory(pid: number): { rssMb: number; peakMb: number; anonMb: number; fileMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const mb = (field: string): number => Math.round((Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024) / 1e6)
  return { rssMb: mb('VmRSS'), peakMb: mb('VmHWM'), anonMb: mb('RssAnon'), fileMb: mb('RssFile') }
}

async function createTopic(broker: BrokerProcess): Promise<{ topicId: string; produceVersion: number; fetchVersion: number }> {
  const client = await KafkaClient.connect(broker.host, broker.port, { clientId: 'brook-bench' })
  try {
    const response = await client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, client.version(createTopics), {
      topics: [{ name: TOPIC, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 120_000,
      validateOnly: false,
    })
    const topic = response.topics[0]!
    checkError(topic.errorCode, `creating ${TOPIC}`, topic.errorMessage)
    return { topicId: topic.topicId!, produceVersion: client.version(produce), fetchVersion: client.version(fetch) }
  } finally {
    client.close()
  }
}

/** Samples the broker's anonymous memory every 250 ms while a phase runs; `row` reports the phase's peak. */
let peakAnonMb = 0
function sampleFrom(pid: number): NodeJS.Timeout {
  peakAnonMb = 0
  const sample = (): void => {
    peakAnonMb = Math.max(peakAnonMb, memory(pid).anonMb)
  }
  sample()
  return setInterval(sample, 250).unref()
}

const rows: string[] = []
function row(phase: string, pid: number, detail: string): void {
  const { rssMb, peakMb, anonMb, fileMb } = memory(pid)
  const peakAnon = Math.max(peakAnonMb, anonMb)
  rows.push(`| ${phase} | ${rssMb} | ${anonMb} | ${fileMb} | ${peakAnon} | ${peakMb} | ${detail} |`)
  process.stderr.write(`partitions: ${phase}: RSS ${rssMb} MB (anonymous ${anonMb}, file ${fileMb}), peak anonymous ${peakAnon} MB, peak RSS ${peakMb} MB ${detail}\n`)
}

const dir = mkdtempSync(join(values.tmpDir, 'brook-partitions-'))
const brokerArgs = ['--cache-max-bytes', String(values.cacheMaxMb * MiB)]
let broker = await startBroker({ dataDir: join(dir, 'brook'), args: brokerArgs })
try {
  const { topicId, produceVersion, fetchVersion } = await createTopic(broker)
  row(`started, ${partitions} partitions created`, broker.pid, '')
  const pool = makeBatchPool({ batches: 256, batchBytes: values.batchBytes, recordBytes: 100 })
  let sampler = sampleFrom(broker.pid)
  const produced = await produceLoad({
    host: broker.host,
    port: broker.port,
    topic: TOPIC,
    partitions,
    version: produceVersion,
    pool,
    totalBatches: batchCount(totalBytes, pool),
    batchesPerRequest: Math.min(partitions, values.batchesPerRequest),
    window: values.window,
    connections: values.connections,
  })
  clearInterval(sampler)
  if (produced.errors > 0) throw new Error(`produce failed: ${produced.firstError}`)
  row('after producing', broker.pid, `${Math.round(produced.bytes / 1e6)} MB at ${produced.MBps.toFixed(1)} MB/s`)
  const fetchAll = () =>
    fetchLoad({
      host: broker.host,
      port: broker.port,
      topic: TOPIC,
      topicId,
      version: fetchVersion,
      endOffsets: produced.recordsByPartition,
      maxBytes: values.fetchMaxMb * MiB,
      partitionMaxBytes: values.partitionMaxKb * 1024,
      connections: values.connections,
    })
  sampler = sampleFrom(broker.pid)
  const fetched = await fetchAll()
  clearInterval(sampler)
  if (!fetched.complete) throw new Error(`fetch did not read everything back: ${fetched.firstError ?? ''}`)
  row('after fetching it all back', broker.pid, `${Math.round(fetched.bytes / 1e6)} MB at ${fetched.MBps.toFixed(1)} MB/s`)
  // kill -9 leaves no producer-state snapshot at the log end: the restart replays each partition's batches since its
  // last one (storage/producer-state-store.ts).
  if (values.kill) await broker.kill()
  else await broker.stop()
  broker = await startBroker({ dataDir: join(dir, 'brook'), args: brokerArgs })
  peakAnonMb = 0
  row('restarted', broker.pid, `cold start (open and recovery) after ${values.kill ? 'kill -9' : 'a clean stop'} ${(broker.startMs / 1000).toFixed(2)} s`)
  sampler = sampleFrom(broker.pid)
  const again = await fetchAll()
  clearInterval(sampler)
  if (!again.complete) throw new Error(`fetch after the restart did not read everything back: ${again.firstError ?? ''}`)
  row('after fetching it all again', broker.pid, `${Math.round(again.bytes / 1e6)} MB at ${again.MBps.toFixed(1)} MB/s`)
} finally {
  await broker.stop()
  rmSync(dir, { recursive: true, force: true })
}

process.stdout.write(
  [
    `# Broker memory with ${partitions} partitions`,
    '',
    `${values.totalMb} MiB of 100-byte records in ${values.batchBytes}-byte batches, cache ${values.cacheMaxMb} MiB.`,
    '',
    '| phase | RSS, MB | of it anonymous | of it file pages | peak anonymous during the phase | peak RSS so far | |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
)
