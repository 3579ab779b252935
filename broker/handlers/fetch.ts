/**
 * Fetch: v4-17.
 *
 * Behaviour
 * - Long poll (DelayedFetch): the answer goes out as soon as `minBytes` are readable, any partition has an error,
 *   or `maxWaitMs` passes (measured on the monotonic clock, broker/clock.ts); a Fetch naming no partition is answered
 *   at once (ReplicaManager.fetchMessages answers when `fetchInfos.isEmpty`), a consumer's and a follower's alike; a
 *   parked fetch wakes on every append to a partition it asked for. It also wakes when a partition it asked for is
 *   deleted or this node stops leading it (a leader moved by an election or a reassignment,
 *   as Kafka's ReplicaManager.completeDelayedOperationsWhenNotPartitionLeader completes the DelayedFetch), and then
 *   answers that partition FENCED_LEADER_EPOCH or NOT_LEADER_OR_FOLLOWER at once, not after `maxWaitMs`.
 * - Each partition returns whole stored batches starting with the one that holds `fetchOffset` (clients drop the
 *   records below it), up to the high watermark (read_uncommitted) or the last stable offset (read_committed).
 *   Reads stop before `partitionMaxBytes` and the request's `maxBytes` would be passed, except that the first
 *   partition with data returns at least one whole batch (minOneMessage), so a large batch never blocks a consumer.
 * - A partition named more than once is read once, with the last entry's offset and limits, in the place it was first
 *   named (FetchRequest.fetchData is a map keyed by partition), so a request naming one partition thousands of times
 *   gets one answer for it, not thousands of copies of its records.
 * - The answer is capped by the broker's `fetch.max.bytes` as well (KafkaApis: min(maxBytes, fetch.max.bytes)), so a
 *   client asking for 2^31-1 bytes gets at most fetch.max.bytes, or one batch when the first is larger.
 * - The node's pool for answers not yet sent (`queued.max.response.bytes`, answer-budget.ts) bounds all fetches
 *   together: each pass reads at most the room left in it, and a pass that finds none still returns one batch. An
 *   answer's bytes go back to the pool once it has left the socket.
 * - Batches served from the node's batch cache go out as views of its slabs, not copies: each pass reads under a
 *   `CacheLease`, released once the answer has left the socket (or a parked pass is dropped), and the cache writes
 *   no held slab again (storage/batch-cache.ts).
 * - A Fetch mutes its connection (no further request is read until its answer has left the socket), so fetches a
 *   client pipelines but does not read cannot pile up answers; while parked it does not count against
 *   queued.max.requests, as Kafka's fetch purgatory holds requests outside the request queue.
 * - `fetchOffset` below the log start or above the log end: OFFSET_OUT_OF_RANGE; at the high watermark: no records.
 * - `currentLeaderEpoch` (v9+) is checked before leadership, as Kafka's Partition.getLocalLog: FENCED_LEADER_EPOCH /
 *   UNKNOWN_LEADER_EPOCH, also at a follower.
 * - An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID for a topic id the node does not
 *   know; a missing partition of a known id is UNKNOWN_TOPIC_OR_PARTITION); a cluster node answers
 *   NOT_LEADER_OR_FOLLOWER for a partition its metadata image holds but it has no log of yet (a topic just created),
 *   to a consumer and a follower alike, as Kafka's ReplicaManager.getPartitionOrError does (handler.ts
 *   `missingPartitionError`).
 * - A partition whose read finds a corrupt LevelDB block answers KAFKA_STORAGE_ERROR, and the node logs it at ERROR;
 *   the other partitions are answered, for a consumer and a follower alike (Kafka's ReplicaManager.readFromLocalLog
 *   answers a KafkaStorageException per partition). A follower backs that partition off and asks again.
 * - Fetch sessions (KIP-227) are declined for consumers: the answer's session id is 0, so clients keep sending full
 *   fetches; an incremental one (a session epoch other than 0 and -1) names a session this node never gave a consumer, and is
 *   answered FETCH_SESSION_ID_NOT_FOUND with no partitions, as Kafka's FetchManager answers an unknown session. A
 *   follower gets one (cluster/fetch-sessions.ts), when its replica id is a broker the node's metadata image
 *   registers; a node keeps at most one session per broker, and at most 1000 in all. An incremental fetch reads the
 *   session's partitions in turn: those its answer carried go to the end of the session's order (Kafka's
 *   IncrementalFetchContext), so a small maxBytes does not serve the first partitions every time.
 * - On a cluster node, a Fetch with a replica id (ReplicaId before v15, ReplicaState from v15, KIP-903) is a
 *   follower's (Kafka's ReplicaManager.fetchMessages for a follower): each partition goes through the leader's
 *   replica (cluster/replica-manager.ts `replicaFetch`: epoch checks, KIP-320's divergingEpoch, the follower's
 *   position for the ISR and the high watermark) and is served past the high watermark up to the log end, batches
 *   still being written included (from the batch cache), so the follower's write of a batch overlaps the leader's;
 *   it is held while there is nothing new, and woken by an append as soon as the batch has its offsets, answered once
 *   the event loop's current I/O phase is over (so the produce requests read with that one are in it too). A moved high
 *   watermark alone does not answer it (as Kafka's follower fetches without a fetch session): followers learn the high
 *   watermark with the next batch, or at replica.fetch.wait.max.ms, so an acks=all produce costs each follower one
 *   fetch round, not a second one to carry the high watermark it moved.
 *   A replica id on a single node, or from a node that is not a replica, is NOT_LEADER_OR_FOLLOWER per partition;
 *   so is every partition of a replica id that is no broker of the cluster, which gets no session either.
 *   A consumer (no replica id) reads up to the high watermark, from the leader only.
 *
 * Version notes
 * - v4 is the first version with isolation levels and RecordBatch (librdkafka's MsgVer2 needs Fetch 4 advertised);
 *   v0-3 (legacy message sets) are not offered. v10 is needed for librdkafka's zstd: a partition of a topic whose
 *   compression.type is zstd answers an older fetch UNSUPPORTED_COMPRESSION_TYPE, as Kafka's does (KIP-110).
 * - v13+ name topics by id; an unknown id is UNKNOWN_TOPIC_ID. v12+ are flexible; no tagged field is sent that the
 *   version does not define (the codec writes only defined, non-default tags).
 * - v16+ (KIP-951): a consumer's partition answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries its current
 *   leader and leader epoch from the node's metadata, and the answer the endpoints of those leaders that are live
 *   brokers (nodeEndpoints), so the consumer goes to the new leader without asking Metadata first
 *   (KafkaApis.handleFetchRequest).
 */
import {
  fetch,
  type FetchRequest,
  type FetchResponse,
  type FetchResponsePartitionData,
  type FetchResponseFetchableTopicResponse,
} from '../../protocol/messages/fetch.js'
import { ErrorCode } from '../../protocol/errors.js'
import { Compression } from '../../protocol/compression.js'
import { StorageError } from '../../storage/log-store.js'
import type { ReadOptions } from '../../storage/partition-log.js'
import { CacheLease } from '../../storage/batch-cache.js'
import type { Logger } from '../logger.js'
import { lastOffsetOf } from '../../protocol/record-batch.js'
import { IsolationLevel } from '../../protocol/constants.js'
import { defineHandler, fillCurrentLeaders, leadershipError, missingPartitionError, partitionsNamedOnce, type RequestContext } from '../handler.js'
import { leaderEpochError, type Partition, type Topic } from '../partition.js'
import type { ReplicaFetchVerdict } from '../cluster/replica-manager.js'
import { sessionless, type SessionPartition } from '../cluster/fetch-sessions.js'
import { monotonicMs } from '../clock.js'

/** The topic as a Fetch names it: by id from v13 on (KIP-516), by name before. */
function namedBy(entry: { readonly topicId: string; readonly topic: string }, byId: boolean): { topic: string } | { topicId: string } {
  return byId ? { topicId: entry.topicId } : { topic: entry.topic }
}

function failedPartition(partitionIndex: number, errorCode: number): FetchResponsePartitionData {
  return {
    partitionIndex,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    abortedTransactions: null,
    preferredReadReplica: -1,
    records: [],
  }
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponse>(
  fetch,
  '4-17',
  async (request, context) => {
    const { services, apiVersion, signal, parked, onAnswerSent } = context
    const replicaId = apiVersion >= 15 ? request.replicaState.replicaId : request.replicaId
    if (replicaId >= 0) return replicaFetch(request, replicaId, context)
    // An incremental fetch (a session epoch other than 0, INITIAL_EPOCH, and -1, FINAL_EPOCH) names a session; a
    // consumer never got one from this node. Session id 0 with an epoch below -1 is one too (FetchManager.newContext
    // looks session 0 up, and finds none).
    if (request.sessionEpoch > 0 || request.sessionEpoch < -1) return { throttleTimeMs: 0, errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND, sessionId: 0, responses: [] }
    const byId = apiVersion >= 13
    const readCommitted = request.isolationLevel === IsolationLevel.READ_COMMITTED
    const deadline = monotonicMs() + Math.max(0, request.maxWaitMs)
    const maxBytes = Math.min(request.maxBytes, services.config.fetchMaxBytes)
    const fetchTopics = partitionsNamedOnce(request.topics, (t) => t.partitions, (t, p) => `${byId ? t.topicId : t.topic}\0${p.partition}`, (t, partitions) => ({ ...t, partitions }))

    // Topics are looked up again on every pass, not once: a topic deleted while the fetch is parked must answer with
    // its error at once (the deletion wakes the fetch), not go back to waiting on the old partition's log.
    const readAll = async (maxBytes: number, lease: CacheLease): Promise<{ responses: FetchResponseFetchableTopicResponse[]; bytes: number; error: boolean; readable: Watched[] }> => {
      let bytes = 0
      let error = false
      const readable: Watched[] = []
      const responses: FetchResponseFetchableTopicResponse[] = []
      for (const target of fetchTopics) {
        const topic = byId ? services.topics.getById(target.topicId) : services.topics.get(target.topic)
        const partitions: FetchResponsePartitionData[] = []
        for (const wanted of target.partitions) {
          const partition = topic?.partitions[wanted.partition]
          // The leader epoch first, then leadership, as Kafka's Partition.getLocalLog: a follower answers an older epoch
          // FENCED_LEADER_EPOCH and a newer one UNKNOWN_LEADER_EPOCH, and NOT_LEADER_OR_FOLLOWER only at its own.
          let errorCode = partition ? leaderEpochError(partition, wanted.currentLeaderEpoch) : missingPartitionError(services, namedBy(target, byId), wanted.partition)
          if (partition && errorCode === ErrorCode.NONE) errorCode = leadershipError(services, topic!, wanted.partition)
          if (partition && errorCode === ErrorCode.NONE) {
            if (wanted.fetchOffset < partition.logStartOffset || wanted.fetchOffset > partition.logEndOffset) {
              errorCode = ErrorCode.OFFSET_OUT_OF_RANGE
            }
          }
          // KafkaApis.maybeConvertFetchedData: a consumer too old for zstd is refused a topic that stores it, whatever
          // else its fetch of a partition held here would have answered (an offset out of range, a leader elsewhere).
          if (partition && apiVersion < 10 && topic!.config.compressionType === Compression.zstd) errorCode = ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
          if (!partition || errorCode !== ErrorCode.NONE) {
            error = true
            partitions.push(failedPartition(wanted.partition, errorCode))
            continue
          }
          const upTo = readCommitted ? partition.lastStableOffset : partition.highWatermark
          readable.push({ partition, highWatermark: partition.highWatermark })
          const budget = Math.min(wanted.partitionMaxBytes, maxBytes - bytes)
          const records = budget > 0 || bytes === 0 ? await readOrLog(partition, wanted.fetchOffset, { maxBytes: Math.max(budget, 0), upTo, minOneMessage: bytes === 0, lease }, services.log) : []
          if (records === null) {
            error = true
            partitions.push(failedPartition(wanted.partition, ErrorCode.KAFKA_STORAGE_ERROR))
            continue
          }
          for (const batch of records) bytes += batch.length
          // read_committed: the aborted transactions overlapping what is returned, so the client can drop their
          // records. The index holds them in marker order; they go out by first offset, the order kafkajs walks them
          // in (it compares each record with the next entry only), and which Java and librdkafka sort into anyway.
          const aborted = readCommitted && records.length > 0
            ? (await partition.abortedTransactions(wanted.fetchOffset, lastOffsetOf(records.at(-1)!) + 1n)).sort((a, b) =>
                a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
              )
            : []
          partitions.push({
            partitionIndex: wanted.partition,
            errorCode: ErrorCode.NONE,
            highWatermark: partition.highWatermark,
            lastStableOffset: partition.lastStableOffset,
            logStartOffset: partition.logStartOffset,
            abortedTransactions: readCommitted ? aborted.map((txn) => ({ producerId: txn.producerId, firstOffset: txn.firstOffset })) : null,
            preferredReadReplica: -1,
            records,
          })
        }
        responses.push({ topic: target.topic, topicId: target.topicId, partitions })
      }
      return { responses, bytes, error, readable }
    }

    const answers = services.answers
    for (;;) {
      const granted = answers.take(maxBytes)
      // The batch cache lends its bytes to this pass's answer (views, not copies) until the answer has left.
      const lease = new CacheLease()
      let read: Awaited<ReturnType<typeof readAll>>
      try {
        read = await readAll(granted, lease)
      } catch (error) {
        lease.release()
        answers.give(granted)
        throw error
      }
      const { responses, bytes, error, readable } = read
      answers.settle(granted, bytes)
      const remaining = deadline - monotonicMs()
      // A fetch naming no partition has nothing to wait for: answered at once (ReplicaManager.fetchMessages: fetchInfos.isEmpty).
      if (bytes >= request.minBytes || error || remaining <= 0 || signal.aborted || fetchTopics.length === 0) {
        onAnswerSent(() => {
          answers.give(bytes)
          lease.release()
        })
        // Only an answer with a partition's error can carry leader hints: the others skip the walk.
        if (apiVersion < 16 || !error) return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses }
        // v16 names topics by id; a partition refused as not led is one the node or its image knows (currentLeaderOf).
        const slots = responses.flatMap((t) => t.partitions.map((answer) => ({ topicId: t.topicId ?? null, index: answer.partitionIndex, answer })))
        const nodeEndpoints = fillCurrentLeaders(services, slots, [ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH])
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId: 0, responses, nodeEndpoints }
      }
      // A long poll holds nothing while it waits; its next pass reads afresh.
      answers.give(bytes)
      lease.release()
      parked()
      await waitForData(readable, remaining, signal, { wakeOn: 'highWatermark' })
    }
  },
  { mutesConnection: true },
)

/**
 * A partition's batches from `fetchOffset`, or null when the store cannot read them (a corrupt LevelDB block,
 * storage/README.md), logged at ERROR with the partition and the offset. The caller answers KAFKA_STORAGE_ERROR for
 * this partition alone and the others as usual, consumer and follower alike, as Kafka's
 * ReplicaManager.readFromLocalLog answers a partition whose log directory failed: never records skipped in silence,
 * never the whole fetch failed.
 */
async function readOrLog(partition: Partition, fetchOffset: bigint, options: ReadOptions, log: Logger): Promise<Buffer[] | null> {
  try {
    return await partition.log.read(fetchOffset, options)
  } catch (failure) {
    if (!(failure instanceof StorageError)) throw failure
    log.error(`fetch of ${partition.topic.name}-${partition.index} at offset ${fetchOffset}: ${failure.message}`)
    return null
  }
}

/** A partition a parked fetch waits on, with the high watermark (and log end) its last read saw. */
interface Watched {
  partition: Partition
  highWatermark: bigint
  logEndOffset?: bigint
}

/**
 * Resolves when data arrives at any of `watched`, after `timeoutMs`, or when the connection closes. A consumer's fetch
 * (`wakeOn: 'highWatermark'`) wakes when the partition has more to read (`onData`: its high watermark moved, or on a
 * single node its write completed); a follower's (`'append'`) also when a batch is appended, before it is written, so
 * the leader's and the followers' writes overlap. An append wakes a follower with `setImmediate`, after the rest of the
 * I/O phase that brought it: a producer's requests come in bursts (the high watermark acknowledges several at once,
 * and it sends the next ones together), and woken at the first append the fetch carried one batch where the burst
 * held several. Each fetch round costs the leader, the follower and the follower's LevelDB write a fixed amount of
 * CPU whatever it carries; waiting for the burst took a fifth of the rounds away (bench/README.md, "A replicated
 * cluster"). An append that landed while the reads were in progress
 * (they await LevelDB) woke no one; it shows as a moved high watermark (or, for a follower, log end), and then the
 * wait ends at once instead of lasting until maxWaitMs.
 */
function waitForData(watched: Watched[], timeoutMs: number, signal: AbortSignal, options: { wakeOn: 'highWatermark' | 'append' }): Promise<void> {
  return new Promise((resolve) => {
    const cancels: (() => void)[] = []
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      for (const cancel of cancels) cancel()
      resolve()
    }
    const timer = setTimeout(done, timeoutMs)
    signal.addEventListener('abort', done)
    for (const { partition } of watched) {
      cancels.push(partition.onData(done))
      if (options.wakeOn === 'append') cancels.push(partition.onAppend(() => void setImmediate(done)))
    }
    const moved = ({ partition, highWatermark, logEndOffset }: Watched): boolean =>
      partition.highWatermark !== highWatermark || (options.wakeOn === 'append' && partition.logEndOffset !== logEndOffset)
    if (watched.some(moved)) done()
  })
}

/**
 * A follower's Fetch (see the top of this module). On a cluster node, from a broker of the cluster, it goes through
 * the follower's fetch session (cluster/fetch-sessions.ts, KIP-227): an incremental fetch serves every partition of
 * the session and answers only those with news. A replica id that is no broker (ReplicaManager.isBroker) opens no
 * session: every partition answers NOT_LEADER_OR_FOLLOWER at once, with session id 0, as on a single node. Each pass
 * reads every partition the replica manager lets it read; the follower's position is recorded on the first pass only
 * (a held fetch does not move it again).
 */
async function replicaFetch(request: FetchRequest, replicaId: number, context: RequestContext): Promise<FetchResponse> {
  const { services, apiVersion, signal, parked, onAnswerSent } = context
  const replicas = services.replicas
  const byId = apiVersion >= 13
  const deadline = monotonicMs() + Math.max(0, request.maxWaitMs)
  const maxBytes = Math.min(request.maxBytes, services.config.fetchMaxBytes)
  const topicOf = (entry: { readonly topicId: string; readonly topic: string }): Topic | undefined => (byId ? services.topics.getById(entry.topicId) : services.topics.get(entry.topic))
  // Only a broker of the cluster gets a session: any other replica id (one a client made up) opens and keeps nothing.
  const broker = replicas?.isBroker(replicaId) === true
  const resolved = broker ? replicas!.fetchSessions.open(request, replicaId, apiVersion) : sessionless(request)
  if (!('partitions' in resolved)) return { throttleTimeMs: 0, errorCode: resolved.errorCode, sessionId: 0, responses: [] }
  const { sessionId, incremental, partitions: wanted } = resolved
  const verdicts = new Map<SessionPartition, ReplicaFetchVerdict>()
  const nowMs = Date.now()
  for (const entry of wanted) {
    const topic = broker ? topicOf(entry) : undefined
    if (!replicas || !broker || !topic || !topic.partitions[entry.partition]) {
      const errorCode = !broker ? ErrorCode.NOT_LEADER_OR_FOLLOWER : missingPartitionError(services, namedBy(entry, byId), entry.partition)
      verdicts.set(entry, { kind: 'error', errorCode })
      continue
    }
    const position = {
      replicaId,
      currentLeaderEpoch: entry.currentLeaderEpoch,
      fetchOffset: entry.fetchOffset,
      lastFetchedEpoch: entry.lastFetchedEpoch,
      logStartOffset: entry.logStartOffset,
    }
    verdicts.set(entry, replicas.replicaFetch(topic.topicId, entry.partition, position, nowMs))
  }
  const answers = services.answers
  for (;;) {
    const granted = answers.take(maxBytes)
    const lease = new CacheLease()
    let bytes = 0
    let settled = false
    let urgent = false
    const readable: Watched[] = []
    const carried: { entry: SessionPartition; data: FetchResponsePartitionData }[] = []
    try {
      for (const entry of wanted) {
        const verdict = verdicts.get(entry)!
        const partition = topicOf(entry)?.partitions[entry.partition]
        if (verdict.kind === 'error' || !partition) {
          urgent = true
          carried.push({ entry, data: failedPartition(entry.partition, verdict.kind === 'error' ? verdict.errorCode : missingPartitionError(services, namedBy(entry, byId), entry.partition)) })
          continue
        }
        const base = {
          partitionIndex: entry.partition,
          errorCode: ErrorCode.NONE,
          highWatermark: partition.highWatermark,
          lastStableOffset: partition.lastStableOffset,
          logStartOffset: partition.logStartOffset,
          abortedTransactions: null,
          preferredReadReplica: -1,
          currentLeader: { leaderId: services.endpoint.nodeId, leaderEpoch: partition.leaderEpoch },
        }
        if (verdict.kind === 'diverging') {
          urgent = true
          carried.push({ entry, data: { ...base, divergingEpoch: { epoch: verdict.divergingEpoch.epoch, endOffset: verdict.divergingEpoch.endOffset }, records: [] } })
          continue
        }
        readable.push({ partition, highWatermark: partition.highWatermark, logEndOffset: partition.logEndOffset })
        const budget = Math.min(entry.partitionMaxBytes, granted - bytes)
        // Up to the log end: batches still being written too (the replica manager's top comment says why it is safe).
        // A follower at the log end, the usual case for most partitions of a fetch, has nothing to read.
        const records =
          entry.fetchOffset < partition.logEndOffset && (budget > 0 || bytes === 0)
            ? await readOrLog(partition, entry.fetchOffset, { maxBytes: Math.max(budget, 0), upTo: partition.logEndOffset, minOneMessage: bytes === 0, lease }, services.log)
            : []
        if (records === null) {
          // The follower backs this partition off and asks again (ReplicaFetcher); its other partitions go on.
          urgent = true
          carried.push({ entry, data: failedPartition(entry.partition, ErrorCode.KAFKA_STORAGE_ERROR) })
          continue
        }
        for (const batch of records) bytes += batch.length
        // In a session, a partition without records goes out only with a high watermark or log start not yet sent.
        const news = records.length > 0 || entry.sentHighWatermark !== base.highWatermark || entry.sentLogStartOffset !== base.logStartOffset
        // Assigned, not spread into a new literal (`{ ...base, records }`), which V8 builds on a slow path: this runs
        // for every partition of every follower fetch.
        if (!incremental || news) carried.push({ entry, data: Object.assign(base, { records }) })
      }
      answers.settle(granted, bytes)
      settled = true
      const remaining = deadline - monotonicMs()
      // No partition to serve (none named, or a session holding none): answered at once, as a consumer's.
      if (bytes >= request.minBytes || urgent || remaining <= 0 || signal.aborted || wanted.length === 0) {
        for (const { entry, data } of carried) {
          // A follower takes the high watermark and log start only from an answer it appends from: one that sends it
          // to truncate (divergingEpoch) or refuses it (an error) has told it neither, so the next answer must, even
          // with no records. (A follower that returned with an epoch the leader lacks, at the leader's log end, was
          // otherwise never told a log start DeleteRecords moved while it was away, and served those records again
          // once it led.)
          if (data.errorCode !== ErrorCode.NONE || data.divergingEpoch !== undefined) continue
          entry.sentHighWatermark = data.highWatermark
          entry.sentLogStartOffset = data.logStartOffset
        }
        // What this answer carried goes to the end of the session's order: the next fetch reads the others first.
        if (incremental) replicas!.fetchSessions.answered(sessionId, carried.map(({ entry }) => entry))
        onAnswerSent(() => {
          answers.give(bytes)
          lease.release()
        })
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, sessionId, responses: byTopic(carried) }
      }
      answers.give(bytes)
      lease.release()
      parked()
      await waitForData(readable, remaining, signal, { wakeOn: 'append' })
    } catch (error) {
      lease.release()
      if (!settled) answers.give(granted)
      throw error
    }
  }
}

/** The answer's topics: the partitions carried, grouped by topic in the order they came. */
function byTopic(carried: readonly { entry: SessionPartition; data: FetchResponsePartitionData }[]): FetchResponseFetchableTopicResponse[] {
  const topics = new Map<string, FetchResponseFetchableTopicResponse>()
  for (const { entry, data } of carried) {
    const key = `${entry.topicId}/${entry.topic}`
    let topic = topics.get(key)
    if (!topic) topics.set(key, (topic = { topic: entry.topic, topicId: entry.topicId, partitions: [] }))
    topic.partitions.push(data)
  }
  return [...topics.values()]
}
