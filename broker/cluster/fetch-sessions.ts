/**
 * Incremental fetch sessions for followers (KIP-227; Kafka's FetchSession.scala, FetchSessionHandler.java). Without
 * them every replica Fetch names every partition its follower follows on this leader (`__consumer_offsets`'s 50
 * among them) and every answer describes each one, although most have nothing new. In a session the leader keeps
 * each partition's fetch state, the follower sends only what changed, and the answer carries only partitions with
 * news: records, an error or a divergence, or a high watermark or log start it has not sent yet.
 *
 *   follower                                        leader (this module)
 *   sessionId 0, sessionEpoch 0, every partition -> new session (id), full answer          epoch 1 expected next
 *   sessionId, epoch 1, what changed, forgotten    -> session updated, incremental answer  epoch 2 expected next
 *   unknown sessionId                              -> FETCH_SESSION_ID_NOT_FOUND (the follower starts afresh)
 *   wrong epoch                                    -> INVALID_FETCH_SESSION_EPOCH (the follower starts afresh)
 *   sessionEpoch -1                                -> full answer, no session (the session named is closed)
 *   sessionId, epoch, every partition forgotten    -> answer without a session (id 0): the session is closed
 *   opened at v12 (names), continued at v13+ (ids), or the reverse -> FETCH_SESSION_TOPIC_ID_ERROR
 *
 * Only followers get sessions: a consumer's Fetch is answered with session id 0, so clients keep sending full
 * fetches, and so is a Fetch whose replica id is not a broker of the cluster (the handler, handlers/fetch.ts, answers
 * it without asking this cache). A node keeps one session per follower node (a new one replaces the old), the
 * sessions of nodes no longer registered are closed (`retain`), and at most `maxSessions` are kept however many ids
 * ask (Kafka's max.incremental.fetch.session.cache.slots, 1000): opening one more closes the one used least recently.
 * A session keeps every partition its follower names, those this node does not know yet included (a topic the
 * follower's image holds before this node made its log: the follower names it once, and is served it once it
 * exists), up to `maxPartitions` (MAX_SESSION_PARTITIONS): a session that would hold more is not kept, and the
 * follower's fetches are answered in full without one. An incremental fetch reads the session's partitions in the
 * session's order, and each partition its answer carries moves to the end of it (`answered`, as Kafka's
 * IncrementalFetchContext does), so a maxBytes that one partition fills serves the partitions in turn.
 */
import { ErrorCode } from '../../protocol/errors.js'
import type { FetchRequest, FetchRequestFetchPartition, FetchRequestFetchTopic } from '../../protocol/messages/fetch.js'

/** A partition of a session, with the follower's fetch state and what the last answer that carried it said. */
export interface SessionPartition {
  readonly topicId: string
  readonly topic: string
  readonly partition: number
  currentLeaderEpoch: number
  fetchOffset: bigint
  lastFetchedEpoch: number
  /** The follower's own log start (Fetch v5+), -1 when it did not say. */
  logStartOffset: bigint
  partitionMaxBytes: number
  /** The high watermark and log start offset last sent for it; undefined until an answer carried it. */
  sentHighWatermark?: bigint
  sentLogStartOffset?: bigint
}

/** How to serve one replica Fetch: the session's id for the answer (0: none), and every partition to serve. */
export type SessionFetch =
  | { readonly errorCode: number }
  | { readonly errorCode: typeof ErrorCode.NONE; readonly sessionId: number; readonly incremental: boolean; readonly partitions: readonly SessionPartition[] }

/** Kafka's max.incremental.fetch.session.cache.slots default: sessions kept at most. */
export const MAX_FETCH_SESSIONS = 1000
/**
 * Partitions one session keeps at most: ten times the partitions a CreateTopics may make at once, far above what a
 * node leads, and a bound on what a client claiming a broker's id can make a node hold.
 */
export const MAX_SESSION_PARTITIONS = 100_000

interface Session {
  readonly id: number
  readonly replicaId: number
  /** Opened by a Fetch v13+ (topics by id): the session is continued only by fetches of the same kind. */
  readonly usesTopicIds: boolean
  /** The epoch the next request must carry. */
  epoch: number
  readonly partitions: Map<string, SessionPartition>
}

/** FINAL_EPOCH: a full fetch that closes the session it names and opens none. */
const FINAL_EPOCH = -1
/** INITIAL_EPOCH: a full fetch that asks for a new session. */
const INITIAL_EPOCH = 0

export class FetchSessions {
  /** The sessions by id, the one used least recently first. */
  private readonly sessions = new Map<number, Session>()
  private readonly byReplica = new Map<number, number>()
  private lastId = Math.floor(Math.random() * 0x3fffffff)

  /** `maxSessions`: sessions kept at most (at least 1); `maxPartitions`: partitions one session keeps at most. */
  constructor(
    private readonly maxSessions = MAX_FETCH_SESSIONS,
    private readonly maxPartitions = MAX_SESSION_PARTITIONS,
  ) {}

  /**
   * Resolves a follower's Fetch against the sessions: opens, updates or closes one as the request's sessionId and
   * sessionEpoch say, and returns the partitions to serve (every partition of the session for an incremental fetch,
   * those of the request otherwise). The caller has checked that `replicaId` is a broker of the cluster. A session
   * that would hold more than `maxPartitions` is not kept: a full fetch is answered without one (session id 0), an
   * incremental one closes it (FETCH_SESSION_ID_NOT_FOUND, so the follower starts afresh). Errors (as a top-level
   * errorCode for the answer): FETCH_SESSION_ID_NOT_FOUND for a session this node does not have (or another
   * replica's, or a session id 0 with an epoch below -1), INVALID_FETCH_SESSION_EPOCH for an epoch other than the one
   * expected, FETCH_SESSION_TOPIC_ID_ERROR for a session opened at v13+ (topics by id) continued below v13 or the
   * reverse. An incremental fetch that leaves the session without partitions closes it: it is answered without a
   * session (session id 0), its own partitions in full. (All as Kafka's FetchManager.newContext.)
   */
  open(request: FetchRequest, replicaId: number, apiVersion: number): SessionFetch {
    const usesTopicIds = apiVersion >= 13
    if (request.sessionEpoch === FINAL_EPOCH || request.sessionEpoch === INITIAL_EPOCH) {
      this.close(request.sessionId)
      const partitions = new Map<string, SessionPartition>()
      this.upsert(partitions, request)
      const served = [...partitions.values()]
      if (request.sessionEpoch === FINAL_EPOCH) return { errorCode: ErrorCode.NONE, sessionId: 0, incremental: false, partitions: served }
      const previous = this.byReplica.get(replicaId)
      if (previous !== undefined) this.close(previous)
      if (partitions.size > this.maxPartitions) return { errorCode: ErrorCode.NONE, sessionId: 0, incremental: false, partitions: served }
      while (this.sessions.size >= Math.max(1, this.maxSessions)) this.close(this.sessions.keys().next().value!)
      const session: Session = { id: this.nextId(), replicaId, usesTopicIds, epoch: 1, partitions }
      this.sessions.set(session.id, session)
      this.byReplica.set(replicaId, session.id)
      return { errorCode: ErrorCode.NONE, sessionId: session.id, incremental: false, partitions: served }
    }
    const session = this.sessions.get(request.sessionId)
    if (!session || session.replicaId !== replicaId) return { errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND }
    if (request.sessionEpoch !== session.epoch) return { errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH }
    // Names and ids do not mix in one session: its partitions are keyed by what the fetch that opened it named.
    if (session.usesTopicIds !== usesTopicIds) return { errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR }
    session.epoch = session.epoch === 0x7fffffff ? 1 : session.epoch + 1
    // Used now: last in the eviction order.
    this.sessions.delete(session.id)
    this.sessions.set(session.id, session)
    this.upsert(session.partitions, request)
    for (const forgotten of request.forgottenTopicsData) {
      for (const index of forgotten.partitions) session.partitions.delete(keyOf(forgotten.topicId, forgotten.topic, index))
    }
    if (session.partitions.size > this.maxPartitions) {
      this.close(session.id)
      return { errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND }
    }
    // Everything forgotten: the session is closed, the fetch answered as one without a session (Kafka's
    // SessionlessFetchContext), so the follower's next incremental fetch is FETCH_SESSION_ID_NOT_FOUND.
    if (session.partitions.size === 0) {
      this.close(session.id)
      return sessionless(request)
    }
    return { errorCode: ErrorCode.NONE, sessionId: session.id, incremental: true, partitions: [...session.partitions.values()] }
  }

  /**
   * Moves the partitions an incremental answer of session `sessionId` carried to the end of the session's order, so
   * that the next fetch reads the others first: under a small maxBytes the partitions read first take the whole
   * answer, and without this the later ones would never be served (Kafka's IncrementalFetchContext.PartitionIterator
   * moves each partition it answers to the end of the session's partitionMap). A session closed or replaced since the
   * fetch was resolved is left alone.
   */
  answered(sessionId: number, partitions: Iterable<SessionPartition>): void {
    const session = this.sessions.get(sessionId)
    if (!session) return
    for (const partition of partitions) {
      const key = keyOf(partition.topicId, partition.topic, partition.partition)
      if (session.partitions.get(key) !== partition) continue
      session.partitions.delete(key)
      session.partitions.set(key, partition)
    }
  }

  /** Closes the sessions of replicas `isBroker` no longer counts as brokers of the cluster (unregistered nodes). */
  retain(isBroker: (replicaId: number) => boolean): void {
    for (const [replicaId, sessionId] of this.byReplica) if (!isBroker(replicaId)) this.close(sessionId)
  }

  /** Sessions open (one per follower node at most, and at most `maxSessions`). */
  get size(): number {
    return this.sessions.size
  }

  /** Partitions kept in the sessions, all together. */
  get partitionCount(): number {
    let count = 0
    for (const session of this.sessions.values()) count += session.partitions.size
    return count
  }

  private close(sessionId: number): void {
    const session = this.sessions.get(sessionId)
    if (!session) return
    this.sessions.delete(sessionId)
    if (this.byReplica.get(session.replicaId) === sessionId) this.byReplica.delete(session.replicaId)
  }

  /** Takes the request's partitions into `partitions`: new ones added, those already there given the request's fetch state. */
  private upsert(partitions: Map<string, SessionPartition>, request: FetchRequest): void {
    for (const topic of request.topics) {
      for (const wanted of topic.partitions) {
        const key = keyOf(topic.topicId, topic.topic, wanted.partition)
        const kept = partitions.get(key)
        if (kept) {
          kept.currentLeaderEpoch = wanted.currentLeaderEpoch
          kept.fetchOffset = wanted.fetchOffset
          kept.lastFetchedEpoch = wanted.lastFetchedEpoch
          kept.logStartOffset = wanted.logStartOffset
          kept.partitionMaxBytes = wanted.partitionMaxBytes
          continue
        }
        partitions.set(key, sessionPartition(topic, wanted))
      }
    }
  }

  private nextId(): number {
    do this.lastId = this.lastId >= 0x7fffffff ? 1 : this.lastId + 1
    while (this.sessions.has(this.lastId))
    return this.lastId
  }
}

/** A replica Fetch served without a session (a node without replicas answers its partitions' errors): its partitions. */
export function sessionless(request: FetchRequest): SessionFetch {
  const partitions = request.topics.flatMap((topic) => topic.partitions.map((wanted) => sessionPartition(topic, wanted)))
  return { errorCode: ErrorCode.NONE, sessionId: 0, incremental: false, partitions }
}

function sessionPartition(topic: FetchRequestFetchTopic, wanted: FetchRequestFetchPartition): SessionPartition {
  return {
    topicId: topic.topicId,
    topic: topic.topic,
    partition: wanted.partition,
    currentLeaderEpoch: wanted.currentLeaderEpoch,
    fetchOffset: wanted.fetchOffset,
    lastFetchedEpoch: wanted.lastFetchedEpoch,
    logStartOffset: wanted.logStartOffset,
    partitionMaxBytes: wanted.partitionMaxBytes,
  }
}

function keyOf(topicId: string, topic: string, partition: number): string {
  return `${topicId}/${topic}/${partition}`
}
