/**
 * The console producer (kafka-console-producer.sh): one record per input line, batched per partition and sent to
 * each partition's leader with Produce.
 *
 *   line --parseLine--> record --partitioner--> open batch of its partition
 *                                                  | full (batchBytes / batchRecords), lingerMs passed, or end of input
 *                                                  v
 *                                     encodeRecordBatch --> Produce to the leader (up to MAX_IN_FLIGHT requests)
 *
 * Like Kafka's producer without idempotence (it asks for no producer id), a batch that fails with a retriable
 * error (a leader moved or restarted, or has not yet learned of a topic just created) or whose leader cannot be reached
 * is sent again after a metadata refresh, as retry.ts's DELIVERY says (100 ms doubling to 1 s apart, up to 30 s): a
 * retry may land behind a later batch of the same partition, and a batch whose connection was lost after it was sent
 * may be written twice. With acks=0 nothing is answered, so `flush` ends with a Metadata round trip on each connection
 * used: the broker answers a connection's requests in order, so its answer means every Produce before it was handled.
 */
import { createInterface } from 'node:readline'
import { retriableAtLeader, type ClusterClient } from './cluster-client.js'
import { ConnectionError, checkError, errorText, type KafkaClient } from './kafka-client.js'
import { AGAIN, DELIVERY, gaveUp, retrying } from './retry.js'
import { DefaultPartitioner } from './partitioner.js'
import { counted } from './wording.js'
import { encodeRecordBatch, type RecordHeader, type RecordInput } from '../protocol/record-batch.js'
import { Compression, type CompressionName } from '../protocol/compression.js'
import { ErrorCode } from '../protocol/errors.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../protocol/messages/produce.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponseTopic } from '../protocol/messages/metadata.js'

export type Acks = -1 | 0 | 1
/** The codecs a producer can write (zstd is read, not written: protocol/compression.ts). */
export type ProducerCompression = Exclude<CompressionName, 'zstd'>
export const PRODUCER_COMPRESSIONS: readonly ProducerCompression[] = ['none', 'gzip', 'snappy', 'lz4']

export interface ProducerOptions {
  topic: string
  acks: Acks
  compression: ProducerCompression
  /** Every record goes to this partition; otherwise Kafka's default partitioner decides. */
  partition?: number
  /** Close a batch when its records reach this many bytes (Kafka's batch.size). */
  batchBytes: number
  /** ... or this many records. */
  batchRecords: number
  /** Send an open batch at the latest this long after its first record (Kafka's linger.ms). */
  lingerMs: number
  /** Produce timeoutMs: how long the leader may wait for acks=-1 (below the client's 30 s request timeout). */
  timeoutMs: number
}

export const DEFAULT_PRODUCER_OPTIONS = {
  acks: -1,
  compression: 'none',
  batchBytes: 16_384,
  batchRecords: 10_000,
  lingerMs: 100,
  timeoutMs: 15_000,
} as const satisfies Partial<ProducerOptions>

export interface ProduceSummary {
  records: number
  batches: number
  /** Records per partition. */
  partitions: Map<number, number>
}

/** Kafka's own producer sends at most five requests per connection before it waits for an answer. */
const MAX_IN_FLIGHT = 5
/** Record framing on top of key, value and header bytes: length, attributes, deltas, counts (varints). */
const RECORD_OVERHEAD = 16

interface OpenBatch {
  partition: number
  records: RecordInput[]
  bytes: number
}

export interface LineFormat {
  /** Splits each line at its first occurrence into key and value (Kafka's parse.key / key.separator). */
  keySeparator?: string
  /** Added to every record, as [key, value]. */
  headers?: readonly (readonly [string, string])[]
}

/** One input line as a record; a line without the key separator is an error, as in Kafka's LineMessageReader. */
export function parseLine(line: string, lineNumber: number, format: LineFormat): RecordInput {
  const headers: RecordHeader[] = (format.headers ?? []).map(([key, value]) => ({ key, value: Buffer.from(value) }))
  if (format.keySeparator === undefined) return { key: null, value: Buffer.from(line), headers }
  const at = line.indexOf(format.keySeparator)
  if (at < 0) throw new Error(`line ${lineNumber} has no key separator '${format.keySeparator}': '${line}'`)
  return {
    key: Buffer.from(line.slice(0, at)),
    value: Buffer.from(line.slice(at + format.keySeparator.length)),
    headers,
  }
}

function recordBytes(record: RecordInput): number {
  let bytes = RECORD_OVERHEAD + (record.key?.length ?? 0) + (record.value?.length ?? 0)
  for (const header of record.headers ?? []) bytes += Buffer.byteLength(header.key) + (header.value?.length ?? 0) + 2
  return bytes
}

export class ConsoleProducer {
  private readonly open = new Map<number, OpenBatch>()
  private readonly inFlight = new Set<Promise<void>>()
  private readonly used = new Set<KafkaClient>()
  private readonly partitioner: DefaultPartitioner
  private lingerTimer: NodeJS.Timeout | null = null
  private failure: Error | null = null
  private readonly summary: ProduceSummary = { records: 0, batches: 0, partitions: new Map() }

  private constructor(
    private readonly cluster: ClusterClient,
    private readonly options: ProducerOptions,
    private topic: MetadataResponseTopic,
  ) {
    this.partitioner = new DefaultPartitioner(topic.partitions.length)
  }

  /** Looks the topic up (creating it if the broker auto-creates topics, as Kafka producers allow). */
  static async open(cluster: ClusterClient, options: ProducerOptions): Promise<ConsoleProducer> {
    const topic = await cluster.topic(options.topic, { allowAutoTopicCreation: true })
    const count = topic.partitions.length
    if (count === 0) throw new Error(`topic '${options.topic}' has no partitions yet`)
    if (options.partition !== undefined && options.partition >= count) {
      throw new Error(`topic '${options.topic}' has ${counted(count, 'partition')}; there is no partition ${options.partition}`)
    }
    return new ConsoleProducer(cluster, options, topic)
  }

  /** Adds a record; resolves once it is batched, waiting while MAX_IN_FLIGHT requests are outstanding. */
  async send(record: RecordInput): Promise<void> {
    if (this.failure) throw this.failure
    const partition = this.options.partition ?? this.partitioner.partition(record.key ?? null)
    let batch = this.open.get(partition)
    if (!batch) {
      batch = { partition, records: [], bytes: 0 }
      this.open.set(partition, batch)
    }
    batch.records.push(record)
    batch.bytes += recordBytes(record)
    if (batch.bytes >= this.options.batchBytes || batch.records.length >= this.options.batchRecords) {
      await this.dispatch([this.close(batch)])
    } else {
      this.lingerTimer ??= setTimeout(() => void this.dispatch(this.closeAll()), this.options.lingerMs)
    }
  }

  /** Sends every open batch and waits for all answers; throws the first failure. */
  async flush(): Promise<ProduceSummary> {
    await this.dispatch(this.closeAll())
    while (this.inFlight.size > 0) await Promise.all(this.inFlight)
    if (this.failure) throw this.failure
    if (this.options.acks === 0) {
      await Promise.all([...this.used].map((client) => roundTrip(client)))
    }
    return this.summary
  }

  private close(batch: OpenBatch): OpenBatch {
    this.open.delete(batch.partition)
    this.partitioner.batchClosed(batch.partition)
    return batch
  }

  private closeAll(): OpenBatch[] {
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    this.lingerTimer = null
    return [...this.open.values()].map((batch) => this.close(batch))
  }

  private async dispatch(batches: OpenBatch[]): Promise<void> {
    if (batches.length === 0) return
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight)
    const encoded = batches.map((batch) => ({
      partition: batch.partition,
      count: batch.records.length,
      records: encodeRecordBatch(batch.records, { compression: Compression[this.options.compression] }),
    }))
    const sending: Promise<void> = this.produce(encoded)
      .catch((error: Error) => {
        this.failure ??= error
      })
      .finally(() => this.inFlight.delete(sending))
    this.inFlight.add(sending)
  }

  /**
   * One Produce request per leader; batches that fail with a retriable error, or whose leader has none or cannot be
   * reached, are sent again through fresh Metadata as DELIVERY says. Errors: a batch's other error at once (checkError),
   * the topic's Metadata error, `cannot produce to t partitions 0, 2: ...; gave up after 30 s`.
   */
  private produce(batches: EncodedBatch[]): Promise<void> {
    let pending = batches
    let refresh = false
    return retrying(DELIVERY, async (last) => {
      if (refresh) this.topic = await this.cluster.topic(this.options.topic, { allowAutoTopicCreation: false })
      const byLeader = new Map<number, EncodedBatch[]>()
      for (const batch of pending) {
        const leader = this.topic.partitions.find((p) => p.partitionIndex === batch.partition)?.leaderId ?? -1
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), batch])
      }
      const retry: EncodedBatch[] = []
      let why = ''
      await Promise.all(
        [...byLeader].map(async ([leader, forLeader]) => {
          if (leader < 0) {
            retry.push(...forLeader)
            why = errorText(ErrorCode.LEADER_NOT_AVAILABLE)
            return
          }
          let failed: { batch: EncodedBatch; errorCode: number }[]
          try {
            failed = await this.produceTo(await this.cluster.node(leader), forLeader)
          } catch (error) {
            if (!(error instanceof ConnectionError)) throw error
            retry.push(...forLeader)
            why = `leader ${leader} unreachable (${error.message})`
            return
          }
          for (const { batch, errorCode } of failed) {
            retry.push(batch)
            why = errorText(errorCode)
          }
        }),
      )
      if (retry.length === 0) return undefined
      if (last) {
        const partitions = [...new Set(retry.map((b) => b.partition))].sort((a, b) => a - b)
        const named = `${partitions.length === 1 ? 'partition' : 'partitions'} ${partitions.join(', ')}`
        throw new Error(gaveUp(DELIVERY, `cannot produce to ${this.options.topic} ${named}: ${why}`))
      }
      pending = retry
      refresh = true
      return AGAIN
    })
  }

  /** Sends one request; returns the batches that failed with a retriable error, throws on any other error. */
  private async produceTo(client: KafkaClient, batches: EncodedBatch[]): Promise<{ batch: EncodedBatch; errorCode: number }[]> {
    this.used.add(client)
    // v3 is the first version that carries record batches (magic 2).
    const version = client.version(produce, '3-11')
    const request: ProduceRequest = {
      transactionalId: null,
      acks: this.options.acks,
      timeoutMs: this.options.timeoutMs,
      topicData: [{ name: this.options.topic, partitionData: batches.map((b) => ({ index: b.partition, records: b.records })) }],
    }
    if (this.options.acks === 0) {
      client.send(produce, version, request)
      for (const batch of batches) this.count(batch)
      return []
    }
    const response = await client.request<ProduceRequest, ProduceResponse>(produce, version, request)
    const failed: { batch: EncodedBatch; errorCode: number }[] = []
    for (const answer of response.responses.flatMap((t) => t.partitionResponses)) {
      const batch = batches.find((b) => b.partition === answer.index)
      if (!batch) continue
      if (answer.errorCode === 0) this.count(batch)
      else if (retriableAtLeader(answer.errorCode)) failed.push({ batch, errorCode: answer.errorCode })
      else checkError(answer.errorCode, `cannot produce to ${this.options.topic}-${answer.index}`, answer.errorMessage)
    }
    return failed
  }

  private count(batch: EncodedBatch): void {
    this.summary.records += batch.count
    this.summary.batches += 1
    this.summary.partitions.set(batch.partition, (this.summary.partitions.get(batch.partition) ?? 0) + batch.count)
  }
}

/** A Metadata request for no topics: answered after every request sent before it on this connection. */
async function roundTrip(client: KafkaClient): Promise<void> {
  await client.request<MetadataRequest, MetadataResponse>(metadata, client.version(metadata, '1-12'), {
    topics: [],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  })
}

interface EncodedBatch {
  partition: number
  count: number
  records: Buffer
}

/**
 * Produces every line of `input`; stops at the first error (after waiting for what is already in flight). The line
 * reader is created only once the producer is open: readline emits lines as soon as it exists, and lines emitted
 * before anyone iterates are lost.
 */
export async function produceLines(
  cluster: ClusterClient,
  input: NodeJS.ReadableStream,
  options: ProducerOptions & LineFormat & { signal?: AbortSignal },
): Promise<ProduceSummary> {
  const producer = await ConsoleProducer.open(cluster, options)
  const lines = createInterface({ input, crlfDelay: Infinity, signal: options.signal })
  let lineNumber = 0
  try {
    for await (const line of lines) await producer.send(parseLine(line, ++lineNumber, options))
  } catch (error) {
    await producer.flush().catch(() => {})
    throw error
  } finally {
    lines.close()
  }
  return producer.flush()
}
