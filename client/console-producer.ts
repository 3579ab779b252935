/**
 * The console producer (kafka-console-producer.sh): one record per input line, batched per partition and sent to
 * each partition's leader with Produce.
 *
 *   line --parseLine--> record --partitioner--> open batch of its partition
 *                                                  | full (batchBytes / batchRecords), lingerMs passed, end of input,
 *                                                  | or the next record would take it past maxRequestBytes
 *                                                  v
 *                                     encodeRecordBatch --> Produce to the leader (up to MAX_IN_FLIGHT requests,
 *                                                           one batch of a partition at a time)
 *
 * A batch that fails with a retriable error (a leader moved or restarted, or has not yet learned of a topic just
 * created; REQUEST_TIMED_OUT or NOT_ENOUGH_REPLICAS_AFTER_APPEND, written by the leader but not yet replicated) or
 * whose leader cannot be reached is sent again after a metadata refresh, as retry.ts's DELIVERY says (100 ms doubling
 * to 1 s apart, up to 30 s; `ClusterClient.atLeaders`). A partition has one batch in flight at a time, so a retry
 * never lands behind a later batch of its partition.
 *
 * Idempotence (KIP-98), on with acks=all as in Kafka's producer since 3.0 (KIP-679: enable.idempotence defaults to
 * true, and an acks other than all, given without enable.idempotence, turns it off):
 *
 *   open:  InitProducerId (no transactional id) at any node --> producerId, producerEpoch
 *   batch: baseSequence = the partition's next sequence (0 first), which then grows by the batch's record count
 *          (wrapping after Int32 max); encoded once, so every retry sends the same bytes
 *   leader: a retry of one of the producer's last five batches is answered with its first offsets, never written
 *           again (storage/producer-state.ts); DUPLICATE_SEQUENCE_NUMBER (a broker that no longer holds the
 *           original's offsets) means written too, as Kafka's Sender.completeBatch counts it
 *
 * So a batch the leader wrote but answered REQUEST_TIMED_OUT, or whose answer a lost connection took, is written
 * once. OUT_OF_ORDER_SEQUENCE_NUMBER (the partition lost batches before this one), UNKNOWN_PRODUCER_ID (it forgot the
 * producer, producer.id.expiration.ms) and INVALID_PRODUCER_EPOCH end the command with that error, as Kafka's producer
 * fails on them. A cluster without InitProducerId (before Kafka 0.11), or that refuses it (CLUSTER_AUTHORIZATION_FAILED:
 * before Kafka 3.0 the IDEMPOTENT_WRITE ACL), gets batches without a producer id, with no error; so do acks=0 and
 * acks=1, where a batch whose answer was lost may be written twice, as in Kafka's producer without idempotence.
 *
 * With acks=0 nothing is answered, so `flush` ends with a Metadata round trip on each connection used: the broker
 * answers a connection's requests in order, so its answer means every Produce before it was handled.
 */
import { createInterface } from 'node:readline'
import type { ClusterClient } from './cluster-client.js'
import { checkError, ConnectionError, RequestTimedOutError, type KafkaClient } from './kafka-client.js'
import { DELIVERY } from './retry.js'
import { DefaultPartitioner } from './partitioner.js'
import { counted } from './wording.js'
import { BATCH_HEADER_SIZE, encodeRecordBatch, incrementSequence, type BatchOptions, type RecordHeader, type RecordInput } from '../protocol/record-batch.js'
import { Compression, loadCodec, type CompressionName } from '../protocol/compression.js'
import { ErrorCode } from '../protocol/errors.js'
import { produce, type ProduceRequest, type ProduceResponse, type ProduceResponsePartitionProduceResponse } from '../protocol/messages/produce.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponseTopic } from '../protocol/messages/metadata.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../protocol/messages/init-producer-id.js'

export type Acks = -1 | 0 | 1

export interface ProducerOptions {
  topic: string
  acks: Acks
  /** Any codec (zstd needs Produce v7, which every Kafka since 2.1 and Brook take). */
  compression: CompressionName
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
  /**
   * How long opening waits for the topic's metadata while it answers a retriable error, such as LEADER_NOT_AVAILABLE
   * for a topic being auto-created (ms; Kafka's max.block.ms, whose default is 60000).
   */
  maxBlockMs: number
  /**
   * The largest request a record may need, alone in its batch (Kafka's max.request.size): a larger one is refused
   * before it is sent (`oversized`), and a batch that would outgrow it with the next record is sent first.
   */
  maxRequestBytes: number
}

export const DEFAULT_PRODUCER_OPTIONS = {
  acks: -1,
  compression: 'none',
  batchBytes: 16_384,
  batchRecords: 10_000,
  lingerMs: 100,
  timeoutMs: 15_000,
  maxBlockMs: DELIVERY.timeoutMs!,
  // Kafka's producer takes 1 MiB, below its broker's message.max.bytes; brook produce has always sent what a topic's
  // max.message.bytes allows, so its default is the largest request a broker takes by default (socket.request.max.bytes).
  maxRequestBytes: 104_857_600,
} as const satisfies Partial<ProducerOptions>

/**
 * What the producer can say of the records it counted: acknowledged ('produced'); with acks=0 only sent, as nothing
 * answers them, and which were written is unknown.
 */
export function producedVerb(acks: Acks): string {
  return acks === 0 ? 'sent (acks=0, not acknowledged)' : 'produced'
}

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
/**
 * What InitProducerId asks for as the transaction timeout: Kafka's producer sends its transaction.timeout.ms (60 s)
 * with or without a transactional id; without one the broker ignores it.
 */
const TRANSACTION_TIMEOUT_MS = 60_000
/** The errors that end an idempotent producer (Kafka's producer treats them as fatal to the batch, then to itself). */
const FATAL_TO_IDEMPOTENCE: ReadonlySet<number> = new Set([ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.UNKNOWN_PRODUCER_ID, ErrorCode.INVALID_PRODUCER_EPOCH])

/** An idempotent producer's identity, from InitProducerId. */
export interface ProducerIdentity {
  producerId: bigint
  producerEpoch: number
}

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

/**
 * Why line `lineNumber` cannot be sent, or null: a request carrying its record alone (in a batch of its own, estimated
 * as Kafka's KafkaProducer.ensureValidRecordSize does) would exceed `maxRequestBytes`. A broker closes the connection of
 * a request larger than its socket.request.max.bytes without an answer, which a producer can only take for a lost
 * connection and send again until it gives up.
 */
function oversized(record: RecordInput, lineNumber: number, maxRequestBytes: number): Error | null {
  const bytes = BATCH_HEADER_SIZE + recordBytes(record)
  if (bytes <= maxRequestBytes) return null
  return new Error(`line ${lineNumber} is ${bytes} bytes as a record batch, more than --max-request-size allows (${maxRequestBytes}; a broker closes the connection of a request larger than its socket.request.max.bytes)`)
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
  /** Each partition's last dispatched batch (with its retries): the next batch of the partition waits for it. */
  private readonly lastSent = new Map<number, Promise<void>>()
  private readonly partitioner: DefaultPartitioner
  private lingerTimer: NodeJS.Timeout | null = null
  private failure: Error | null = null
  private readonly summary: ProduceSummary = { records: 0, batches: 0, partitions: new Map() }
  /** With idempotence, each partition's next baseSequence (absent: 0, its first batch). */
  private readonly nextSequence = new Map<number, number>()

  private constructor(
    private readonly cluster: ClusterClient,
    private readonly options: ProducerOptions,
    topic: MetadataResponseTopic,
    /** The producer id and epoch every batch carries; null without idempotence. */
    private readonly identity: ProducerIdentity | null,
  ) {
    this.partitioner = new DefaultPartitioner(topic.partitions.length)
  }

  /**
   * Looks the topic up (creating it if the broker auto-creates topics, as Kafka producers allow), then, with acks=all,
   * asks for a producer id (`initIdempotence`).
   */
  static async open(cluster: ClusterClient, options: ProducerOptions): Promise<ConsoleProducer> {
    await loadCodec(Compression[options.compression])
    // A topic being auto-created answers LEADER_NOT_AVAILABLE until its leaders are elected, and for as long as the
    // cluster has fewer live nodes than its default replication factor: wait as a batch waits (Kafka's producer
    // waits max.block.ms for the topic's metadata) rather than SETTLING's 2 s.
    const topic = await cluster.topic(options.topic, { allowAutoTopicCreation: true, policy: { ...DELIVERY, timeoutMs: options.maxBlockMs } })
    const count = topic.partitions.length
    if (count === 0) throw new Error(`topic '${options.topic}' has no partitions yet`)
    if (options.partition !== undefined && options.partition >= count) {
      throw new Error(`topic '${options.topic}' has ${counted(count, 'partition')}; there is no partition ${options.partition}`)
    }
    return new ConsoleProducer(cluster, options, topic, options.acks === -1 ? await initIdempotence(cluster) : null)
  }

  /** Adds a record; resolves once it is batched, waiting while MAX_IN_FLIGHT requests are outstanding. */
  async send(record: RecordInput): Promise<void> {
    if (this.failure) throw this.failure
    const partition = this.options.partition ?? this.partitioner.partition(record.key ?? null)
    let batch = this.open.get(partition)
    // A batch never outgrows a request: the one open goes first when this record would take it past maxRequestBytes.
    if (batch && BATCH_HEADER_SIZE + batch.bytes + recordBytes(record) > this.options.maxRequestBytes) {
      await this.dispatch([this.close(batch)])
      batch = undefined
    }
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
      await Promise.all([...this.used].map((client) => roundTrip(client))).catch((error: unknown) => {
        // A broker answers a Produce it refuses with acks=0 by closing the connection (KafkaApis.handleProduceRequest,
        // broker/handlers/produce.ts): the one way such a producer hears of it.
        if (!(error instanceof ConnectionError) || error instanceof RequestTimedOutError) throw error
        throw new ConnectionError(`${error.message} (a broker closes the connection of an acks=0 producer when it refuses a batch; --acks 1 says why)`, { cause: error })
      })
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

  /**
   * Sends `batches` (one per partition) once every batch sent before them to the same partitions has been answered:
   * one batch of a partition at a time, so that a retried batch never lands behind a later one of its partition (what
   * Kafka's producer guarantees without idempotence only with max.in.flight.requests.per.connection=1, its Sender
   * muting a partition while a batch of it is in flight); batches of other partitions go meanwhile. After a failure
   * nothing more is sent: the command ends with it.
   */
  private async dispatch(batches: OpenBatch[]): Promise<void> {
    if (batches.length === 0) return
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight)
    const encoded = batches.map((batch) => this.encode(batch.partition, batch.records, this.sequenced(batch)))
    const earlier = batches.map((batch) => this.lastSent.get(batch.partition))
    const sending: Promise<void> = Promise.all(earlier)
      .then(() => (this.failure ? undefined : this.produce(encoded)))
      .catch((error: Error) => {
        this.failure ??= error
      })
      .finally(() => this.inFlight.delete(sending))
    this.inFlight.add(sending)
    for (const batch of batches) this.lastSent.set(batch.partition, sending)
  }

  /**
   * With idempotence, the baseSequence of a partition's next batch, taken from the partition's sequences; without,
   * null (the batch says -1: no producer). Called once per batch, as `dispatch` encodes it, in the same synchronous
   * step that makes it its partition's `lastSent`: so a partition's sequences follow its send order.
   */
  private sequenced(batch: OpenBatch): number | null {
    if (!this.identity) return null
    const baseSequence = this.nextSequence.get(batch.partition) ?? 0
    this.nextSequence.set(batch.partition, incrementSequence(baseSequence, batch.records.length))
    return baseSequence
  }

  /** `records` of `partition` as one batch for the wire, with the producer's id, epoch and `baseSequence` when idempotent. */
  private encode(partition: number, records: RecordInput[], baseSequence: number | null): EncodedBatch {
    const producer: Pick<BatchOptions, 'producerId' | 'producerEpoch' | 'baseSequence'> = this.identity && baseSequence !== null ? { ...this.identity, baseSequence } : {}
    return { partition, source: records, baseSequence, records: encodeRecordBatch(records, { compression: Compression[this.options.compression], ...producer }) }
  }

  /**
   * One Produce request per leader through `ClusterClient.atLeaders`: batches refused with a retriable error, or whose
   * leader has none or cannot be reached, are sent again through fresh Metadata as DELIVERY says, the same bytes each
   * time. DUPLICATE_SEQUENCE_NUMBER is a batch written before (a retry's first attempt reached the log). Errors: a
   * batch's other error (checkError, `cannot produce to t-0: MESSAGE_TOO_LARGE (...)`; the idempotence errors name
   * the producer, `cannot produce to t-0 as producer 7 (epoch 0): OUT_OF_ORDER_SEQUENCE_NUMBER (...)`), the topic's
   * Metadata error, `cannot produce to t partitions 0, 2: ...; gave up after 30 s`.
   *
   * A batch of several records refused with MESSAGE_TOO_LARGE (larger than the topic's max.message.bytes) is split in
   * two halves, each sent in turn, and so on down to single records, as Kafka's Sender splits such a batch
   * (`splitAndReenqueue`): the halves keep the batch's sequence numbers, which the broker never wrote. So only a record
   * too large on its own fails, and the records before it in the batch are produced.
   */
  private async produce(batches: EncodedBatch[]): Promise<void> {
    const topic = this.options.topic
    const byPartition = new Map(batches.map((batch) => [batch.partition, batch]))
    const outcomes = await this.cluster.atLeaders(topic, [...byPartition.keys()], (leader, partitions) => this.produceTo(leader, partitions.map((p) => byPartition.get(p)!)), {
      policy: DELIVERY,
      errorCode: (answer) => answer.errorCode,
      unreachable: 'wait',
    })
    const undelivered: { partition: number; why: string }[] = []
    const tooLarge: EncodedBatch[] = []
    for (const [partition, outcome] of outcomes) {
      if ('unavailable' in outcome) {
        undelivered.push({ partition, why: outcome.unavailable })
      } else {
        const { errorCode, errorMessage } = outcome.answer
        if (errorCode === ErrorCode.MESSAGE_TOO_LARGE && byPartition.get(partition)!.source.length > 1) {
          tooLarge.push(byPartition.get(partition)!)
          continue
        }
        if (errorCode !== ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
          const producer = this.identity && FATAL_TO_IDEMPOTENCE.has(errorCode) ? ` as producer ${this.identity.producerId} (epoch ${this.identity.producerEpoch})` : ''
          checkError(errorCode, `cannot produce to ${topic}-${partition}${producer}`, errorMessage)
        }
        this.count(byPartition.get(partition)!)
      }
    }
    if (undelivered.length === 0) {
      await Promise.all(tooLarge.map((batch) => this.produceHalves(batch)))
      return
    }
    const partitions = undelivered.map((u) => u.partition).sort((a, b) => a - b)
    const named = `${partitions.length === 1 ? 'partition' : 'partitions'} ${partitions.join(', ')}`
    throw new Error(`cannot produce to ${topic} ${named}: ${undelivered[0]!.why}`)
  }

  /** Sends the first half of `batch`'s records, then the second (`produce` splits each again should it be too large). */
  private async produceHalves(batch: EncodedBatch): Promise<void> {
    const half = Math.ceil(batch.source.length / 2)
    const second = batch.baseSequence === null ? null : incrementSequence(batch.baseSequence, half)
    await this.produce([this.encode(batch.partition, batch.source.slice(0, half), batch.baseSequence)])
    await this.produce([this.encode(batch.partition, batch.source.slice(half), second)])
  }

  /** Sends one Produce request; returns the leader's answer for each batch's partition (no error, for acks=0). */
  private async produceTo(client: KafkaClient, batches: EncodedBatch[]): Promise<Map<number, PartitionAnswer>> {
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
      return new Map(batches.map((b) => [b.partition, { errorCode: ErrorCode.NONE, errorMessage: null }]))
    }
    const response = await client.request<ProduceRequest, ProduceResponse>(produce, version, request)
    return new Map(response.responses.flatMap((t) => t.partitionResponses).map((answer) => [answer.index, answer]))
  }

  /** Records acknowledged so far (sent, for acks=0). */
  get acknowledged(): number {
    return this.summary.records
  }

  private count(batch: EncodedBatch): void {
    this.summary.records += batch.source.length
    this.summary.batches += 1
    this.summary.partitions.set(batch.partition, (this.summary.partitions.get(batch.partition) ?? 0) + batch.source.length)
  }
}

/**
 * An idempotent producer's id and epoch: InitProducerId without a transactional id (KIP-98), at any node, as Kafka's
 * producer asks its least loaded node; a node not ready to hand out ids (COORDINATOR_LOAD_IN_PROGRESS) or lost is
 * asked again (`ClusterClient.atAnyNode`). null, for a producer without idempotence, when the cluster cannot give one:
 * the node does not implement InitProducerId (before Kafka 0.11), or refuses it with CLUSTER_AUTHORIZATION_FAILED
 * (before Kafka 3.0 an idempotent producer needed the IDEMPOTENT_WRITE ACL; KIP-679). Errors: any other error; when
 * the node still answered COORDINATOR_LOAD_IN_PROGRESS after 30 s, the message adds what that means on a cluster.
 */
async function initIdempotence(cluster: ClusterClient): Promise<ProducerIdentity | null> {
  const what = 'cannot get a producer id'
  let answered: number = ErrorCode.NONE
  try {
    return await cluster.atAnyNode(what, async (client) => {
      answered = ErrorCode.NONE
      if (!client.supports(initProducerId)) return null
      const response = await client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, client.version(initProducerId), {
        transactionalId: null,
        transactionTimeoutMs: TRANSACTION_TIMEOUT_MS,
        producerId: -1n,
        producerEpoch: -1,
      })
      answered = response.errorCode
      if (response.errorCode === ErrorCode.CLUSTER_AUTHORIZATION_FAILED) return null
      checkError(response.errorCode, what)
      return { producerId: response.producerId!, producerEpoch: response.producerEpoch }
    })
  } catch (error) {
    // A cluster node (Brook's, as Kafka's since KIP-730) takes producer ids in blocks from the active controller, and
    // answers COORDINATOR_LOAD_IN_PROGRESS while it has none left and cannot get one.
    if (answered !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) throw error
    throw new Error(`${(error as Error).message}; a cluster node hands out producer ids only while it reaches the active controller (a majority of the controller quorum running), and --acks 1 produces without one`)
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
  records: Buffer
  /** The records the batch was encoded from, and its first sequence number (null without idempotence): to count and split it. */
  source: RecordInput[]
  baseSequence: number | null
}

/** What a leader answers for one partition of a Produce. */
type PartitionAnswer = Pick<ProduceResponsePartitionProduceResponse, 'errorCode' | 'errorMessage'>

/**
 * Produces every line of `input`; stops at the first error (after waiting for what is already in flight). The
 * producer opens at the first line, as Kafka's console producer asks for the topic only at its first send: a run
 * without any line (an empty file, Ctrl-C before typing) neither auto-creates the topic nor takes a producer id.
 * readline's iterator, taken at once, keeps the lines that come while the producer opens (readline emits lines as
 * soon as it exists, and those emitted before anyone iterates would be lost). Errors: the first error; its message
 * says how many records were produced all the same: a bad line, after which every record before it was acknowledged,
 * `line 4 has no key separator ':': ''; the 3 records before it were produced` (so is a line too large for
 * `maxRequestBytes`, `oversized`); a batch refused, `cannot produce to
 * t-0: MESSAGE_TOO_LARGE (...); 2 other records were produced` (those acknowledged: before it, or of other partitions).
 * With acks=0 nothing is acknowledged, nor refused but by a closed connection that names no batch: the records are
 * said to be sent, the refused one among them (`connection to ... failed: ...; 7 records were sent (acks=0, not
 * acknowledged)`).
 */
export async function produceLines(
  cluster: ClusterClient,
  input: NodeJS.ReadableStream,
  options: ProducerOptions & LineFormat & { signal?: AbortSignal },
): Promise<ProduceSummary> {
  const lines = createInterface({ input, crlfDelay: Infinity, signal: options.signal })
  const reader = lines[Symbol.asyncIterator]()
  try {
    const first = await reader.next()
    if (first.done === true) return { records: 0, batches: 0, partitions: new Map() }
    return await produceAll(await ConsoleProducer.open(cluster, options), startingWith(first.value, reader), options)
  } finally {
    lines.close()
  }
}

async function produceAll(producer: ConsoleProducer, lines: AsyncIterable<string>, format: LineFormat & Pick<ProducerOptions, 'acks' | 'maxRequestBytes'>): Promise<ProduceSummary> {
  const verb = producedVerb(format.acks)
  let lineNumber = 0
  let badLine: Error | null = null
  try {
    for await (const line of lines) {
      let record: RecordInput
      try {
        record = parseLine(line, ++lineNumber, format)
      } catch (error) {
        badLine = error as Error
        break
      }
      badLine = oversized(record, lineNumber, format.maxRequestBytes)
      if (badLine !== null) break
      await producer.send(record)
    }
    if (badLine === null) return await producer.flush()
  } catch (error) {
    // A batch refused: what is in flight is answered, then the error says how many records were produced all the same.
    await producer.flush().catch(() => undefined)
    const records = producer.acknowledged
    // With acks=0 the failure names no batch: the records sent include the one it stands for.
    const other = format.acks === 0 ? '' : 'other '
    if (records > 0 && error instanceof Error) error.message += `; ${records === 1 ? `1 ${other}record was` : `${records} ${other}records were`} ${verb}`
    throw error
  }
  // A bad line: the records before it are sent; when they were all acknowledged, the error says how many.
  const before = await producer.flush().catch(() => null)
  if (before !== null && before.records > 0) {
    badLine.message += `; the ${before.records === 1 ? 'record before it was' : `${before.records} records before it were`} ${verb}`
  }
  throw badLine
}

/** `first`, then what `rest` yields. */
async function* startingWith(first: string, rest: AsyncIterator<string>): AsyncGenerator<string> {
  yield first
  for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value
}
