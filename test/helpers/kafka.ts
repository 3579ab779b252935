/**
 * Well-formed requests to a broker process through Brook's own wire client (client/kafka-client.ts), for what the real
 * clients cannot show: the raw stored batches (their codec bits and CRCs), exact error codes, and versions a client
 * would never pick. Malformed bytes are built by hand in wire.ts instead, never with the codec under test.
 */
import { crc32c } from '@node-rs/crc32'
import { KafkaClient } from '../../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { fetch, type FetchRequest, type FetchResponse, type FetchResponsePartitionData } from '../../protocol/messages/fetch.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../../protocol/messages/list-offsets.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../protocol/messages/produce.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponsePartition } from '../../protocol/messages/metadata.js'
import { OffsetSpec, ZERO_UUID } from '../../protocol/constants.js'
import { decodeRecords, readBatchHeader, type BatchHeader, type Record as KafkaRecord } from '../../protocol/record-batch.js'
import type { BrokerProcess } from './broker.js'

export async function connect(broker: BrokerProcess, options: { timeoutMs?: number } = {}): Promise<KafkaClient> {
  return KafkaClient.connect(broker.host, broker.port, { clientId: 'brook-test', timeoutMs: options.timeoutMs ?? 20_000 })
}

/** Runs `use` with a fresh connection (`options` as connect's) and closes it afterwards. */
export async function withClient<T>(broker: BrokerProcess, use: (client: KafkaClient) => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
  const client = await connect(broker, options)
  try {
    return await use(client)
  } finally {
    client.close()
  }
}

/** `broker`'s Metadata v12 answer for `topic`'s partitions (leader, leaderEpoch, replicas, isr, offline replicas). */
export async function partitionsOf(broker: BrokerProcess, topic: string): Promise<MetadataResponsePartition[]> {
  const answer = await withClient(broker, (client) =>
    client.request<MetadataRequest, MetadataResponse>(metadata, 12, {
      topics: [{ topicId: ZERO_UUID, name: topic }],
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    }),
  )
  return answer.topics.find((t) => t.name === topic)?.partitions ?? []
}

export interface TopicSpec {
  partitions?: number
  configs?: Record<string, string>
}

/** Creates a topic with CreateTopics v7 and fails the test if the broker refuses. */
export async function createTopic(broker: BrokerProcess, name: string, spec: TopicSpec = {}): Promise<void> {
  const response = await withClient(broker, (client) =>
    client.request<Partial<CreateTopicsRequest>, CreateTopicsResponse>(createTopics, 7, {
      topics: [
        {
          name,
          numPartitions: spec.partitions ?? 1,
          replicationFactor: 1,
          assignments: [],
          configs: Object.entries(spec.configs ?? {}).map(([key, value]) => ({ name: key, value })),
        },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    }),
  )
  const result = response.topics[0]!
  if (result.errorCode !== 0) throw new Error(`creating ${name} failed with error ${result.errorCode}: ${result.errorMessage}`)
}

export interface FetchPartitionOptions {
  topic: string
  partition: number
  offset: bigint
  maxWaitMs?: number
  minBytes?: number
  maxBytes?: number
  isolationLevel?: 0 | 1
  /** The leader epoch the fetcher knows (v9+); -1, the default, skips the check. */
  currentLeaderEpoch?: number
  /** Fetch v4-12 name topics; v13+ would need the topic id. */
  version?: number
}

/** The body of a consumer's Fetch for one partition (for a raw socket; `fetchPartition` sends it through a client). */
export function fetchPartitionRequest(options: FetchPartitionOptions): Partial<FetchRequest> {
  return {
    replicaId: -1,
    maxWaitMs: options.maxWaitMs ?? 0,
    minBytes: options.minBytes ?? 1,
    maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
    isolationLevel: options.isolationLevel ?? 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: options.topic,
        topicId: '00000000-0000-0000-0000-000000000000',
        partitions: [
          {
            partition: options.partition,
            currentLeaderEpoch: options.currentLeaderEpoch ?? -1,
            fetchOffset: options.offset,
            lastFetchedEpoch: -1,
            logStartOffset: -1n,
            partitionMaxBytes: options.maxBytes ?? 64 * 1024 * 1024,
            replicaDirectoryId: '00000000-0000-0000-0000-000000000000',
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  }
}

/** One Fetch for one partition; returns that partition's answer. */
export async function fetchPartition(client: KafkaClient, options: FetchPartitionOptions): Promise<FetchResponsePartitionData> {
  const response = await client.request<Partial<FetchRequest>, FetchResponse>(fetch, options.version ?? 11, fetchPartitionRequest(options))
  return response.responses[0]!.partitions[0]!
}

export interface StoredBatch {
  header: BatchHeader
  bytes: Buffer
}

/**
 * Splits a Fetch `records` field into batches and checks each the way a consumer would: the length must fit, and the
 * CRC-32C (over attributes to the end, DefaultRecordBatch.java) must hold. A torn or partial batch fails here.
 */
export function splitBatches(records: Buffer | readonly Buffer[] | null): StoredBatch[] {
  const batches: StoredBatch[] = []
  if (records === null) return batches
  // Decoded responses hold one Buffer; the union comes from the codec's encode side.
  if (!Buffer.isBuffer(records)) records = Buffer.concat(records)
  let at = 0
  while (at < records.length) {
    if (records.length - at < 61) throw new Error(`${records.length - at} trailing bytes are not a whole batch`)
    const size = records.readInt32BE(at + 8) + 12
    if (at + size > records.length) throw new Error(`batch at byte ${at} claims ${size} bytes, only ${records.length - at} were served`)
    const bytes = records.subarray(at, at + size)
    const header = readBatchHeader(bytes)
    if (header.magic !== 2) throw new Error(`batch at offset ${header.baseOffset} has magic ${header.magic}`)
    if (crc32c(bytes.subarray(21)) !== header.crc) throw new Error(`batch at offset ${header.baseOffset} fails its CRC-32C`)
    batches.push({ header, bytes })
    at += size
  }
  return batches
}

/**
 * Every batch of a partition from the log start to the high watermark, read with plain fetches the way a consumer
 * does (each fetch continues after the last batch returned), each batch CRC-checked.
 */
export async function readPartition(client: KafkaClient, topic: string, partition: number): Promise<{ batches: StoredBatch[]; highWatermark: bigint }> {
  const batches: StoredBatch[] = []
  let offset = 0n
  for (;;) {
    const answer = await fetchPartition(client, { topic, partition, offset, maxBytes: 4 * 1024 * 1024 })
    if (answer.errorCode !== 0) throw new Error(`fetch ${topic}-${partition} at ${offset}: error ${answer.errorCode}`)
    const served = splitBatches(answer.records)
    for (const batch of served) {
      const last = batch.header.baseOffset + BigInt(batch.header.lastOffsetDelta)
      if (last >= offset) batches.push(batch)
      if (last + 1n > offset) offset = last + 1n
    }
    if (offset >= answer.highWatermark || served.length === 0) return { batches, highWatermark: answer.highWatermark }
  }
}

/** The records of stored batches, decompressed, with their offsets. */
export function recordsOf(batches: readonly StoredBatch[]): KafkaRecord[] {
  return batches.flatMap((batch) => decodeRecords(batch.bytes))
}

/** `topic`'s `partition` latest offset as `broker`, its leader, answers ListOffsets v1 (read_uncommitted: the high watermark). */
export async function latestOffsetAt(broker: BrokerProcess, topic: string, partition: number): Promise<bigint> {
  return withClient(broker, async (client) => (await listOffset(client, topic, partition, OffsetSpec.LATEST, 1)).offset)
}

/**
 * One ListOffsets lookup (-2 earliest, -1 latest, -3 max timestamp, or a timestamp) for one partition, read_uncommitted
 * unless `options.readCommitted` (then latest is the last stable offset).
 */
export async function listOffset(
  client: KafkaClient,
  topic: string,
  partition: number,
  timestamp: bigint,
  version = 7,
  options: { readCommitted?: boolean } = {},
): Promise<{ errorCode: number; offset: bigint; timestamp: bigint }> {
  const response = await client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, version, {
    replicaId: -1,
    isolationLevel: options.readCommitted ? 1 : 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }],
  })
  const answer = response.topics[0]!.partitions[0]!
  return { errorCode: answer.errorCode, offset: answer.offset ?? -1n, timestamp: answer.timestamp ?? -1n }
}

/** Produces one already-built `records` field to one partition; returns that partition's answer. */
export async function producePartition(client: KafkaClient, topic: string, partition: number, records: Buffer, options: { acks?: number; version?: number; timeoutMs?: number } = {}) {
  const response = await client.request<ProduceRequest, ProduceResponse>(produce, options.version ?? 9, {
    transactionalId: null,
    acks: options.acks ?? -1,
    timeoutMs: options.timeoutMs ?? 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  })
  return response.responses[0]!.partitionResponses[0]!
}
