/**
 * The console consumer (kafka-console-consumer.sh without a group): reads partitions of one topic from a start
 * position, following each partition's leader with long-poll Fetch at the highest version both sides implement.
 *
 * - Start: earliest, latest (the default, as in Kafka), an offset, or the first offset at or after a timestamp
 *   (ListOffsets; a partition with no such record starts at its end).
 * - A fetch returns whole batches from the one holding the fetch offset: records below the position are skipped,
 *   and the position moves past each batch's last offset (so batches emptied by compaction still advance it).
 * - Compressed batches are decompressed (every codec, protocol/compression.ts); control batches are not records.
 * - read_committed: the broker stops at the last stable offset and lists aborted transactions; their batches are
 *   dropped the way Kafka's Fetcher does (from an aborted producer's first offset up to its abort marker).
 * - OFFSET_OUT_OF_RANGE (retention moved the log start, or an offset past the end was asked for) moves the
 *   position to the log start when it was below it, otherwise to the end, and says so through `onNotice`.
 * - Retriable errors (a leader moved) refresh the metadata and fetch again; others end the iteration with the
 *   Kafka error's name and message. A refresh that no node answers (a lone node restarting) is tried again for as long
 *   as the consumer runs, as Kafka's console consumer reconnects.
 * - Partitions led by different nodes are fetched in parallel, one request per leader, and a round ends when every
 *   leader has answered; maxWaitMs bounds how long a quiet leader holds back a busy one.
 */
import type { ClusterClient } from './cluster-client.js'
import type { KafkaClient } from './kafka-client.js'
import { checkError, ConnectionError } from './kafka-client.js'
import { listPartitionOffsets } from './admin.js'
import { counted } from './wording.js'
import { IsolationLevel, OffsetSpec, ZERO_UUID } from '../protocol/constants.js'
import { ErrorCode, errorInfo } from '../protocol/errors.js'
import { Attribute, batchesIn, decodeRecords, readBatchHeader, type BatchHeader, type Record } from '../protocol/record-batch.js'
import {
  fetch,
  type FetchRequest,
  type FetchResponse,
  type FetchResponseAbortedTransaction,
  type FetchResponsePartitionData,
} from '../protocol/messages/fetch.js'
import type { MetadataResponseTopic } from '../protocol/messages/metadata.js'

export type StartPosition =
  | { from: 'earliest' }
  | { from: 'latest' }
  | { from: 'offset'; offset: bigint }
  | { from: 'timestamp'; timestamp: bigint }

export interface ConsumerOptions {
  topic: string
  /** Omitted: every partition of the topic. */
  partitions?: readonly number[]
  start: StartPosition
  isolationLevel: IsolationLevel
  /** End the iteration once nothing has arrived for this long; omitted: run until `signal` aborts. */
  idleTimeoutMs?: number
  /** Longest a Fetch waits at the broker for data (it bounds how soon `signal` is noticed). */
  maxWaitMs?: number
  signal?: AbortSignal
  /** Things worth telling the user that are not errors (an offset reset). */
  onNotice?: (message: string) => void
}

export type TimestampType = 'CreateTime' | 'LogAppendTime'

export interface ConsumedRecord extends Record {
  partition: number
  timestampType: TimestampType
}

const DEFAULT_MAX_WAIT_MS = 500
const FETCH_MAX_BYTES = 50 * 1024 * 1024
const PARTITION_MAX_BYTES = 1024 * 1024
const RETRY_BACKOFF_MS = 100

interface PartitionState {
  partition: number
  position: bigint
}

/**
 * Reads records in offset order per partition (partitions interleave) until the idle timeout or the signal. A
 * partition without a leader, or whose leader cannot be reached (killed, until the controller fences it and elects
 * another), waits for fresh Metadata to name one, as Kafka's consumer does, while the other partitions go on. When no
 * node answers that Metadata (a lone node restarting), it waits for one, saying so through `onNotice`, and reads on
 * from its positions: nothing is skipped or read twice. Errors: no such topic or partition, a partition's
 * non-retriable fetch error, and, before the first record is asked for, no bootstrap server answering.
 */
export async function* consumeRecords(cluster: ClusterClient, options: ConsumerOptions): AsyncGenerator<ConsumedRecord> {
  let topic = await cluster.topic(options.topic, { allowAutoTopicCreation: false })
  const all = topic.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b)
  const wanted = options.partitions ?? all
  for (const partition of wanted) {
    if (!all.includes(partition)) throw new Error(`topic '${options.topic}' has ${counted(all.length, 'partition')}; there is no partition ${partition}`)
  }
  const states = await startPositions(cluster, wanted, options)
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS
  let lastDataAt = Date.now()
  let rotation = 0
  /** Whether the last Metadata found no node answering (said once through `onNotice`, and once more when one does). */
  let waiting = false

  while (!options.signal?.aborted) {
    const idleLeft = options.idleTimeoutMs === undefined ? Infinity : lastDataAt + options.idleTimeoutMs - Date.now()
    if (idleLeft <= 0) return
    const byLeader = new Map<number, PartitionState[]>()
    for (const state of states) {
      // -1: no leader right now (or the partition vanished with a re-created topic); refreshed below.
      const leader = topic.partitions.find((p) => p.partitionIndex === state.partition)?.leaderId ?? -1
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), state])
    }
    // Kafka's consumer rotates the order of partitions in its fetches, so that one busy partition that fills
    // maxBytes first cannot starve the others.
    rotation = (rotation + 1) % states.length
    const fetches = [...byLeader].map(async ([leader, forLeader]) => {
      if (leader < 0) return { forLeader, response: null }
      const ordered = [...forLeader.slice(rotation % forLeader.length), ...forLeader.slice(0, rotation % forLeader.length)]
      try {
        const client = await cluster.node(leader)
        const waitMs = Math.max(0, Math.min(maxWaitMs, idleLeft))
        return { forLeader, response: await fetchFrom(client, topic, ordered, { ...options, maxWaitMs: waitMs }) }
      } catch (error) {
        // The leader died (or left the metadata, fenced): as Kafka's consumer, fetch from its partitions' next leader
        // once the metadata names one; the others go on meanwhile.
        if (error instanceof ConnectionError) return { forLeader, response: null }
        throw error
      }
    })
    let refresh = false
    for (const { forLeader, response } of await Promise.all(fetches)) {
      if (response === null) {
        refresh = true
        continue
      }
      for (const data of response.responses.flatMap((t) => t.partitions)) {
        const state = forLeader.find((s) => s.partition === data.partitionIndex)
        if (!state) continue
        if (data.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          await resetPosition(cluster, state, options)
          continue
        }
        if (data.errorCode !== ErrorCode.NONE) {
          if (!errorInfo(data.errorCode).retriable) checkError(data.errorCode, `cannot fetch ${options.topic}-${state.partition}`)
          refresh = true
          continue
        }
        for (const record of recordsOf(data, state, options.isolationLevel)) {
          lastDataAt = Date.now()
          yield record
        }
      }
    }
    if (refresh) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_BACKOFF_MS))
      try {
        topic = await cluster.topic(options.topic, { allowAutoTopicCreation: false })
        if (waiting) options.onNotice?.('a broker answers again; reading on')
        waiting = false
      } catch (error) {
        // No node answers Metadata (a lone node restarting, every node down at once): as Kafka's console consumer
        // reconnects for as long as it runs, ask again with the positions kept, until the idle timeout or the signal.
        if (!(error instanceof ConnectionError)) throw error
        if (!waiting) options.onNotice?.(`no broker answers (${error.message}); waiting for one to come back`)
        waiting = true
      }
    }
  }
}

async function startPositions(
  cluster: ClusterClient,
  partitions: readonly number[],
  options: ConsumerOptions,
): Promise<PartitionState[]> {
  const { start, isolationLevel } = options
  if (start.from === 'offset') return partitions.map((partition) => ({ partition, position: start.offset }))
  const timestamp = start.from === 'earliest' ? OffsetSpec.EARLIEST : start.from === 'latest' ? OffsetSpec.LATEST : start.timestamp
  const found = await listPartitionOffsets(cluster, options.topic, partitions, { timestamp, isolationLevel })
  const missing = partitions.filter((p) => (found.get(p)?.offset ?? -1n) < 0n)
  // No record at or after the timestamp: start where the next record will be written, as kcat's -o s@ does.
  const ends = missing.length > 0 ? await listPartitionOffsets(cluster, options.topic, missing, { timestamp: OffsetSpec.LATEST, isolationLevel }) : found
  return partitions.map((partition) => {
    const offset = found.get(partition)?.offset ?? -1n
    return { partition, position: offset >= 0n ? offset : ends.get(partition)!.offset }
  })
}

async function resetPosition(cluster: ClusterClient, state: PartitionState, options: ConsumerOptions): Promise<void> {
  const { partition, position } = state
  const spec = { isolationLevel: options.isolationLevel }
  const start = (await listPartitionOffsets(cluster, options.topic, [partition], { ...spec, timestamp: OffsetSpec.EARLIEST })).get(partition)!
  const target = position < start.offset ? start : (await listPartitionOffsets(cluster, options.topic, [partition], { ...spec, timestamp: OffsetSpec.LATEST })).get(partition)!
  options.onNotice?.(`offset ${position} is out of range for ${options.topic}-${partition}; reading from ${target.offset}`)
  state.position = target.offset
}

function fetchFrom(
  client: KafkaClient,
  topic: MetadataResponseTopic,
  states: readonly PartitionState[],
  options: ConsumerOptions & { maxWaitMs: number },
): Promise<FetchResponse> {
  // v4 is the first version that returns record batches (magic 2) and honours the isolation level.
  const version = client.version(fetch, '4-17')
  return client.request<FetchRequest, FetchResponse>(fetch, version, {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: options.maxWaitMs,
    minBytes: 1,
    maxBytes: FETCH_MAX_BYTES,
    isolationLevel: options.isolationLevel,
    // Session id 0 with epoch -1: a full fetch that opens no session (KIP-227).
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: topic.name!,
        // v13+ name the topic by id (Metadata v10+ gave it); older versions by name.
        topicId: topic.topicId ?? ZERO_UUID,
        partitions: states.map((state) => ({
          partition: state.partition,
          currentLeaderEpoch: topic.partitions.find((p) => p.partitionIndex === state.partition)?.leaderEpoch ?? -1,
          fetchOffset: state.position,
          lastFetchedEpoch: -1,
          logStartOffset: -1n,
          partitionMaxBytes: PARTITION_MAX_BYTES,
          replicaDirectoryId: ZERO_UUID,
        })),
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  })
}

/** The records of one partition's answer at or after its position, advancing the position past every batch. */
function* recordsOf(data: FetchResponsePartitionData, state: PartitionState, isolationLevel: IsolationLevel): Generator<ConsumedRecord> {
  const records = data.records === null ? null : Buffer.isBuffer(data.records) ? data.records : Buffer.concat(data.records)
  if (!records) return
  const aborted = new AbortedTransactions(isolationLevel === IsolationLevel.READ_COMMITTED ? (data.abortedTransactions ?? []) : [])
  for (const batch of batchesIn(records)) {
    const header = readBatchHeader(batch)
    const lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta)
    if (lastOffset < state.position) continue
    const skip = aborted.skips(header)
    if (!skip) {
      const timestampType: TimestampType = header.attributes & Attribute.logAppendTime ? 'LogAppendTime' : 'CreateTime'
      for (const record of decodeRecords(batch)) {
        if (record.offset >= state.position) yield { ...record, partition: state.partition, timestampType }
      }
    }
    state.position = lastOffset + 1n
  }
}

/**
 * Kafka's Fetcher logic for read_committed: an aborted transaction of producer P starts at its firstOffset; P's
 * transactional batches from there are dropped until P's control batch (the abort marker) closes it.
 */
class AbortedTransactions {
  private readonly pending: FetchResponseAbortedTransaction[]
  private readonly open = new Set<bigint>()

  constructor(list: readonly FetchResponseAbortedTransaction[]) {
    this.pending = [...list].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0))
  }

  /** Whether the batch carries no records for the reader: a control batch, or part of an aborted transaction. */
  skips(header: BatchHeader): boolean {
    const lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta)
    while (this.pending.length > 0 && this.pending[0]!.firstOffset <= lastOffset) this.open.add(this.pending.shift()!.producerId)
    if (header.attributes & Attribute.control) {
      this.open.delete(header.producerId)
      return true
    }
    return (header.attributes & Attribute.transactional) !== 0 && this.open.has(header.producerId)
  }
}
