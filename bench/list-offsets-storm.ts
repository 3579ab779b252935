/**
 * `node dist/bench/list-offsets-storm.js [options]` (`--help` lists them): what a storm of ListOffsets-by-timestamp lookups on large compressed
 * batches does to another client. A broker process gets a topic whose partitions each hold one gzip batch of
 * ~30 MiB of records (30 KB sent: within max.message.bytes, and within Brook's inflation bound of 32x it); then a
 * Metadata client measures its latency alone, and again while `--connections` clients each pipeline `--requests`
 * ListOffsets requests naming every partition by timestamp, so that every lookup inflates one such batch.
 *
 * Reported: Metadata latency (p50, p99, max) alone and during the storm, the storm's duration, and how many
 * Metadata answers came back while it ran. Latencies, not asserted anywhere; the test of the same situation
 * (test/broker/list-offsets-storm.test.ts) asserts only that Metadata is answered.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KafkaClient, checkError } from '../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../protocol/messages/list-offsets.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../protocol/messages/metadata.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../protocol/messages/produce.js'
import { encodeRecordBatch } from '../protocol/record-batch.js'
import { Compression } from '../protocol/compression.js'
import { IsolationLevel, ZERO_UUID } from '../protocol/constants.js'
import { benchCommand, number } from './args.js'
import { startBroker } from './broker-process.js'
import { percentile } from './measure.js'

const TOPIC = 'storm'
const RECORDS = 30

interface Latency {
  count: number
  p50: number
  p99: number
  max: number
}

function summarize(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b)
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 }
}

async function setUp(client: KafkaClient, partitions: number, base: bigint): Promise<void> {
  const created = await client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, client.version(createTopics), {
    topics: [{ name: TOPIC, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 30_000,
    validateOnly: false,
  })
  checkError(created.topics[0]!.errorCode, 'creating the storm topic', created.topics[0]!.errorMessage)
  const batch = encodeRecordBatch(
    Array.from({ length: RECORDS }, (_, i) => ({ value: Buffer.alloc(1024 * 1024), timestamp: base + BigInt(i * 1000) })),
    { compression: Compression.gzip },
  )
  const produced = await client.request<ProduceRequest, ProduceResponse>(produce, client.version(produce), {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: TOPIC, partitionData: Array.from({ length: partitions }, (_, index) => ({ index, records: batch })) }],
  })
  for (const p of produced.responses[0]!.partitionResponses) checkError(p.errorCode, `producing to ${TOPIC}-${p.index}`, p.errorMessage)
}

/** Metadata requests one after another until `until` says stop; their latencies in ms. */
async function metadataLoop(client: KafkaClient, until: () => boolean): Promise<number[]> {
  const latencies: number[] = []
  while (!until()) {
    const sent = performance.now()
    await client.request<Partial<MetadataRequest>, MetadataResponse>(metadata, 4, { topics: [{ topicId: ZERO_UUID, name: TOPIC }], allowAutoTopicCreation: false })
    latencies.push(performance.now() - sent)
  }
  return latencies
}

const COMMAND = benchCommand(
  'list-offsets-storm',
  'node dist/bench/list-offsets-storm.js [options]',
  'Metadata latency alone and during a storm of ListOffsets-by-timestamp lookups on ~30 MiB gzip batches.',
)
  .option('--partitions <n>', 'partitions, each holding one such batch', number(), 4)
  .option('--connections <n>', 'storming clients', number(), 3)
  .option('--requests <n>', 'ListOffsets requests each client pipelines', number(), 10)

async function main(): Promise<void> {
  const values = COMMAND.parse().opts()
  const partitions = values.partitions
  const dataDir = mkdtempSync(join(tmpdir(), 'brook-storm-'))
  const broker = await startBroker({ dataDir })
  const base = BigInt(Date.now() - 600_000)
  try {
    const admin = await KafkaClient.connect(broker.host, broker.port, { clientId: 'storm-setup', timeoutMs: 120_000 })
    await setUp(admin, partitions, base)
    admin.close()
    const watcher = await KafkaClient.connect(broker.host, broker.port, { clientId: 'metadata-watcher', timeoutMs: 600_000 })
    const aloneUntil = performance.now() + 2000
    const alone = await metadataLoop(watcher, () => performance.now() > aloneUntil)

    const stormers = await Promise.all(
      Array.from({ length: values.connections }, () => KafkaClient.connect(broker.host, broker.port, { clientId: 'storm', timeoutMs: 600_000 })),
    )
    const lookup = (client: KafkaClient): Promise<ListOffsetsResponse> =>
      client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, 7, {
        replicaId: -1,
        isolationLevel: IsolationLevel.READ_UNCOMMITTED,
        topics: [{ name: TOPIC, partitions: Array.from({ length: partitions }, (_, partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp: base + 15_500n, maxNumOffsets: 1 })) }],
      })
    const started = performance.now()
    let running = true
    const storm = Promise.all(stormers.flatMap((client) => Array.from({ length: values.requests }, () => lookup(client)))).finally(() => (running = false))
    const during = await metadataLoop(watcher, () => !running)
    const answers = await storm
    const stormMs = performance.now() - started
    const wrong = answers.flatMap((a) => a.topics[0]!.partitions).filter((p) => p.errorCode !== 0 || p.offset !== 16n).length
    for (const client of [watcher, ...stormers]) client.close()
    const lookups = values.connections * values.requests * partitions
    const row = (name: string, l: Latency): string => `| ${name} | ${l.count} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.max.toFixed(1)} |`
    process.stdout.write(
      [
        `ListOffsets storm: ${lookups} lookups (${values.connections} connections x ${values.requests} pipelined requests x ${partitions} partitions), each in a ~${RECORDS} MiB gzip batch; ${(stormMs / 1000).toFixed(1)} s; ${wrong} wrong answers`,
        '',
        '| Metadata client | answers | p50 ms | p99 ms | max ms |',
        '|---|---:|---:|---:|---:|',
        row('alone', summarize(alone)),
        row('during the storm', summarize(during)),
        '',
      ].join('\n'),
    )
  } finally {
    await broker.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

await main()
