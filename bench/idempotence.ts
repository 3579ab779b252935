/**
 * What idempotence costs, and how fast a partition's producer state comes back after kill -9:
 *
 *   node dist/bench/idempotence.js [options]        # --help lists them, with their defaults
 *
 * - produce: the bench's pre-encoded generator (produce-load.ts), the same batches plain and idempotent (each batch
 *   stamped with a producer id and the partition's next sequence, CRC recomputed), one connection with 5 requests in
 *   flight (an idempotent producer's limit), 8 partitions, 16 KiB batches of 100-byte records;
 * - kcat: librdkafka producing `--kcat-records` lines, with and without enable.idempotence=true (wall time);
 * - recovery: `--recovery-records` idempotent records to one partition, then kill -9 and a restart: spawn to listening
 *   (the producer state is the last snapshot plus the batch headers after it), then a clean stop and a restart.
 *
 * Prints one JSON object. Run it on a quiet machine; on a shared one the figures are indicative only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { KafkaClient } from '../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../protocol/messages/init-producer-id.js'
import { benchCommand, number } from './args.js'
import { makeBatchPool, batchCount } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { produceLoad, type ProduceLoadOptions } from './produce-load.js'

const MiB = 1024 * 1024
const COMMAND = benchCommand(
  'idempotence',
  'node dist/bench/idempotence.js [options]',
  'Produce plain vs idempotent (the generator and kcat), and producer-state recovery after kill -9. Prints JSON.',
)
  .option('--total-mb <n>', 'MiB produced plain and again idempotent', number(), 256)
  .option('--kcat-records <n>', 'lines kcat produces, with and without enable.idempotence', number(), 500_000)
  .option('--recovery-records <n>', 'idempotent records in the partition restarted after kill -9', number(), 10_000_000)
const flags = COMMAND.parse().opts()
const totalBytes = flags.totalMb * MiB
const kcatRecords = flags.kcatRecords
const recoveryRecords = flags.recoveryRecords
const PARTITIONS = 8

async function admin<T>(broker: BrokerProcess, use: (client: KafkaClient) => Promise<T>): Promise<T> {
  const client = await KafkaClient.connect(broker.host, broker.port, { clientId: 'brook-bench', timeoutMs: 60_000 })
  try {
    return await use(client)
  } finally {
    client.close()
  }
}

async function createTopic(broker: BrokerProcess, name: string, partitions: number): Promise<void> {
  await admin(broker, async (client) => {
    const response = await client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, {
      topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 30_000,
      validateOnly: false,
    })
    const error = response.topics[0]!.errorCode
    if (error !== 0) throw new Error(`creating ${name} failed with error ${error}`)
  })
}

async function newProducerId(broker: BrokerProcess): Promise<{ producerId: bigint; producerEpoch: number }> {
  return admin(broker, async (client) => {
    const answer = await client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    })
    if (answer.errorCode !== 0) throw new Error(`InitProducerId failed with error ${answer.errorCode}`)
    return { producerId: answer.producerId!, producerEpoch: answer.producerEpoch }
  })
}

/** Wall seconds for kcat to produce `count` 100-byte lines to `topic`, with `extra` settings. */
function kcatSeconds(broker: BrokerProcess, topic: string, count: number, extra: string[]): number {
  const line = 'x'.repeat(99)
  const input = Array.from({ length: count }, () => line).join('\n') + '\n'
  const started = performance.now()
  const run = spawnSync('kcat', ['-P', '-b', `${broker.host}:${broker.port}`, '-t', topic, '-X', 'linger.ms=5', ...extra], { input, maxBuffer: 1 << 20 })
  if (run.status !== 0) throw new Error(`kcat failed: ${run.stderr.toString()}`)
  return (performance.now() - started) / 1000
}

const round = (n: number): number => Math.round(n * 10) / 10

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brook-idempotence-bench-'))
  const pool = makeBatchPool({ batches: 256, batchBytes: 16_384, recordBytes: 100 })
  let broker = await startBroker({ dataDir: join(dir, 'node') })
  try {
    for (const topic of ['warmup', 'plain', 'idempotent']) await createTopic(broker, topic, PARTITIONS)
    const load = (topic: string, idempotent?: ProduceLoadOptions['idempotent']): ProduceLoadOptions => ({
      host: broker.host,
      port: broker.port,
      topic,
      partitions: PARTITIONS,
      version: 9,
      pool,
      totalBatches: batchCount(totalBytes, pool),
      batchesPerRequest: 1,
      window: 5,
      connections: 1,
      ...(idempotent ? { idempotent } : {}),
    })
    await produceLoad({ ...load('warmup'), totalBatches: batchCount(32 * MiB, pool) })
    const plain = await produceLoad(load('plain'))
    const idempotent = await produceLoad(load('idempotent', await newProducerId(broker)))
    for (const result of [plain, idempotent]) if (result.errors > 0) throw new Error(`produce failed: ${result.firstError}`)

    await createTopic(broker, 'kcat-plain', PARTITIONS)
    await createTopic(broker, 'kcat-idempotent', PARTITIONS)
    const kcatPlain = kcatSeconds(broker, 'kcat-plain', kcatRecords, [])
    const kcatIdempotent = kcatSeconds(broker, 'kcat-idempotent', kcatRecords, ['-X', 'enable.idempotence=true'])

    await createTopic(broker, 'recovery', 1)
    const recoveryLoad = { ...load('recovery', await newProducerId(broker)), partitions: 1, totalBatches: Math.ceil(recoveryRecords / pool.recordsPerBatch) }
    const written = await produceLoad(recoveryLoad)
    if (written.errors > 0) throw new Error(`recovery produce failed: ${written.firstError}`)
    await broker.kill()
    broker = await startBroker({ dataDir: join(dir, 'node') })
    const afterKill = broker.startMs
    await broker.stop()
    broker = await startBroker({ dataDir: join(dir, 'node') })
    const afterCleanStop = broker.startMs

    const summary = (r: typeof plain) => ({ MBps: round(r.MBps), recordsPerSec: Math.round(r.recordsPerSec), p99Ms: round(r.latencyMs.p99) })
    console.log(
      JSON.stringify(
        {
          produce: { batchBytes: 16_384, recordBytes: 100, connections: 1, window: 5, plain: summary(plain), idempotent: summary(idempotent) },
          kcat: { records: kcatRecords, plainSeconds: round(kcatPlain), idempotentSeconds: round(kcatIdempotent) },
          recovery: { records: written.records, bytes: written.bytes, startMsAfterKill9: Math.round(afterKill), startMsAfterCleanStop: Math.round(afterCleanStop) },
        },
        null,
        2,
      ),
    )
  } finally {
    await broker.stop().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
