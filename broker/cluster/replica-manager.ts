/**
 * A cluster node's partition replicas (Kafka's ReplicaManager, Partition and ReplicaFetcherManager): for each
 * partition the metadata image names this node a replica of, the node's local log (broker/partition.ts over
 * storage's PartitionLog) is the leader's or a follower's, as the image says, with the rules of the replication core
 * (replication/partition.ts, which runs them under simulation on an in-memory log; the pure parts, the epoch cache's
 * answer and the truncation point, are shared from replication/log.ts):
 *
 *                      image: leader, leaderEpoch, isr, replicas, partitionEpoch (LocalLogs hands each on)
 *        ┌─────────────────────────────┴────────────────────────────────┐
 *        v leader = this node                                            v leader = another node (or -1)
 *   Leader: epoch start = LEO; followers' LEOs unknown until        Follower: in the fetcher of its leader node
 *   they fetch in this epoch; ISR members caught up as of now       (one Fetch per leader node for all its partitions,
 *        │                                                          replica id in ReplicaState, KIP-903)
 *        │  replica Fetch(fetchOffset, lastFetchedEpoch)              │
 *        │ <────────────────────────────────────────────────────────  │
 *        │  divergingEpoch (KIP-320) when the follower's last epoch   │ truncates to where the logs part
 *        │  is not the leader's up to fetchOffset; else batches + HW  │ (truncationTarget), appends the batches as
 *        │ ─────────────────────────────────────────────────────────> │ they are, HW = min(its LEO, leader's HW)
 *        v
 *   follower LEO := fetchOffset; HW := least LEO over the maximal ISR and the caught-up eligible replicas (never back,
 *   never while the ISR is below min.insync.replicas); ISR expand (LEO >= HW and >= epoch start) / shrink (not caught
 *   up for replica.lag.time.max.ms) sent to the active controller one AlterPartition at a time, the changes asked
 *   meanwhile together in the next (alter-partition-manager.ts)
 *
 * Invariants (as the core's, see replication/README.md)
 * - A replica acts only on the newest partition state: an older leaderEpoch, or the same with a partitionEpoch not
 *   newer, is ignored. A replica Fetch naming another leader epoch is FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH.
 * - The leader's HW never passes the durable log end of any member of its maximal ISR as known from a valid fetch in
 *   its epoch, so everything below it is on every ISR member and any of them can be elected without losing it.
 * - The leader's writes and its followers' overlap. A follower's fetch is served up to the leader's log end, batches
 *   whose LevelDB write has not completed included (from the batch cache), and a fetch parked at the log end is
 *   answered when a batch is appended (after the I/O phase that brought it, handlers/fetch.ts), not once it is
 *   written (Kafka's leader serves followers from the page cache, before any flush). What counts toward the HW stays durable on both sides: the leader's own log end counts
 *   only as far as its write completed (HW = least of its durable end and the followers' log ends), and a follower's
 *   fetch offset is what it has written (it fetches again only once its appends are written). So an acks=all batch
 *   waits for the slower of the two writes plus a fetch round trip, not for one write after the other.
 *
 *     leader:    append ──> write ───────────────────────> durable ─┐
 *                   └─> parked follower fetch answered             ├─> HW passes the batch -> acks=all answered
 *     follower:         append ──> write ──> durable ──> next fetch ┘  (carries its log end)
 *
 * - What a follower took past the leader's durable end is an unacknowledged tail, never below any HW. If the leader's
 *   write fails, the node refuses every later write (storage is fail-stop) and stops (broker.ts), its durable end and
 *   so its HW stay where they are, and the producer is answered KAFKA_STORAGE_ERROR or not at all: nothing of the
 *   tail is acknowledged through it (as after any failed produce the batch may still turn up, here on a follower
 *   elected later, where an idempotent producer's retry is answered as a duplicate). If the leader dies (kill -9) before the write lands, it restarts
 *   without the tail that a follower may hold. It never leads that epoch again (the controller moves leadership off
 *   an old incarnation when the new one registers, and any later leadership has a new epoch), so either a follower
 *   holding the tail is elected and keeps it (the old leader, following, finds its epoch ending at or past its own
 *   log end at the new leader and fetches the rest: a record its producer was not told of, which an idempotent
 *   producer's retry finds as a duplicate), or the old leader leads again in a new epoch and the follower's fetch
 *   gets divergingEpoch at the old leader's end of the tail's epoch, where it truncates. Acknowledged records are
 *   below the HW, so on the leader's disk and every ISR member's: lost in neither case.
 * - acks=all is answered once the HW passes the batch; NOT_ENOUGH_REPLICAS_AFTER_APPEND as soon as too few ISR
 *   members are in sync while waiting (below), NOT_LEADER_OR_FOLLOWER when leadership moves, REQUEST_TIMED_OUT after
 *   the produce's timeout.
 * - A leader's epoch is in its epoch cache, starting at its log end, from the moment it leads (Kafka's makeLeader),
 *   before it appends in it; a follower's truncation to its leader's epoch boundary drops such an entry too, even
 *   when no batch goes (the new leader does not hold an epoch in which nothing was appended).
 * - A follower appends only its leader's batches at its own log end, truncates only after the appends before it are
 *   written, and never serves consumers (the data paths refuse a partition this node does not lead).
 * - A follower whose log end is below its leader's log start (OFFSET_OUT_OF_RANGE, checked before divergence) empties
 *   its log and starts it at the leader's log start, which it asks with ListOffsets EARLIEST (Kafka's
 *   truncateFullyAndStartAt): nothing below that start is readable anywhere any more.
 * - A node serves no client as leader before the controller unfenced it (`markCaughtUp`) and its replicas have applied
 *   the image its quorum member had then: until it has applied the metadata log up to its registration, its image may
 *   name it leader of an epoch that has ended.
 * - The HW is stored with the log's writes and every 5 s when it moved since (Kafka's replication-offset-checkpoint,
 *   LogStore.checkpointHighWatermarks): a restarted node starts from that stored HW, which is at most the true one.
 *
 * min.insync.replicas without a controller. The ISR the HW follows is the committed one (the image's, or the
 * controller's answer to this leader's AlterPartition) plus a member a pending expansion adds: Kafka's maximal ISR.
 * A shrink takes effect only once the controller commits it, since until then the controller may elect any committed
 * member, and the HW must not pass what that member holds. But every node is also a controller voter, so losing two
 * of three nodes loses the quorum with them: the shrink can never commit, the committed ISR keeps the dead members,
 * and a leader that admitted acks=all by the committed ISR's size would append and wait for a HW that cannot move
 * until REQUEST_TIMED_OUT, which tells the producer nothing. So the min.insync.replicas check counts the committed
 * ISR without the members the leader itself finds out of sync now (`outOfSyncReplicas`: not caught up for
 * replica.lag.time.max.ms, the very rule that makes it propose the shrink), whether or not the controller has taken
 * the shrink yet:
 *
 *   inSync = |committed ISR| - |out of sync now|
 *   new acks=all produce:   inSync < min.insync.replicas  -> NOT_ENOUGH_REPLICAS, nothing appended
 *   waiting acks=all:       HW passes the batch -> NONE; else inSync < min.insync.replicas (checked on every HW move,
 *                           ISR change and ISR check) -> NOT_ENOUGH_REPLICAS_AFTER_APPEND
 *   HW:                     unchanged, least LEO over the maximal ISR, and not at all while the committed ISR is
 *                           below min.insync.replicas
 *
 * This only refuses more: a refusal acknowledges nothing, and the HW, which decides what is acknowledged, still waits
 * for every member the controller may elect, so no acknowledged record can be missing from a new leader. Kafka
 * (Partition.appendRecordsToLeader, checkEnoughReplicasReachOffset, isUnderMinIsr) counts the committed ISR alone: its
 * PendingShrinkIsr keeps the committed ISR as both isr and maximalIsr until the controller answers, which with
 * separate controller nodes it soon does; in combined mode without a quorum its producers wait out their timeout.
 * A follower that has caught up again counts as in sync at once, even while a shrink naming it is in flight. A
 * follower of an idle partition counts as caught up however long it has been silent (its log end is the leader's, as
 * Kafka rules), so the first acks=all after such a silence is appended, then answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
 */
import { ErrorCode, errorInfo } from '../../protocol/errors.js'
import { fetch, type FetchRequest, type FetchResponse, type FetchResponsePartitionData } from '../../protocol/messages/fetch.js'
import { listOffsets, type ListOffsetsResponse } from '../../protocol/messages/list-offsets.js'
import { OffsetSpec } from '../../protocol/constants.js'
import { batchesIn, lastOffsetOf } from '../../protocol/record-batch.js'
import type { Logger } from '../logger.js'
import { groupBy } from '../group-by.js'
import type { Partition, Topic } from '../partition.js'
import type { TopicManager } from '../topics.js'
import { PeerChannel, type QuorumRunner } from './quorum-runner.js'
import { AlterPartitionManager } from './alter-partition-manager.js'
import { FetchSessions } from './fetch-sessions.js'
import type { MetadataImage, PartitionRegistration } from './metadata/image.js'
import { DEFAULT_REPLICATION_CONFIG, effectiveMinIsr, type ReplicationConfig } from './replication/config.js'
import { endOffsetForEpoch, truncationTarget, UNDEFINED_EPOCH, type EpochEndOffset } from './replication/log.js'
import type { PartitionState } from './replication/messages.js'

/**
 * A follower as its leader first knows it (Kafka's resetReplicaState): no position known; an ISR member counts as
 * caught up now, so it is not shrunk before it has had a chance to fetch.
 */
function newFollowerState(replica: Replica, id: number, nowMs: number): FollowerState {
  return {
    logEndOffset: -1n,
    lastFetchLeaderLogEndOffset: replica.partition.log.logEndOffset,
    lastFetchTimeMs: nowMs,
    lastCaughtUpTimeMs: replica.state.isr.includes(id) ? nowMs : NEVER,
    logStartOffset: -1n,
  }
}

/**
 * AlterPartition answers after which the ISR change may have been committed or not: it stays pending, and is asked
 * again after ALTER_PARTITION_RETRY_MS, doubling up to ALTER_PARTITION_RETRY_MAX_MS.
 */
const OUTCOME_UNKNOWN: ReadonlySet<number> = new Set([ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_CONTROLLER, ErrorCode.UNKNOWN_SERVER_ERROR])
const ALTER_PARTITION_RETRY_MS = 500
/** The longest wait between two tries of one ISR change (the wait doubles from ALTER_PARTITION_RETRY_MS). */
const ALTER_PARTITION_RETRY_MAX_MS = 5000

/** "Never caught up" (Kafka's lastCaughtUpTimeMs of 0). */
const NEVER = Number.NEGATIVE_INFINITY
/** ListOffsets version a follower asks its leader's log start with (currentLeaderEpoch since v4). */
const LIST_OFFSETS_VERSION = 7
/** Fetch version followers send: topic ids (v13+) and the replica id in ReplicaState (v15+, KIP-903). */
const REPLICA_FETCH_VERSION = 15
/** The most bytes one replica Fetch asks for (Kafka's replica.fetch.response.max.bytes default, 10 MiB). */
const REPLICA_FETCH_MAX_BYTES = 10 * 1024 * 1024
/** Per partition (Kafka's replica.fetch.max.bytes default, 1 MiB; a larger first batch still comes whole). */
const REPLICA_FETCH_PARTITION_MAX_BYTES = 1024 * 1024

export interface ReplicaManagerOptions {
  readonly nodeId: number
  readonly topics: TopicManager
  readonly quorum: QuorumRunner
  /** This node's broker epoch once registered (AlterPartition carries it), else null. */
  readonly brokerEpoch: () => bigint | null
  readonly log: Logger
  readonly config?: Partial<ReplicationConfig>
}

/** The leader's view of one follower (Kafka's ReplicaState). */
interface FollowerState {
  /** The fetch offset of its last valid fetch in this epoch; -1 until it fetches from this leader in this epoch. */
  logEndOffset: bigint
  lastFetchLeaderLogEndOffset: bigint
  lastFetchTimeMs: number
  lastCaughtUpTimeMs: number
  /** Its own log start as its last fetch in this epoch said (Fetch v5+); -1 until then (Kafka's UnknownOffset). */
  logStartOffset: bigint
}

/**
 * A request parked at the leader until an offset reaches `requiredOffset`: an acks=all produce the HW acknowledges
 * (answered with an error code, Kafka's DelayedProduce), or a DeleteRecords every live replica's log start must reach
 * (answered with a LowWatermarkAnswer, Kafka's DelayedDeleteRecords).
 */
interface Waiting<A> {
  readonly requiredOffset: bigint
  readonly resolve: (answer: A) => void
}

/** What a DeleteRecords waiting at the leader is answered: an error code, and the partition's low watermark (-1 with an error). */
export interface LowWatermarkAnswer {
  readonly errorCode: number
  readonly lowWatermark: bigint
}

interface LeaderSide {
  readonly epochStartOffset: bigint
  readonly followers: Map<number, FollowerState>
  pendingIsr: readonly number[] | null
  /** The partition epoch the pending ISR change was asked at: an image past it ends the change, taken or not. */
  pendingAtPartitionEpoch: number
  waiting: Waiting<number>[]
  deletions: Waiting<LowWatermarkAnswer>[]
}

/** A replica Fetch's position for one partition, as the follower sends it. */
export interface ReplicaFetchPosition {
  readonly replicaId: number
  readonly currentLeaderEpoch: number
  readonly fetchOffset: bigint
  readonly lastFetchedEpoch: number
  /** The follower's own log start (Fetch v5+), -1 when it does not say. */
  readonly logStartOffset: bigint
}

/** What the leader makes of one partition of a replica Fetch: an error, a divergence, or batches to read. */
export type ReplicaFetchVerdict =
  | { readonly kind: 'error'; readonly errorCode: number }
  | { readonly kind: 'diverging'; readonly divergingEpoch: EpochEndOffset }
  | { readonly kind: 'read' }

/** One partition replica on this node. */
export class Replica {
  state: PartitionState
  leader: LeaderSide | null = null

  constructor(
    readonly topic: Topic,
    readonly partition: Partition,
    state: PartitionState,
  ) {
    this.state = state
  }

  get key(): string {
    return replicaKey(this.topic.topicId, this.partition.index)
  }

  get name(): string {
    return `${this.topic.name}-${this.partition.index}`
  }
}

export class ReplicaManager {
  readonly config: ReplicationConfig
  /** The followers' fetch sessions on this node as their leader (KIP-227). */
  readonly fetchSessions = new FetchSessions()
  private readonly replicas = new Map<string, Replica>()
  /** Partitions whose local log is being emptied, this node having been taken off them (`drop`), by replica key. */
  private readonly emptying = new Map<string, Promise<void>>()
  private readonly fetchers = new Map<number, ReplicaFetcher>()
  private ineligible: ReadonlySet<number> = new Set()
  private image: MetadataImage | null = null
  private readonly isrTimer: NodeJS.Timeout
  /** Sends this node's leaders' ISR changes to the active controller, those asked together in one AlterPartition. */
  private readonly alterPartitions: AlterPartitionManager
  private stopped = false
  /**
   * The metadata offset the node's quorum member had applied when the controller unfenced it (null before): the
   * replicas serve as leaders only once they too have applied an image at least that new.
   */
  private caughtUpAt: bigint | null = null

  constructor(private readonly options: ReplicaManagerOptions) {
    this.config = { ...DEFAULT_REPLICATION_CONFIG, ...options.config }
    // Kafka's isr-expiration task: every half of replica.lag.time.max.ms.
    this.isrTimer = setInterval(() => this.shrinkIsrs(Date.now()), Math.max(1, this.config.replicaLagTimeMaxMs / 2))
    this.isrTimer.unref()
    this.alterPartitions = new AlterPartitionManager({
      nodeId: options.nodeId,
      quorum: options.quorum,
      brokerEpoch: options.brokerEpoch,
      onRequestFailed: (message) => this.options.log.debug(`AlterPartition: ${message}`),
    })
  }

  get nodeId(): number {
    return this.options.nodeId
  }

  /** Whether this node's storage failed (it then refuses every write until the node restarts). */
  get storageFailed(): boolean {
    return this.options.topics.storageFailed
  }

  /**
   * Whether `replicaId` is a broker of the cluster as this node's image knows it: registered, fenced or not (a fenced
   * broker still fetches to catch up). Only a broker's replica Fetch gets a fetch session; any other replica id is
   * answered NOT_LEADER_OR_FOLLOWER (handlers/fetch.ts), as a replica could be assigned to no other node.
   */
  isBroker(replicaId: number): boolean {
    return this.image?.brokers.has(replicaId) ?? false
  }

  /** The replica of a partition on this node, or undefined. */
  get(topicId: string, index: number): Replica | undefined {
    return this.replicas.get(replicaKey(topicId, index))
  }

  /**
   * Whether this node leads the partition as its replica knows it (the image applied to the local log), and serves
   * clients: only once the controller has unfenced this incarnation, which it does once the node's quorum member
   * applied the metadata log up to its registration, and once the replicas have applied that far as well. A restarted
   * node's image may be stale and name it leader of an epoch long gone; the replicas get each image after the local
   * logs have followed it (LocalLogs), which may be after the unfencing: until then the stale leadership, its old
   * epoch and its stored high watermark, must not answer a client (a ListOffsets would put the partition's end below
   * records acknowledged since, a produce would be taken by a replica that no longer leads).
   */
  leads(topicId: string, index: number): boolean {
    const caughtUpAt = this.caughtUpAt
    if (caughtUpAt === null || this.image === null || this.image.provenance.offset < caughtUpAt) return false
    return this.get(topicId, index)?.leader != null
  }

  /**
   * The controller unfenced this node: its replicas serve as leaders from the image its quorum member has applied now
   * on (see `leads`).
   */
  markCaughtUp(): void {
    this.caughtUpAt ??= this.options.quorum.appliedOffset
  }

  /**
   * Applies the partition states of `image` to the local logs (which LocalLogs has opened): makes each replica this
   * node holds leader or follower (Kafka's makeLeaders / makeFollowers), and drops the replicas of partitions it no
   * longer holds.
   */
  apply(image: MetadataImage): void {
    if (this.stopped) return
    this.image = image
    const nowMs = Date.now()
    this.fetchSessions.retain((replicaId) => this.isBroker(replicaId))
    this.ineligible = new Set([...image.brokers.values()].filter((broker) => broker.fenced).map((broker) => broker.brokerId))
    const seen = new Set<string>()
    for (const topicImage of image.topicsById.values()) {
      const topic = this.options.topics.getById(topicImage.topicId)
      if (!topic) continue
      for (const [index, registration] of topicImage.partitions) {
        const partition = topic.partitions[index]
        if (!partition || !registration.replicas.includes(this.nodeId)) continue
        const key = replicaKey(topic.topicId, index)
        // Its log is being emptied (this node was taken off it): this image is applied again once it is (`drop`).
        if (this.emptying.has(key)) continue
        seen.add(key)
        const state = partitionState(registration)
        let replica = this.replicas.get(key)
        if (replica && replica.partition !== partition) this.drop(replica)
        if (!replica || replica.partition !== partition) {
          replica = new Replica(topic, partition, state)
          this.replicas.set(key, replica)
          partition.highWatermarkOwner = { appended: () => this.afterLocalAppend(replica!) }
          // The stored HW, never above what is durable: a restart exposes nothing it did not know was committed.
          partition.setHighWatermark(partition.recoveredHighWatermark)
          this.applyState(replica, state, { first: true, nowMs })
        } else {
          this.applyState(replica, state, { first: false, nowMs })
        }
      }
    }
    for (const [key, replica] of this.replicas) if (!seen.has(key)) this.drop(replica)
    for (const replica of this.replicas.values()) if (replica.leader) this.afterIsrChange(replica, nowMs)
  }

  /**
   * Forgets a replica this node no longer holds: its topic deleted, or made again under another id, or the node
   * reassigned off the partition (KIP-455). In the last case the local log is emptied once its appends are written
   * (Kafka deletes it); a node that has not caught up with the metadata log keeps it, since its image may be older
   * than the partition's replica set (the log is then only what a replica added back would truncate or fetch past).
   * An image that makes this node a replica again while the log is being emptied is applied to it once it is empty:
   * a follower made at once would fetch from the old log end, and an answer landing after the truncation would leave
   * a hole below it.
   */
  private drop(replica: Replica): void {
    this.stopLeading(replica, ErrorCode.NOT_LEADER_OR_FOLLOWER)
    this.unfollow(replica)
    replica.partition.highWatermarkOwner = null
    this.replicas.delete(replica.key)
    const reassignedAway = this.options.topics.getById(replica.topic.topicId) === replica.topic && this.image?.topicsById.get(replica.topic.topicId)?.partitions.has(replica.partition.index)
    if (!reassignedAway || this.caughtUpAt === null) return
    const emptied = this.emptyLog(replica)
    this.emptying.set(replica.key, emptied)
    void emptied.finally(() => {
      this.emptying.delete(replica.key)
      if (!this.stopped && this.image) this.apply(this.image)
    })
  }

  private async emptyLog(replica: Replica): Promise<void> {
    const partition = replica.partition
    try {
      await partition.appendsSettled()
      if (this.stopped || partition.logEndOffset === 0n) return
      await partition.truncateFullyAndStartAt(0n)
      this.options.log.info(`${replica.name}: this node is no longer a replica; its log is emptied`)
    } catch (error) {
      this.options.log.error(`${replica.name}: could not empty the log of a partition this node no longer replicates: ${(error as Error).message}`)
    }
  }

  /**
   * Stops every fetcher and answers every waiting produce NOT_LEADER_OR_FOLLOWER; resolves once no fetcher is
   * appending any more, so that the node may close its database (an append cut off there failed with "Database is
   * not open", logged as an ERROR of a node that was only stopping).
   */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.isrTimer)
    const fetchers = [...this.fetchers.values()]
    this.fetchers.clear()
    for (const replica of this.replicas.values()) this.stopLeading(replica, ErrorCode.NOT_LEADER_OR_FOLLOWER)
    await Promise.all(fetchers.map((fetcher) => fetcher.stop()))
  }

  // ---- leader ------------------------------------------------------------------------------------------------------

  /**
   * A follower's Fetch of a partition this node leads (Kafka's Partition.fetchRecords for a follower): the epoch
   * checks, the divergence check (KIP-320), then the follower's new position, which may grow the ISR and move the
   * HW. On 'read' the caller serves batches from `fetchOffset`.
   */
  replicaFetch(topicId: string, index: number, position: ReplicaFetchPosition, nowMs: number): ReplicaFetchVerdict {
    const replica = this.get(topicId, index)
    if (!replica) return { kind: 'error', errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER }
    const epochError = checkLeaderEpoch(replica, position.currentLeaderEpoch)
    if (epochError !== ErrorCode.NONE) return { kind: 'error', errorCode: epochError }
    const leader = replica.leader
    const follower = leader?.followers.get(position.replicaId)
    if (!leader || !follower) return { kind: 'error', errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER }
    const log = replica.partition.log
    // Below the log start comes first, whatever the epochs say (Kafka's readRecords): the follower then starts afresh
    // at this log's start (ReplicaFetcher.handleOffsetOutOfRange).
    if (position.fetchOffset < log.logStartOffset) return { kind: 'error', errorCode: ErrorCode.OFFSET_OUT_OF_RANGE }
    if (position.lastFetchedEpoch !== UNDEFINED_EPOCH) {
      const epochEnd = endOffsetForEpoch(log.epochCache, log.logEndOffset, position.lastFetchedEpoch)
      if (epochEnd.epoch < position.lastFetchedEpoch || epochEnd.endOffset < position.fetchOffset) {
        // An epoch older than every one this log holds has no end here to name: the follower cuts to this log's start.
        const divergingEpoch = epochEnd.endOffset < 0n ? { epoch: UNDEFINED_EPOCH, endOffset: log.logStartOffset } : epochEnd
        return { kind: 'diverging', divergingEpoch }
      }
    }
    if (position.fetchOffset < log.logStartOffset || position.fetchOffset > log.logEndOffset) {
      return { kind: 'error', errorCode: ErrorCode.OFFSET_OUT_OF_RANGE }
    }
    // A fetch behind the position recorded in this epoch is stale: it must not drag the position back.
    if (position.fetchOffset >= follower.logEndOffset) {
      follower.logStartOffset = position.logStartOffset
      this.updateFollowerFetchState(replica, position.replicaId, follower, position.fetchOffset, nowMs)
      this.completeDeletions(replica)
    }
    return { kind: 'read' }
  }

  /**
   * Resolves with the error code of an acks=all produce whose batch ends before `requiredOffset` (its last offset +
   * 1): NONE once the HW reaches it, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR falls below min.insync.replicas,
   * NOT_LEADER_OR_FOLLOWER when this node stops leading, REQUEST_TIMED_OUT after `timeoutMs` (Kafka's DelayedProduce).
   */
  awaitHighWatermark(topicId: string, index: number, requiredOffset: bigint, timeoutMs: number): Promise<number> {
    const replica = this.get(topicId, index)
    const leader = replica?.leader
    if (!replica || !leader) return Promise.resolve(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    if (replica.partition.highWatermark >= requiredOffset) return Promise.resolve(ErrorCode.NONE)
    if (this.inSyncIsrSize(replica, Date.now()) < this.minInsyncReplicas(replica)) return Promise.resolve(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    return park(replica, leader, (side) => side.waiting, requiredOffset, timeoutMs, ErrorCode.REQUEST_TIMED_OUT)
  }

  /**
   * The partition's low watermark (Kafka's Partition.lowWatermarkIfLeader): the lowest log start of this leader and of
   * every replica on a live (registered, unfenced) broker, as each follower's last fetch said; -1 while a live follower
   * has not said in this leader epoch. Records below it are gone from every replica that could lead.
   */
  private lowWatermark(replica: Replica, leader: LeaderSide): bigint {
    let low = replica.partition.logStartOffset
    for (const [id, follower] of leader.followers) {
      if (this.image?.brokers.get(id)?.fenced === false && follower.logStartOffset < low) low = follower.logStartOffset
    }
    return low
  }

  /**
   * Resolves once the low watermark of a partition this node leads reaches `requiredOffset`, with it (Kafka's
   * DelayedDeleteRecords, KIP-107): DeleteRecords moves the leader's log start, and each follower moves its own at its
   * next fetch, which reports it. NOT_LEADER_OR_FOLLOWER when this node does not lead the partition or stops leading
   * it; REQUEST_TIMED_OUT after `timeoutMs` (a live follower that does not fetch).
   */
  awaitLowWatermark(topicId: string, index: number, requiredOffset: bigint, timeoutMs: number): Promise<LowWatermarkAnswer> {
    const replica = this.get(topicId, index)
    const leader = replica?.leader
    if (!replica || !leader) return Promise.resolve({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, lowWatermark: -1n })
    const low = this.lowWatermark(replica, leader)
    if (low >= requiredOffset) return Promise.resolve({ errorCode: ErrorCode.NONE, lowWatermark: low })
    return park(replica, leader, (side) => side.deletions, requiredOffset, timeoutMs, { errorCode: ErrorCode.REQUEST_TIMED_OUT, lowWatermark: -1n })
  }

  /** Answers the DeleteRecords the partition's low watermark now satisfies. */
  private completeDeletions(replica: Replica): void {
    const leader = replica.leader
    if (!leader || leader.deletions.length === 0) return
    const low = this.lowWatermark(replica, leader)
    leader.deletions = leader.deletions.filter((waiting) => {
      if (low < waiting.requiredOffset) return true
      waiting.resolve({ errorCode: ErrorCode.NONE, lowWatermark: low })
      return false
    })
  }

  /**
   * Whether an acks=all produce to a partition this node leads must be refused before it is appended
   * (NOT_ENOUGH_REPLICAS): fewer than the topic's min.insync.replicas members of the committed ISR are in sync as the
   * leader sees them now (`inSyncIsrSize`). False for a partition this node does not lead (leadership is checked
   * apart).
   */
  underMinIsr(topicId: string, index: number, nowMs: number): boolean {
    const replica = this.get(topicId, index)
    return replica?.leader != null && this.inSyncIsrSize(replica, nowMs) < this.minInsyncReplicas(replica)
  }

  private afterLocalAppend(replica: Replica): void {
    if (replica.leader) this.maybeIncrementHighWatermark(replica, Date.now())
  }

  private becomeLeader(replica: Replica, nowMs: number): void {
    const log = replica.partition.log
    const followers = new Map<number, FollowerState>()
    for (const id of replica.state.replicas) if (id !== this.nodeId) followers.set(id, newFollowerState(replica, id, nowMs))
    const previous = replica.leader
    // Kafka's makeLeader: the epoch starts at the log end in the epoch cache before anything is appended in it, so a
    // follower's OffsetForLeaderEpoch or divergence check right after the election finds it.
    log.assignEpochStartOffset(replica.state.leaderEpoch)
    replica.leader = { epochStartOffset: log.logEndOffset, followers, pendingIsr: null, pendingAtPartitionEpoch: -1, waiting: previous?.waiting ?? [], deletions: previous?.deletions ?? [] }
    this.options.log.info(`leading ${replica.name} in leader epoch ${replica.state.leaderEpoch} from offset ${log.logEndOffset} (isr [${replica.state.isr}])`)
  }

  /**
   * The leader's followers after a change of the replica set in its epoch (a reassignment adds replicas without a new
   * leader epoch; Kafka's Partition.updateAssignmentAndIsr): an added replica starts unknown and not caught up, a
   * removed one is forgotten.
   */
  private followReplicaSet(replica: Replica, nowMs: number): void {
    const leader = replica.leader!
    for (const id of leader.followers.keys()) if (!replica.state.replicas.includes(id)) leader.followers.delete(id)
    for (const id of replica.state.replicas) if (id !== this.nodeId && !leader.followers.has(id)) leader.followers.set(id, newFollowerState(replica, id, nowMs))
  }

  /**
   * Ends this node's leadership of `replica` (it follows now, or holds the partition no more), and answers at once what
   * waits on it, as Kafka's ReplicaManager.completeDelayedOperationsWhenNotPartitionLeader does when a partition
   * becomes a follower or is stopped: the acks=all produces and DeleteRecords with `errorCode`, and the consumer
   * fetches parked here are woken (Partition.wake), whose next pass finds the partition no longer led and answers
   * FENCED_LEADER_EPOCH or NOT_LEADER_OR_FOLLOWER (DelayedFetch.tryComplete), not after their whole maxWaitMs.
   */
  private stopLeading(replica: Replica, errorCode: number): void {
    const leader = replica.leader
    if (!leader) return
    replica.leader = null
    for (const waiting of leader.waiting) waiting.resolve(errorCode)
    for (const waiting of leader.deletions) waiting.resolve({ errorCode, lowWatermark: -1n })
    replica.partition.wake()
  }

  private updateFollowerFetchState(replica: Replica, replicaId: number, state: FollowerState, fetchOffset: bigint, nowMs: number): void {
    const leaderEnd = replica.partition.log.logEndOffset
    const previousEnd = state.logEndOffset
    if (fetchOffset >= leaderEnd) state.lastCaughtUpTimeMs = Math.max(state.lastCaughtUpTimeMs, nowMs)
    else if (fetchOffset >= state.lastFetchLeaderLogEndOffset) state.lastCaughtUpTimeMs = Math.max(state.lastCaughtUpTimeMs, state.lastFetchTimeMs)
    state.logEndOffset = fetchOffset
    if (leaderEnd > state.lastFetchLeaderLogEndOffset) state.lastFetchLeaderLogEndOffset = leaderEnd
    state.lastFetchTimeMs = nowMs
    this.maybeExpandIsr(replica, replicaId, state)
    if (previousEnd !== fetchOffset) this.maybeIncrementHighWatermark(replica, nowMs)
  }

  private isCaughtUp(state: FollowerState, leaderEnd: bigint, nowMs: number): boolean {
    return state.logEndOffset === leaderEnd || nowMs - state.lastCaughtUpTimeMs <= this.config.replicaLagTimeMaxMs
  }

  /**
   * The members of the committed ISR the leader finds out of sync now (Kafka's getOutOfSyncReplicas): not caught up
   * for replica.lag.time.max.ms, or never heard from. The ISR shrink proposes to remove them; the min.insync.replicas
   * check of acks=all counts the ISR without them.
   */
  private outOfSyncReplicas(replica: Replica, nowMs: number): number[] {
    const leader = replica.leader
    if (!leader) return []
    const leaderEnd = replica.partition.log.logEndOffset
    return replica.state.isr.filter((id) => {
      if (id === this.nodeId) return false
      const state = leader.followers.get(id)
      return !state || !this.isCaughtUp(state, leaderEnd, nowMs)
    })
  }

  /** The committed ISR's size without the members the leader finds out of sync now. */
  private inSyncIsrSize(replica: Replica, nowMs: number): number {
    return replica.state.isr.length - this.outOfSyncReplicas(replica, nowMs).length
  }

  private maximalIsr(replica: Replica): readonly number[] {
    const isr = replica.state.isr
    const pending = replica.leader?.pendingIsr
    return pending ? [...isr, ...pending.filter((id) => !isr.includes(id))] : isr
  }

  /** The ISR size the topic's min.insync.replicas asks of this partition (Kafka's effectiveMinIsr). */
  private minInsyncReplicas(replica: Replica): number {
    return effectiveMinIsr(replica.topic.config.minInsyncReplicas, replica.state.replicas.length)
  }

  /** Kafka's maybeIncrementLeaderHW; answers the produces the new HW acknowledges. */
  private maybeIncrementHighWatermark(replica: Replica, nowMs: number): void {
    const leader = replica.leader
    if (!leader || replica.state.isr.length < this.minInsyncReplicas(replica)) return
    const log = replica.partition.log
    const maximal = this.maximalIsr(replica)
    let candidate = log.durableEndOffset
    for (const [id, follower] of leader.followers) {
      const holdsBack = maximal.includes(id) || (this.isCaughtUp(follower, log.logEndOffset, nowMs) && !this.ineligible.has(id))
      if (holdsBack && follower.logEndOffset < candidate) candidate = follower.logEndOffset
    }
    if (candidate > replica.partition.highWatermark) replica.partition.setHighWatermark(candidate)
    this.completeProduces(replica, nowMs)
  }

  private completeProduces(replica: Replica, nowMs: number): void {
    const leader = replica.leader
    if (!leader || leader.waiting.length === 0) return
    const hw = replica.partition.highWatermark
    const underMinIsr = this.inSyncIsrSize(replica, nowMs) < this.minInsyncReplicas(replica)
    leader.waiting = leader.waiting.filter((waiting) => {
      if (hw >= waiting.requiredOffset) waiting.resolve(ErrorCode.NONE)
      else if (underMinIsr) waiting.resolve(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND)
      else return true
      return false
    })
  }

  private afterIsrChange(replica: Replica, nowMs: number): void {
    this.maybeIncrementHighWatermark(replica, nowMs)
    this.completeProduces(replica, nowMs)
    // A follower on a broker the controller fenced no longer holds the low watermark back.
    this.completeDeletions(replica)
  }

  /**
   * Kafka's maybeExpandIsr / isFollowerInSync: LEO >= HW and >= the start of this leader's epoch. And its log start
   * (as its fetch says) at or past this leader's: a follower that returns with records DeleteRecords removed while it
   * was away (its log end at the leader's) moves its log start only when it applies the answer to this fetch, and
   * taken into the ISR before that it could be elected at once (a returning preferred replica is) and serve them again.
   */
  private maybeExpandIsr(replica: Replica, replicaId: number, state: FollowerState): void {
    const leader = replica.leader!
    const isr = replica.state.isr
    if (leader.pendingIsr || isr.includes(replicaId) || this.ineligible.has(replicaId)) return
    if (state.logStartOffset < replica.partition.logStartOffset) return
    if (state.logEndOffset >= replica.partition.highWatermark && state.logEndOffset >= leader.epochStartOffset) {
      this.proposeIsr(replica, [...isr, replicaId])
    }
  }

  /**
   * Kafka's maybeShrinkIsr, for every partition this node leads; then the produces waiting there are answered
   * NOT_ENOUGH_REPLICAS_AFTER_APPEND if too few members are still in sync, whether or not the controller takes the
   * shrink.
   */
  private shrinkIsrs(nowMs: number): void {
    for (const replica of this.replicas.values()) {
      const leader = replica.leader
      if (!leader) continue
      const outOfSync = this.outOfSyncReplicas(replica, nowMs)
      if (outOfSync.length > 0 && !leader.pendingIsr) {
        // Kafka's "Out of sync replicas: (brokerId: 3, endOffset: 120, lastCaughtUpTimeMs: ...)": who fell behind, how far.
        const leaderEnd = replica.partition.log.logEndOffset
        const behind = outOfSync.map((id) => {
          const state = leader.followers.get(id)
          if (!state || state.lastCaughtUpTimeMs === NEVER) return `node ${id} has not caught up in this leader epoch`
          if (state.logEndOffset < 0n) return `node ${id} has not fetched in the ${nowMs - state.lastCaughtUpTimeMs} ms since this leader epoch began`
          return `node ${id} last caught up ${nowMs - state.lastCaughtUpTimeMs} ms ago (replica.lag.time.max.ms ${this.config.replicaLagTimeMaxMs}), at offset ${state.logEndOffset} of ${leaderEnd}`
        })
        this.proposeIsr(replica, replica.state.isr.filter((id) => !outOfSync.includes(id)), 0, behind.join('; '))
      }
      this.completeProduces(replica, nowMs)
    }
  }

  /**
   * Asks the active controller for one ISR change (KIP-497) through `alterPartitions`, which sends the changes asked
   * together as one AlterPartition (run in process when this node is the controller). The answer's state is taken at
   * once when this replica still leads the same epoch. A refusal clears the pending change, so the next fetch or ISR
   * check proposes again from the committed ISR; an answer that leaves the outcome open, or that moved the partition on
   * (a new leader epoch, a later partition epoch), keeps it pending until the image settles it (an open outcome is
   * asked again meanwhile). A change replaced by a newer one of the same partition before it went out
   * (OPERATION_NOT_ATTEMPTED) is left to the newer.
   */
  private proposeIsr(replica: Replica, newIsr: readonly number[], attempt = 0, reason = ''): void {
    const leader = replica.leader!
    if (this.options.brokerEpoch() === null) return
    leader.pendingIsr = newIsr
    const { leaderEpoch, partitionEpoch } = replica.state
    leader.pendingAtPartitionEpoch = partitionEpoch
    // Said once: a change asked again while the controller cannot be reached (a quorum lost) would say it every retry.
    const say = attempt === 0 ? this.options.log.info.bind(this.options.log) : this.options.log.debug.bind(this.options.log)
    say(`${replica.name}: asking the controller to change the isr [${replica.state.isr}] to [${newIsr}] (leader epoch ${leaderEpoch})${reason === '' ? '' : `: ${reason}`}`)
    void this.alterPartitions
      .submit({ topicId: replica.topic.topicId, partitionIndex: replica.partition.index, leaderEpoch, partitionEpoch, newIsr })
      .then((answer) => {
        const current = replica.leader
        if (current !== leader || current.pendingIsr !== newIsr || answer.errorCode === ErrorCode.OPERATION_NOT_ATTEMPTED) return
        // An ISR change that completed a reassignment also bumped the leader epoch (and may have moved the leader):
        // that state comes with the image, which holds the replica set too. Until then this epoch's high watermark
        // keeps waiting for every member of the ISR asked for (Kafka's Partition.handleAlterPartitionUpdate leaves
        // the pending state in place for a stale epoch): the added replica may lead the next epoch already, and
        // stops fetching here, so forgetting it would let the replicas taken off acknowledge records it never had.
        const sameLeadership = answer.leaderId === this.nodeId && answer.leaderEpoch === leaderEpoch
        if (answer.errorCode === ErrorCode.NONE && !sameLeadership) return
        // The same for an answer that leaves the change's fate open (the controller timed out or lost its leadership
        // before the commit, which its successor may still make): the change is asked again after a backoff, as
        // Kafka's AlterPartitionManager retries it, unless an image ends it first. A partition that moved on
        // (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, perhaps by this very change) keeps it pending until the image
        // shows where it went (`applyState`).
        if (OUTCOME_UNKNOWN.has(answer.errorCode)) {
          say(`${replica.name}: the isr [${newIsr}] may or may not have been taken (${errorInfo(answer.errorCode).name}): asking again`)
          const backoffMs = Math.min(ALTER_PARTITION_RETRY_MS * 2 ** attempt, ALTER_PARTITION_RETRY_MAX_MS)
          setTimeout(() => {
            if (!this.stopped && replica.leader === leader && leader.pendingIsr === newIsr) this.proposeIsr(replica, newIsr, attempt + 1)
          }, backoffMs).unref()
          return
        }
        if (answer.errorCode === ErrorCode.FENCED_LEADER_EPOCH || answer.errorCode === ErrorCode.INVALID_UPDATE_VERSION) return
        current.pendingIsr = null
        if (answer.errorCode !== ErrorCode.NONE) {
          this.options.log.info(`${replica.name}: the controller refused the isr [${newIsr}]: ${errorInfo(answer.errorCode).name}`)
          return
        }
        if (replica.state.leaderEpoch === leaderEpoch && replica.state.partitionEpoch < answer.partitionEpoch) {
          this.applyState(replica, { ...replica.state, isr: answer.isr, partitionEpoch: answer.partitionEpoch }, { first: false, nowMs: Date.now() })
        }
        this.afterIsrChange(replica, Date.now())
      })
  }

  // ---- both --------------------------------------------------------------------------------------------------------

  /** Kafka's makeLeader / makeFollower for one replica; an older state is ignored. */
  private applyState(replica: Replica, state: PartitionState, options: { first: boolean; nowMs: number }): void {
    const current = replica.state
    if (!options.first) {
      if (state.leaderEpoch < current.leaderEpoch) return
      if (state.leaderEpoch === current.leaderEpoch && state.partitionEpoch <= current.partitionEpoch) return
    }
    const newEpoch = options.first || state.leaderEpoch !== current.leaderEpoch
    replica.state = state
    replica.partition.replicas = state.replicas
    replica.partition.isr = state.isr
    replica.partition.leaderEpoch = state.leaderEpoch
    if (state.leader === this.nodeId) {
      this.unfollow(replica)
      if (!replica.leader || newEpoch) this.becomeLeader(replica, options.nowMs)
      else {
        const leader = replica.leader
        if (leader.pendingIsr && (sameMembers(leader.pendingIsr, state.isr) || state.partitionEpoch > leader.pendingAtPartitionEpoch)) leader.pendingIsr = null
        this.followReplicaSet(replica, options.nowMs)
      }
      this.afterIsrChange(replica, options.nowMs)
    } else {
      this.stopLeading(replica, ErrorCode.NOT_LEADER_OR_FOLLOWER)
      if (newEpoch || this.fetcherOf(replica) !== state.leader) this.follow(replica, state.leader)
    }
  }

  // ---- follower ----------------------------------------------------------------------------------------------------

  private fetcherOf(replica: Replica): number | null {
    for (const [leaderId, fetcher] of this.fetchers) if (fetcher.has(replica)) return leaderId
    return null
  }

  private follow(replica: Replica, leaderId: number): void {
    this.unfollow(replica)
    if (leaderId < 0) return
    let fetcher = this.fetchers.get(leaderId)
    if (!fetcher) {
      fetcher = new ReplicaFetcher(this, leaderId, this.options.log)
      this.fetchers.set(leaderId, fetcher)
    }
    fetcher.add(replica)
    this.options.log.info(`following ${replica.name} from node ${leaderId} in leader epoch ${replica.state.leaderEpoch} from offset ${replica.partition.logEndOffset}`)
  }

  private unfollow(replica: Replica): void {
    for (const [leaderId, fetcher] of this.fetchers) {
      if (!fetcher.remove(replica)) continue
      if (fetcher.empty) {
        void fetcher.stop()
        this.fetchers.delete(leaderId)
      }
    }
  }

  /** The client listener of a live broker, from the image. */
  endpointOf(brokerId: number): { id: number; host: string; port: number } | null {
    const broker = this.image?.brokers.get(brokerId)
    const endpoint = broker?.endPoints[0]
    return broker && !broker.fenced && endpoint ? { id: brokerId, host: endpoint.host, port: endpoint.port } : null
  }

  /** The address this node fetches from (QuorumRunner.localAddress), or undefined. */
  get localAddress(): string | undefined {
    return this.options.quorum.localAddress
  }

  /** Whether `replica` still follows `leaderId` in `leaderEpoch`: a fetch's answer is used only then. */
  stillFollows(replica: Replica, leaderId: number, leaderEpoch: number): boolean {
    return this.replicas.get(replica.key) === replica && !replica.leader && replica.state.leader === leaderId && replica.state.leaderEpoch === leaderEpoch
  }

  /**
   * A follower whose log ends below its leader's log start (the leader's retention or DeleteRecords removed what it
   * needs) empties its log and starts it at the leader's log start (Kafka's AbstractFetcherThread.fetchOffsetAndTruncate,
   * truncateFullyAndStartAt). Returns false when the log does not end below `leaderLogStartOffset`: then the fetch
   * offset was above the leader's log end, which only an unclean election causes and the divergence check settles.
   */
  async startAtLeaderLogStart(replica: Replica, leaderLogStartOffset: bigint): Promise<boolean> {
    const partition = replica.partition
    if (leaderLogStartOffset <= partition.logEndOffset) return false
    this.options.log.info(`${replica.name}: the log ends at ${partition.logEndOffset}, below the leader's log start ${leaderLogStartOffset}: starting it afresh there`)
    return this.truncateAsFollower(replica, () => partition.truncateFullyAndStartAt(leaderLogStartOffset))
  }

  /**
   * Runs a follower's truncation of `replica`'s log once its appends are written, unless it leads by then; returns
   * whether it ran. The image is applied between the truncation's steps, where Kafka's makeLeader waits for a
   * fetcher's truncation under the partition's lock: a leadership that came while it ran has had its epoch's start,
   * cached at the log end, cut away with the log (truncation drops the epochs from the cut), and would then never
   * say OFFSET_NOT_AVAILABLE (ListOffsets) nor take a follower back into the ISR. It starts again at the log end left.
   */
  private async truncateAsFollower(replica: Replica, truncate: () => Promise<void>): Promise<boolean> {
    await replica.partition.appendsSettled()
    if (replica.leader) return false
    await truncate()
    if (replica.leader) this.becomeLeader(replica, Date.now())
    return true
  }

  /**
   * What a follower does with its leader's answer for one partition (AbstractFetcherThread.processFetchRequest):
   * truncates on divergingEpoch, else appends the batches at its log end and takes the leader's HW (bounded by its
   * own log end) and log start (bounded by that HW). Returns false when the partition should wait before fetching again (an error).
   */
  async applyFetched(replica: Replica, data: FetchResponsePartitionData): Promise<boolean> {
    const partition = replica.partition
    if (data.errorCode !== ErrorCode.NONE) {
      this.options.log.debug(`${replica.name}: the leader answered the replica fetch with ${errorInfo(data.errorCode).name}`)
      return false
    }
    const leaderEnd = { epoch: data.divergingEpoch?.epoch ?? UNDEFINED_EPOCH, endOffset: data.divergingEpoch?.endOffset ?? -1n }
    if (leaderEnd.epoch !== UNDEFINED_EPOCH || leaderEnd.endOffset >= 0n) {
      const log = partition.log
      const { offset } = truncationTarget(leaderEnd, {
        logEndOffset: log.logEndOffset,
        highWatermark: partition.highWatermark,
        ownEnd: (epoch) => endOffsetForEpoch(log.epochCache, log.logEndOffset, epoch),
      })
      if (offset < log.logEndOffset) this.options.log.info(`${replica.name}: truncating from ${log.logEndOffset} to ${offset} (the leader's epoch ${leaderEnd.epoch} ends at ${leaderEnd.endOffset})`)
      // Also at the log end: an epoch this replica led without appending starts there, and the leader lacks it.
      await this.truncateAsFollower(replica, () => partition.truncateTo(offset))
      if (partition.highWatermark > partition.logEndOffset) partition.setHighWatermark(partition.logEndOffset)
      return true
    }
    const records = data.records === null ? Buffer.alloc(0) : Buffer.isBuffer(data.records) ? data.records : Buffer.concat(data.records as Buffer[])
    // The appends are written together (each takes its offsets at once), and every one is awaited: a log that refuses
    // writes rejects each, and a rejection left unawaited would be the process's unhandled rejection.
    const appends: Promise<unknown>[] = []
    for (const batch of batchesIn(records)) {
      const baseOffset = batch.readBigInt64BE(0)
      if (baseOffset < partition.logEndOffset) {
        // A batch wholly below the log end is one this log has. The log end is inside the first batch only when this
        // log is empty and starts where the leader's log starts, in the middle of a batch (DeleteRecords' offset need
        // not be a batch's first, and this replica started afresh there, startAtLeaderLogStart): the log then starts
        // again at the batch's base offset and takes the batch whole, and the leader's log start moves this log's up
        // again below (Kafka's Partition.appendRecordsToFollowerOrFutureReplica, on UnexpectedAppendOffsetException).
        // Skipped, the batch would be asked for again at every fetch and this replica never rejoin the ISR.
        const startsInside = appends.length === 0 && partition.logEndOffset === partition.logStartOffset && lastOffsetOf(batch) >= partition.logEndOffset
        if (!startsInside) continue
        this.options.log.info(`${replica.name}: the leader's first batch starts at ${baseOffset}, below the log start ${partition.logStartOffset}: starting the log there`)
        if (!(await this.truncateAsFollower(replica, () => partition.truncateFullyAndStartAt(baseOffset)))) return true
      }
      const end = partition.logEndOffset
      // The batch is a view of the answer's bytes, not a copy: the log stamps it with the offset and epoch it already
      // carries, the batch cache and the LevelDB write copy it, and the answer's buffer (one socket read, or the
      // frame gathered from several) is held only until the write. A copy here cost each follower a fresh 16 KiB
      // buffer per batch, in page faults and GC more than in the copy itself (bench/README.md, "A replicated cluster").
      appends.push(partition.appendAsFollower(batch))
      // Refused (storage that failed): it took no offsets, so the batches after it could not follow it either.
      if (partition.logEndOffset === end) break
    }
    const failed = (await Promise.allSettled(appends)).find((result) => result.status === 'rejected')
    if (failed) throw failed.reason
    const hw = data.highWatermark < partition.log.durableEndOffset ? data.highWatermark : partition.log.durableEndOffset
    if (hw > partition.highWatermark) partition.setHighWatermark(hw)
    // The leader's log start (DeleteRecords, retention) moves this replica's too, up to its high watermark, so records
    // deleted on the leader do not come back when this replica leads (ReplicaFetcherThread.processPartitionData:
    // log.maybeIncrementLogStartOffset(leaderLogStartOffset)).
    const leaderStart = data.logStartOffset ?? -1n
    const start = leaderStart < partition.highWatermark ? leaderStart : partition.highWatermark
    if (start > partition.logStartOffset) await partition.deleteBefore(start)
    return true
  }
}

/** How long a stopping node waits for a replica fetcher's loop to end (ReplicaFetcher.stop). */
const FETCHER_STOP_WAIT_MS = 2000

/**
 * Fetches every partition this node follows from one leader node (Kafka's ReplicaFetcherThread): one replica Fetch
 * at a time for all of them, each answer applied partition by partition before the next request, so one
 * partition's appends and truncations never overlap.
 */
class ReplicaFetcher {
  private readonly partitions = new Set<Replica>()
  private channel: PeerChannel | null = null
  /**
   * The fetch session with the leader (KIP-227; Kafka's FetchSessionHandler): its id, the epoch of the next request,
   * and each partition's fetch state as the leader last heard it. Null: the next request is a full one asking for a
   * new session (after an error, a new connection, or a leader that declined).
   */
  private session: { id: number; epoch: number; sent: Map<Replica, SentFetchState> } | null = null
  private running: Promise<void> | null = null
  private stopped = false
  /** Partitions that answered an error wait until this time (ms). */
  private readonly backoffUntil = new Map<Replica, number>()

  constructor(
    private readonly manager: ReplicaManager,
    readonly leaderId: number,
    private readonly log: Logger,
  ) {}

  get empty(): boolean {
    return this.partitions.size === 0
  }

  has(replica: Replica): boolean {
    return this.partitions.has(replica)
  }

  add(replica: Replica): void {
    this.partitions.add(replica)
    this.backoffUntil.delete(replica)
    this.running ??= this.run().finally(() => (this.running = null))
  }

  remove(replica: Replica): boolean {
    this.backoffUntil.delete(replica)
    return this.partitions.delete(replica)
  }

  /**
   * Stops fetching; resolves once the fetch loop has ended (a fetched answer being appended is appended first), or
   * after FETCHER_STOP_WAIT_MS: an append takes milliseconds, and a request under way fails as the channel closes,
   * but one that had to connect again (ListOffsets after OFFSET_OUT_OF_RANGE) may wait on the network for longer.
   */
  async stop(): Promise<void> {
    this.stopped = true
    this.channel?.close()
    this.channel = null
    this.session = null
    if (!this.running) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.running.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, FETCHER_STOP_WAIT_MS)))])
    clearTimeout(timer)
  }

  /**
   * OFFSET_OUT_OF_RANGE from the leader (Kafka's ReplicaFetcherThread asks it the same way): its log start, from
   * ListOffsets EARLIEST with this node's replica id in the leader epoch of the fetch, and the log starts afresh there
   * when it ends below it. Returns false to wait before fetching again.
   */
  private async handleOffsetOutOfRange(replica: Replica, leaderEpoch: number, channel: PeerChannel): Promise<boolean> {
    const response = await channel.request<ListOffsetsResponse>(listOffsets, LIST_OFFSETS_VERSION, {
      replicaId: this.manager.nodeId,
      isolationLevel: 0,
      timeoutMs: 0,
      topics: [{ name: replica.topic.name, partitions: [{ partitionIndex: replica.partition.index, currentLeaderEpoch: leaderEpoch, timestamp: OffsetSpec.EARLIEST, maxNumOffsets: 1 }] }],
    })
    const answer = response.topics[0]?.partitions[0]
    if (!answer || answer.errorCode !== ErrorCode.NONE || answer.offset === undefined) {
      this.log.debug(`${replica.name}: the leader answered ListOffsets with ${answer ? errorInfo(answer.errorCode).name : 'no partition'}`)
      return false
    }
    if (!this.manager.stillFollows(replica, this.leaderId, leaderEpoch) || replica.partition.logEndOffset >= answer.offset) return false
    return this.manager.startAtLeaderLogStart(replica, answer.offset)
  }

  private async run(): Promise<void> {
    const config = this.manager.config
    while (!this.stopped && this.partitions.size > 0) {
      const endpoint = this.manager.endpointOf(this.leaderId)
      if (!endpoint) {
        await sleep(config.replicaFetchBackoffMs)
        continue
      }
      if (!this.channel || this.channel.voter.host !== endpoint.host || this.channel.voter.port !== endpoint.port) {
        this.channel?.close()
        this.session = null
        this.channel = new PeerChannel(endpoint, {
          clientId: `brook-replica-fetcher-${this.manager.nodeId}`,
          timeoutMs: config.replicaFetchWaitMaxMs + config.requestTimeoutMs,
          localAddress: this.manager.localAddress,
        })
      }
      const nowMs = Date.now()
      const sent = [...this.partitions].filter((replica) => (this.backoffUntil.get(replica) ?? 0) <= nowMs).map((replica) => ({
        replica,
        leaderEpoch: replica.state.leaderEpoch,
        fetchOffset: replica.partition.logEndOffset,
        lastFetchedEpoch: replica.partition.log.latestEpoch,
        logStartOffset: replica.partition.logStartOffset,
      }))
      if (sent.length === 0) {
        await sleep(Math.min(...this.backoffUntil.values()) - nowMs)
        continue
      }
      // In a session only what changed goes: partitions new to it or whose fetch state moved, and those it drops.
      const session = this.session
      const changed = session ? sent.filter((entry) => !sameFetchState(session.sent.get(entry.replica), entry)) : sent
      const kept = new Set(sent.map((entry) => entry.replica))
      const forgotten = session ? [...session.sent.keys()].filter((replica) => !kept.has(replica)) : []
      const request: FetchRequest = {
        clusterId: null,
        replicaId: -1,
        replicaState: { replicaId: this.manager.nodeId, replicaEpoch: -1n },
        maxWaitMs: config.replicaFetchWaitMaxMs,
        minBytes: 1,
        maxBytes: REPLICA_FETCH_MAX_BYTES,
        isolationLevel: 0,
        sessionId: session?.id ?? 0,
        sessionEpoch: session?.epoch ?? 0,
        topics: [...groupBy(changed, (entry) => entry.replica.topic.topicId)].map(([topicId, entries]) => ({
          topic: entries[0]!.replica.topic.name,
          topicId,
          partitions: entries.map((entry) => ({
            partition: entry.replica.partition.index,
            currentLeaderEpoch: entry.leaderEpoch,
            fetchOffset: entry.fetchOffset,
            lastFetchedEpoch: entry.lastFetchedEpoch,
            logStartOffset: entry.logStartOffset,
            partitionMaxBytes: REPLICA_FETCH_PARTITION_MAX_BYTES,
            replicaDirectoryId: '00000000-0000-0000-0000-000000000000',
          })),
        })),
        forgottenTopicsData: [...groupBy(forgotten, (replica) => replica.topic.topicId)].map(([topicId, replicas]) => ({
          topic: replicas[0]!.topic.name,
          topicId,
          partitions: replicas.map((replica) => replica.partition.index),
        })),
        rackId: '',
      }
      let response: FetchResponse
      try {
        response = await this.channel.request<FetchResponse>(fetch, REPLICA_FETCH_VERSION, request)
      } catch (error) {
        this.session = null
        // A WARN, as Kafka's fetcher and NetworkClient log one ("Connection to node 2 (host:port) could not be
        // established"): a leader this node cannot reach (dead, or advertising an address only clients resolve) takes
        // it out of the ISR of every partition it follows there. Once a minute per leader, with how many were not logged.
        if (!this.stopped) this.log.warnOncePer(`replica-fetch-${this.leaderId}`, `replica fetch from node ${this.leaderId} failed: ${(error as Error).message}; retrying every ${config.replicaFetchBackoffMs} ms`)
        await sleep(config.replicaFetchBackoffMs)
        continue
      }
      if (response.errorCode !== ErrorCode.NONE) {
        // FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH (the leader restarted, or lost the session): start a
        // new one with the next, full, request.
        this.session = null
        this.log.debug(`replica fetch from node ${this.leaderId}: error ${response.errorCode}; starting a new fetch session`)
        continue
      }
      if (!session) {
        this.session = response.sessionId ? { id: response.sessionId, epoch: 1, sent: new Map(sent.map((entry) => [entry.replica, entry])) } : null
      } else {
        session.epoch = session.epoch === 0x7fffffff ? 1 : session.epoch + 1
        for (const entry of changed) session.sent.set(entry.replica, entry)
        for (const replica of forgotten) session.sent.delete(replica)
      }
      const answered = new Map<string, FetchResponsePartitionData>()
      for (const topic of response.responses) for (const data of topic.partitions) answered.set(replicaKey(topic.topicId ?? '', data.partitionIndex), data)
      for (const entry of sent) {
        const data = answered.get(replicaKey(entry.replica.topic.topicId, entry.replica.partition.index))
        if (!data || this.stopped || !this.partitions.has(entry.replica)) continue
        if (!this.manager.stillFollows(entry.replica, this.leaderId, entry.leaderEpoch)) continue
        // The log moved since the request (it cannot, one fetcher per partition, but a stale answer must never append).
        if (entry.replica.partition.logEndOffset !== entry.fetchOffset) continue
        try {
          const ok =
            data.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE
              ? await this.handleOffsetOutOfRange(entry.replica, entry.leaderEpoch, this.channel)
              : await this.manager.applyFetched(entry.replica, data)
          if (!ok) this.backoffUntil.set(entry.replica, Date.now() + config.replicaFetchBackoffMs)
        } catch (error) {
          // Storage that failed refuses every write until the node restarts (a cluster node stops at once, broker.ts):
          // the partition is fetched no more, and the failure was logged once, with its cause, where it happened.
          if (this.manager.storageFailed) {
            this.remove(entry.replica)
            continue
          }
          this.log.error(`${entry.replica.name}: applying the leader's batches failed: ${(error as Error).message}`)
          this.backoffUntil.set(entry.replica, Date.now() + config.replicaFetchBackoffMs)
        }
      }
    }
  }
}

/** A partition's fetch state as a replica Fetch sends it. */
interface SentFetchState {
  readonly leaderEpoch: number
  readonly fetchOffset: bigint
  readonly lastFetchedEpoch: number
  readonly logStartOffset: bigint
}

function sameFetchState(before: SentFetchState | undefined, now: SentFetchState): boolean {
  return (
    before !== undefined &&
    before.leaderEpoch === now.leaderEpoch &&
    before.fetchOffset === now.fetchOffset &&
    before.lastFetchedEpoch === now.lastFetchedEpoch &&
    before.logStartOffset === now.logStartOffset
  )
}

/**
 * Parks a request in the queue `queueOf` picks from `leader` (the replica's leader side) until the queue's owner resolves it, or
 * until `timeoutMs` has passed: it is then taken out of the queue of whichever leader side the replica has by then
 * (one leader epoch hands its queues to the next) and resolves with `timedOut`.
 */
function park<A>(replica: Replica, leader: LeaderSide, queueOf: (leader: LeaderSide) => Waiting<A>[], requiredOffset: bigint, timeoutMs: number, timedOut: A): Promise<A> {
  return new Promise<A>((resolve) => {
    const waiter: Waiting<A> = {
      requiredOffset,
      resolve: (answer) => {
        clearTimeout(timer)
        resolve(answer)
      },
    }
    const timer = setTimeout(() => {
      const queue = replica.leader ? queueOf(replica.leader) : []
      const at = queue.indexOf(waiter)
      if (at >= 0) queue.splice(at, 1)
      resolve(timedOut)
    }, Math.max(0, timeoutMs))
    queueOf(leader).push(waiter)
  })
}

/** Kafka's checkCurrentLeaderEpoch: -1 skips it; older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH. */
function checkLeaderEpoch(replica: Replica, requested: number): number {
  if (requested === UNDEFINED_EPOCH || requested === replica.state.leaderEpoch) return ErrorCode.NONE
  return requested < replica.state.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH
}

function partitionState(registration: PartitionRegistration): PartitionState {
  return {
    leader: registration.leader,
    leaderEpoch: registration.leaderEpoch,
    isr: [...registration.isr],
    replicas: [...registration.replicas],
    partitionEpoch: registration.partitionEpoch,
  }
}

function replicaKey(topicId: string, index: number): string {
  return `${topicId}/${index}`
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}
