/**
 * Consumer-group scenarios, against their own broker process:
 *
 *   rebalance: one, then three kafkajs consumers join a new group on a 6-partition topic that already holds records;
 *     the time from the moment they start (connect, subscribe, run) to the first record each of them receives.
 *     Measured with Kafka's default group.initial.rebalance.delay.ms (3000: a new group waits one delay, and once
 *     more for each wait during which members joined, InitialDelayedJoin) and with 0 (the protocol's own cost:
 *     FindCoordinator, JoinGroup twice with MEMBER_ID_REQUIRED, SyncGroup, OffsetFetch, ListOffsets, the first Fetch).
 *   consumer throughput: one kafkajs group member reads a pre-produced topic end to end (eachBatch, records counted,
 *     offsets auto-committed as kafkajs does by default), timed from its first batch to its last; beside it, a raw
 *     Fetch of the same data that decodes nothing (fetch-load.ts). The gap is the client's record decoding.
 */
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { KafkaClient, checkError } from '../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { produce } from '../protocol/messages/produce.js'
import { fetch } from '../protocol/messages/fetch.js'
import { batchCount, type BatchPool } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { fetchLoad, type FetchResult } from './fetch-load.js'
import { produceLoad } from './produce-load.js'
import { throughput, type Throughput } from './measure.js'

const { Kafka, logLevel } = kafkajs

export interface RebalanceResult {
  initialDelayMs: number
  /** Consumers started together. */
  members: number
  /** Milliseconds from start to each member's first record, fastest first. */
  firstRecordMs: number[]
  generationMembers: number
}

export interface GroupResult {
  rebalance: RebalanceResult[]
  kafkajsConsumer: Throughput
  rawFetch: FetchResult
}

export interface GroupOptions {
  pool: BatchPool
  /** Bytes of batches the throughput topic holds. */
  totalBytes: number
  partitions: number
  dataDir: string
}

async function createTopic(broker: BrokerProcess, name: string, partitions: number): Promise<{ topicId: string; produceVersion: number; fetchVersion: number }> {
  const admin = await KafkaClient.connect(broker.host, broker.port, { clientId: 'brook-bench' })
  try {
    const request: CreateTopicsRequest = {
      topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 30_000,
      validateOnly: false,
    }
    const response = await admin.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, admin.version(createTopics), request)
    checkError(response.topics[0]!.errorCode, `creating topic ${name}`, response.topics[0]!.errorMessage)
    return { topicId: response.topics[0]!.topicId!, produceVersion: admin.version(produce), fetchVersion: admin.version(fetch) }
  } finally {
    admin.close()
  }
}

function kafka(broker: BrokerProcess, clientId: string) {
  return new Kafka({ clientId, brokers: [`${broker.host}:${broker.port}`], logLevel: logLevel.NOTHING })
}

/**
 * How long a member's fetch waits for records. It changes nothing measured (every fetch up to the last record finds
 * records waiting), but a stopping kafkajs consumer waits for its fetch in flight: with kafkajs's 5 s each scenario
 * would end 5 s later for nothing.
 */
const MAX_WAIT_MS = 100

async function fill(broker: BrokerProcess, topic: string, partitions: number, pool: BatchPool, totalBatches: number, version: number) {
  const result = await produceLoad({
    host: broker.host,
    port: broker.port,
    topic,
    partitions,
    version,
    pool,
    totalBatches,
    batchesPerRequest: 1,
    window: 16,
    connections: 1,
  })
  if (result.errors > 0) throw new Error(`producing to ${topic} failed: ${result.firstError}`)
  return result
}

async function rebalance(options: GroupOptions, scenario: { initialDelayMs: number; members: number }): Promise<RebalanceResult> {
  const { initialDelayMs, members } = scenario
  const broker = await startBroker({
    dataDir: join(options.dataDir, `rebalance-${initialDelayMs}-${members}`),
    args: ['--group-initial-rebalance-delay-ms', String(initialDelayMs)],
  })
  const consumers: kafkajs.Consumer[] = []
  try {
    const { produceVersion } = await createTopic(broker, 'rebalance', 6)
    await fill(broker, 'rebalance', 6, options.pool, 12, produceVersion)
    const start = performance.now()
    const firsts = await Promise.all(
      Array.from({ length: members }, async (_, i) => {
        const consumer = kafka(broker, `bench-member-${i}`).consumer({ groupId: 'bench-rebalance', maxWaitTimeInMs: MAX_WAIT_MS })
        consumers.push(consumer)
        let first!: () => void
        const received = new Promise<void>((resolve) => (first = resolve))
        await consumer.connect()
        await consumer.subscribe({ topic: 'rebalance', fromBeginning: true })
        await consumer.run({
          eachBatch: async () => {
            first()
          },
        })
        await received
        return performance.now() - start
      }),
    )
    const admin = kafka(broker, 'bench-admin').admin()
    await admin.connect()
    const described = await admin.describeGroups(['bench-rebalance'])
    await admin.disconnect()
    return { initialDelayMs, members, firstRecordMs: firsts.sort((a, b) => a - b), generationMembers: described.groups[0]!.members.length }
  } finally {
    await Promise.all(consumers.map((c) => c.disconnect()))
    await broker.stop()
  }
}

async function consumerThroughput(options: GroupOptions): Promise<{ kafkajsConsumer: Throughput; rawFetch: FetchResult }> {
  const broker = await startBroker({ dataDir: join(options.dataDir, 'consume'), args: ['--group-initial-rebalance-delay-ms', '0'] })
  try {
    const { topicId, produceVersion, fetchVersion } = await createTopic(broker, 'consume', options.partitions)
    const produced = await fill(broker, 'consume', options.partitions, options.pool, batchCount(options.totalBytes, options.pool), produceVersion)
    const rawFetch = await fetchLoad({
      host: broker.host,
      port: broker.port,
      topic: 'consume',
      topicId,
      version: fetchVersion,
      endOffsets: produced.recordsByPartition,
      maxBytes: 10 * 1024 * 1024,
      partitionMaxBytes: 1024 * 1024,
      connections: 1,
    })
    // kafkajs's defaults: maxBytes 10 MiB per fetch, 1 MiB per partition; the raw fetch above uses the same limits.
    const consumer = kafka(broker, 'bench-consumer').consumer({ groupId: 'bench-throughput', maxWaitTimeInMs: MAX_WAIT_MS })
    const total = produced.records
    let records = 0
    let firstAt = 0
    let lastAt = 0
    await consumer.connect()
    await consumer.subscribe({ topic: 'consume', fromBeginning: true })
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now()
          records += batch.messages.length
          lastAt = performance.now()
          if (records >= total) resolve()
        },
      })
    })
    await done
    await consumer.disconnect()
    // MB/s in stored batch bytes, as the raw fetch counts them, so the two compare.
    return { kafkajsConsumer: throughput(produced.bytes, records, (lastAt - firstAt) / 1000), rawFetch }
  } finally {
    await broker.stop()
  }
}

/** Kafka's default initial delay and none, for a lone consumer and for three that start together. */
export const REBALANCE_SCENARIOS = [
  { initialDelayMs: 3000, members: 1 },
  { initialDelayMs: 3000, members: 3 },
  { initialDelayMs: 0, members: 1 },
  { initialDelayMs: 0, members: 3 },
] as const

export async function groupScenarios(options: GroupOptions): Promise<GroupResult> {
  const rebalances: RebalanceResult[] = []
  for (const scenario of REBALANCE_SCENARIOS) rebalances.push(await rebalance(options, scenario))
  return { rebalance: rebalances, ...(await consumerThroughput(options)) }
}
