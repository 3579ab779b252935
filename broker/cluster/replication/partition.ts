/**
 * One replica of one partition (Kafka's Partition, with the follower side of its ReplicaFetcherThread): a pure,
 * deterministic core. It does no I/O and reads no clock; the caller feeds it the controller's partition state,
 * messages, produce requests and ticks, each with `nowMs`, and drains what to persist, send and answer.
 *
 *                       applyPartitionState (the controller's leader, leaderEpoch, isr, partitionEpoch)
 *        ┌──────────────────────────┬───────────────────────┴─────────────┐
 *        v                          v                                     v
 *   ┌─────────┐  leader = me   ┌────────┐   leader = other / -1    ┌──────────┐   not in replicas: None
 *   │ Leader  │ <───────────── │ (any)  │ ───────────────────────> │ Follower │
 *   └─────────┘                └────────┘                          └──────────┘
 *   epoch start = LEO,                                             truncating ──> fetching ──> (fenced: waits
 *   cached as (leaderEpoch -> LEO)                                  (OffsetFor-     (Fetch, KIP-320      for newer
 *                                                                   LeaderEpoch)    divergingEpoch)      metadata)
 *
 * The leader, per follower: its LEO (the offset of its last valid fetch) and lastCaughtUpTimeMs, the latest time t
 * such that a fetch reached the leader's LEO as of t (Kafka's Replica.updateFetchState: a fetch at the leader's
 * current LEO counts now; one at the LEO the leader had at the previous fetch counts the previous fetch's time).
 *
 *   LEO  leader 12 │ f1 12 │ f2 9 │ f3 4 (not in ISR)          ISR (committed) = {leader, f1, f2}
 *   HW = min LEO over the maximal ISR (the committed ISR plus a member an AlterPartition in flight would add) and
 *        over any caught-up, unfenced replica not yet in it = 9; it only grows, and stays put while the committed
 *        ISR is smaller than min.insync.replicas (KAFKA-15583)
 *   shrink: a member not caught up for replica.lag.time.max.ms     expand: a replica whose LEO >= HW and >= the
 *                                                                  start of the leader's epoch
 *   both as one AlterPartition at a time; the ISR changes when the controller's answer (or newer metadata) arrives
 *
 * Invariants
 * - A replica acts only on the newest partition state it has seen: an older leaderEpoch, or the same with an older or
 *   equal partitionEpoch, is ignored; requests naming another leader epoch are refused (FENCED_LEADER_EPOCH when
 *   theirs is older, UNKNOWN_LEADER_EPOCH when it is newer), so a deposed leader accepts no follower and a follower
 *   takes nothing from one.
 * - Leader: HW <= the LEO of every member of the maximal ISR, as known from valid fetches in its epoch. A leader
 *   starts each epoch knowing no follower's LEO (as Kafka's new leader; Kafka keeps them for a re-elected one, which
 *   is unsafe when its metadata skipped an epoch another replica led), so its HW waits until every ISR member has
 *   fetched in that epoch: an offset is below a leader's HW only when every ISR member holds it, identical, which is
 *   what lets the controller elect any ISR member without losing it.
 * - A fetch is valid only if the follower's log agrees with the leader's up to fetchOffset: its latest epoch is in
 *   the leader's log and ends at or after fetchOffset; otherwise the answer is divergingEpoch and the follower's
 *   position is not recorded. Within an epoch the leader's log only grows, so a recorded LEO stays true, and a
 *   fetch behind it (a late duplicate: Kafka's TCP connections never deliver one) does not move it back.
 * - Follower: truncates only where its log leaves the leader's (the end of the largest common epoch), which is never
 *   below its HW unless the controller elected a leader from outside the ISR (an unclean election, which loses those
 *   records as in Kafka); appends only the batches of the leader it follows, at its LEO; HW = min(its LEO, the
 *   leader's HW), never moving back otherwise.
 * - acks=all: answered only once HW > the batch's last offset; NOT_ENOUGH_REPLICAS before the append while the
 *   committed ISR is smaller than min.insync.replicas; NOT_ENOUGH_REPLICAS_AFTER_APPEND as soon as it becomes so
 *   while the produce waits (the HW cannot pass it then); REQUEST_TIMED_OUT after its timeout;
 *   NOT_LEADER_OR_FOLLOWER when the replica stops leading. acks=1 and acks=0 are answered after the local append.
 * - Everything drained is persisted before any message or answer of the same drain leaves (the caller's loop), so a
 *   follower never holds what its leader did not persist and nothing acknowledged lives only in memory.
 *
 * A consumer's fetch reads up to HW from the leader only; a follower refuses it (NOT_LEADER_OR_FOLLOWER).
 */
import { ErrorCode } from '../../../protocol/errors.js'
import { DEFAULT_REPLICATION_CONFIG, effectiveMinIsr, type ReplicationConfig } from './config.js'
import {
  ReplicaLog,
  truncationTarget,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
  type EpochEndOffset,
  type PersistedReplica,
  type ReplicaBatch,
  type ReplicaWrite,
} from './log.js'
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponse,
  PartitionState,
  ReplicaEnvelope,
  ReplicaFetchRequest,
  ReplicaFetchResponse,
} from './messages.js'

/** "Never caught up": Kafka's lastCaughtUpTimeMs of 0, on a clock that may start at 0. */
const NEVER = Number.NEGATIVE_INFINITY
/** An offset not known yet (Kafka's UnknownOffset). */
const UNKNOWN_OFFSET = -1n

export type ReplicaRole = 'None' | 'Leader' | 'Follower'

export interface ProduceRequest {
  /** The caller's id for the request, echoed in its result. */
  readonly requestId: number
  /** -1 (all), 0 or 1. */
  readonly acks: number
  readonly records: readonly Buffer[]
  /** How long an acks=all produce may wait for the ISR (ProduceRequest's timeoutMs). */
  readonly timeoutMs: number
}

export interface ProduceResult {
  readonly requestId: number
  readonly errorCode: number
  /** The batch's base offset; -1n when it was not appended. */
  readonly baseOffset: bigint
}

/** A consumer's fetch of this partition (Fetch with replicaId -1). */
export interface ConsumerFetchRequest {
  readonly fetchOffset: bigint
  /** -1 when the client sends none (Fetch before v9). */
  readonly currentLeaderEpoch: number
  readonly maxRecords: number
}

export interface ConsumerFetchResult {
  readonly errorCode: number
  readonly highWatermark: bigint
  readonly batches: readonly ReplicaBatch[]
}

/** What one drain hands the caller: persist `writes` first, then send and answer the rest. */
export interface ReplicaOutput {
  readonly writes: ReplicaWrite[]
  readonly messages: ReplicaEnvelope[]
  /** To the active controller. */
  readonly alterPartition: AlterPartitionRequest[]
  readonly produceResults: ProduceResult[]
}

export interface PartitionReplicaOptions {
  readonly replicaId: number
  readonly persisted: PersistedReplica
  readonly config?: Partial<ReplicationConfig>
  /**
   * The first correlation id this incarnation uses (default 0). A transport over connections needs nothing else;
   * a simulation whose responses may reach a restarted replica gives each incarnation its own range.
   */
  readonly firstCorrelationId?: number
}

/** The leader's view of one follower (Kafka's ReplicaState). */
export interface FollowerState {
  /** The fetch offset of its last valid fetch in this epoch; -1 until it fetches from a new leader. */
  logEndOffset: bigint
  /** The leader's LEO when that fetch arrived (the highest seen at a fetch). */
  lastFetchLeaderLogEndOffset: bigint
  lastFetchTimeMs: number
  /** The latest time at which it had everything the leader had (-Infinity: never). */
  lastCaughtUpTimeMs: number
  /** The HW in the last fetch response it was sent: a held fetch is answered as soon as the HW passes it. */
  lastSentHighWatermark: bigint
}

interface PendingIsrChange {
  request: AlterPartitionRequest
  sentAtMs: number
  /** The controller refused it for a reason only newer metadata resolves: not sent again. */
  awaitingMetadata: boolean
}

interface WaitingProduce {
  readonly requestId: number
  readonly baseOffset: bigint
  /** The HW that acknowledges it: the batch's last offset + 1. */
  readonly requiredOffset: bigint
  readonly deadlineMs: number
}

interface ParkedFetch {
  readonly envelope: ReplicaEnvelope<ReplicaFetchRequest>
  readonly deadlineMs: number
}

interface LeaderState {
  readonly epochStartOffset: bigint
  readonly followers: Map<number, FollowerState>
  pendingIsr: PendingIsrChange | null
  waiting: WaitingProduce[]
  parked: ParkedFetch[]
  nextIsrCheckMs: number
}

interface FollowerSide {
  readonly leaderId: number
  readonly leaderEpoch: number
  phase: 'truncating' | 'fetching' | 'fenced'
  inFlight: { readonly correlationId: number; readonly deadlineMs: number } | null
  nextRequestMs: number
}

/**
 * One replica of one partition: see the top of this module for the roles, the rules and the invariants, and
 * README.md for the loop that drives it. Not thread-safe by design: one call at a time, each followed by `drain`.
 */
export class PartitionReplica {
  readonly replicaId: number
  readonly config: ReplicationConfig
  private readonly log: ReplicaLog
  private hw: bigint
  private partitionState: PartitionState | null = null
  private ineligible: readonly number[] = []
  private leader: LeaderState | null = null
  private follower: FollowerSide | null = null
  private nextCorrelationId: number
  private out: ReplicaOutput = emptyOutput()

  constructor(options: PartitionReplicaOptions) {
    this.replicaId = options.replicaId
    this.config = { ...DEFAULT_REPLICATION_CONFIG, ...options.config }
    this.log = new ReplicaLog(options.persisted.batches, options.persisted.epochs)
    const end = this.log.logEndOffset
    this.hw = options.persisted.highWatermark < end ? options.persisted.highWatermark : end
    this.nextCorrelationId = options.firstCorrelationId ?? 0
  }

  /** Leader or Follower as the latest partition state says; None before one arrives or when not a replica. */
  get role(): ReplicaRole {
    return this.leader ? 'Leader' : this.follower ? 'Follower' : 'None'
  }

  /** The partition state this replica acts on (null before the first). */
  get state(): PartitionState | null {
    return this.partitionState
  }

  /** The leader epoch of the partition state acted on, -1 before the first. */
  get leaderEpoch(): number {
    return this.partitionState?.leaderEpoch ?? UNDEFINED_EPOCH
  }

  /** This replica's high watermark: the offset below which records are committed. */
  get highWatermark(): bigint {
    return this.hw
  }

  /** The offset the next batch gets (LEO). */
  get logEndOffset(): bigint {
    return this.log.logEndOffset
  }

  /** The log's batches in offset order (a live view: do not change it). */
  batches(): readonly ReplicaBatch[] {
    return this.log.batches()
  }

  /** The leader's ISR for the high watermark: the committed one plus a member a pending AlterPartition adds. */
  get maximalIsr(): readonly number[] {
    const isr = this.partitionState?.isr ?? []
    const pending = this.leader?.pendingIsr
    if (!pending) return isr
    return [...isr, ...pending.request.newIsr.filter((id) => !isr.includes(id))]
  }

  /** The leader's view of a follower, or undefined (not leading, or not a replica). */
  followerState(replicaId: number): Readonly<FollowerState> | undefined {
    return this.leader?.followers.get(replicaId)
  }

  /** Whether an AlterPartition is in flight. */
  get isrChangePending(): boolean {
    return this.leader?.pendingIsr != null
  }

  /** The epoch cache's answer for `epoch` (see ReplicaLog.endOffsetForEpoch). */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.log.endOffsetForEpoch(epoch)
  }

  /**
   * The controller's state of the partition (from the metadata log), Kafka's makeLeader / makeFollower. A state
   * older than the one held is ignored; returns whether it was applied.
   */
  applyPartitionState(state: PartitionState, nowMs: number): boolean {
    const current = this.partitionState
    if (
      current &&
      (state.leaderEpoch < current.leaderEpoch ||
        (state.leaderEpoch === current.leaderEpoch && state.partitionEpoch <= current.partitionEpoch))
    ) {
      return false
    }
    this.partitionState = state
    const newEpoch = current?.leaderEpoch !== state.leaderEpoch
    if (!state.replicas.includes(this.replicaId)) {
      this.stopLeading(nowMs)
      this.follower = null
    } else if (state.leader === this.replicaId) {
      if (this.leader && !newEpoch) this.updateLeader(state)
      else this.becomeLeader(state, nowMs)
      this.afterIsrChange(nowMs)
    } else if (newEpoch || !this.follower || this.follower.leaderId !== state.leader) {
      this.becomeFollower(state, nowMs)
    }
    return true
  }

  /**
   * The brokers the metadata shows fenced (or shutting down): a leader neither proposes them for the ISR nor waits
   * for them as caught-up replicas about to join it (Kafka's isReplicaIsrEligible). The ISR's own members count
   * regardless, until the controller removes them.
   */
  setIneligibleReplicas(brokerIds: readonly number[], nowMs: number): void {
    this.ineligible = [...brokerIds]
    this.afterIsrChange(nowMs)
  }

  /**
   * A produce to this replica (Kafka's appendRecordsToLeader). Its result comes out of `drain`, at once or, for
   * acks=all, once the HW passes it, the ISR falls below min.insync.replicas, leadership moves or it times out.
   */
  produce(request: ProduceRequest, nowMs: number): void {
    const fail = (errorCode: number): void => {
      this.out.produceResults.push({ requestId: request.requestId, errorCode, baseOffset: -1n })
    }
    const leader = this.leader
    const state = this.partitionState
    if (!leader || !state) return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    if (request.acks !== -1 && request.acks !== 0 && request.acks !== 1) return fail(ErrorCode.INVALID_REQUIRED_ACKS)
    if (request.records.length === 0) return fail(ErrorCode.INVALID_RECORD)
    if (request.acks === -1 && state.isr.length < this.minIsr(state))
      return fail(ErrorCode.NOT_ENOUGH_REPLICAS)
    const batch: ReplicaBatch = {
      baseOffset: this.log.logEndOffset,
      leaderEpoch: state.leaderEpoch,
      records: request.records,
    }
    this.log.append(batch)
    this.out.writes.push({ type: 'append', batch })
    if (request.acks === -1) {
      leader.waiting.push({
        requestId: request.requestId,
        baseOffset: batch.baseOffset,
        requiredOffset: this.log.logEndOffset,
        deadlineMs: nowMs + request.timeoutMs,
      })
    } else {
      const result = { requestId: request.requestId, errorCode: ErrorCode.NONE, baseOffset: batch.baseOffset }
      this.out.produceResults.push(result)
    }
    this.maybeIncrementHighWatermark(nowMs)
    this.completeProduces(nowMs)
    this.completeParkedFetches(nowMs, { expired: false })
  }

  /**
   * A consumer's fetch: only the leader answers, with the batches below the HW (Kafka's FetchIsolation
   * HIGH_WATERMARK); OFFSET_OUT_OF_RANGE past the log end.
   */
  fetch(request: ConsumerFetchRequest): ConsumerFetchResult {
    const errorCode = this.checkLeaderEpoch(request.currentLeaderEpoch, { requireLeader: true })
    if (errorCode !== ErrorCode.NONE) return { errorCode, highWatermark: -1n, batches: [] }
    if (request.fetchOffset < 0n || request.fetchOffset > this.log.logEndOffset)
      return { errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, highWatermark: this.hw, batches: [] }
    return {
      errorCode: ErrorCode.NONE,
      highWatermark: this.hw,
      batches: this.log.readBelow(request.fetchOffset, this.hw, request.maxRecords),
    }
  }

  /**
   * OffsetForLeaderEpoch v3-4 for this partition (Kafka's Partition.lastOffsetForLeaderEpoch, leader only): the
   * epoch cache's answer, after the currentLeaderEpoch check.
   */
  offsetForLeaderEpoch(currentLeaderEpoch: number, leaderEpoch: number): { errorCode: number } & EpochEndOffset {
    const errorCode = this.checkLeaderEpoch(currentLeaderEpoch, { requireLeader: true })
    if (errorCode !== ErrorCode.NONE) return { errorCode, epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET }
    return { errorCode, ...this.log.endOffsetForEpoch(leaderEpoch) }
  }

  /** A message from another replica. */
  receive(envelope: ReplicaEnvelope, nowMs: number): void {
    const message = envelope.message
    switch (message.type) {
      case 'ReplicaFetchRequest':
        this.respondToFetch(envelope as ReplicaEnvelope<ReplicaFetchRequest>, nowMs, { park: true })
        break
      case 'OffsetForLeaderEpochRequest':
        this.handleOffsetForLeaderEpoch(envelope as ReplicaEnvelope<OffsetForLeaderEpochRequest>)
        break
      case 'ReplicaFetchResponse':
        this.handleFetchResponse(message, nowMs)
        break
      case 'OffsetForLeaderEpochResponse':
        this.handleOffsetForLeaderEpochResponse(message, nowMs)
        break
    }
  }

  /** The controller's answer to this leader's AlterPartition (Kafka's handleAlterPartitionUpdate / error). */
  receiveAlterPartitionResponse(response: AlterPartitionResponse, nowMs: number): void {
    const leader = this.leader
    const pending = leader?.pendingIsr
    if (!leader || !pending || pending.request.correlationId !== response.correlationId) return
    if (response.errorCode === ErrorCode.NONE && response.state) {
      leader.pendingIsr = null
      const state = this.partitionState!
      // An answer older than the metadata already applied changes nothing.
      if (response.state.leaderEpoch === state.leaderEpoch && response.state.partitionEpoch > state.partitionEpoch) {
        this.partitionState = { ...state, isr: response.state.isr, partitionEpoch: response.state.partitionEpoch }
      }
      this.afterIsrChange(nowMs)
    } else if (
      response.errorCode === ErrorCode.INELIGIBLE_REPLICA ||
      response.errorCode === ErrorCode.OPERATION_NOT_ATTEMPTED
    ) {
      // Back to the committed ISR; the next fetch or ISR check may propose again.
      leader.pendingIsr = null
      this.afterIsrChange(nowMs)
    } else {
      // FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION: this leader's metadata is behind; newer metadata settles it.
      pending.awaitingMetadata = true
    }
  }

  /** Time passes: ISR shrink checks, AlterPartition and fetch retries, held fetches and produces that expire. */
  tick(nowMs: number): void {
    const leader = this.leader
    if (leader) {
      if (nowMs >= leader.nextIsrCheckMs) {
        leader.nextIsrCheckMs = nowMs + this.config.replicaLagTimeMaxMs / 2
        this.maybeShrinkIsr(nowMs)
        this.maybeIncrementHighWatermark(nowMs)
      }
      const pending = leader.pendingIsr
      if (pending && !pending.awaitingMetadata && nowMs >= pending.sentAtMs + this.config.requestTimeoutMs) {
        this.proposeIsr(pending.request.newIsr, nowMs)
      }
      this.completeParkedFetches(nowMs, { expired: true })
      this.completeProduces(nowMs)
    }
    const follower = this.follower
    if (follower?.inFlight && nowMs >= follower.inFlight.deadlineMs) {
      follower.inFlight = null
      follower.nextRequestMs = nowMs
    }
    this.sendFollowerRequest(nowMs)
  }

  /** When `tick` next has something to do (Infinity: nothing). */
  nextDeadlineMs(): number {
    let deadline = Infinity
    const leader = this.leader
    if (leader) {
      deadline = Math.min(deadline, leader.nextIsrCheckMs)
      const pending = leader.pendingIsr
      if (pending && !pending.awaitingMetadata)
        deadline = Math.min(deadline, pending.sentAtMs + this.config.requestTimeoutMs)
      for (const parked of leader.parked) deadline = Math.min(deadline, parked.deadlineMs)
      for (const waiting of leader.waiting) deadline = Math.min(deadline, waiting.deadlineMs)
    }
    const follower = this.follower
    if (follower && follower.leaderId >= 0 && follower.phase !== 'fenced') {
      deadline = Math.min(deadline, follower.inFlight ? follower.inFlight.deadlineMs : follower.nextRequestMs)
    }
    return deadline
  }

  /** Takes what to persist, then send and answer. */
  drain(): ReplicaOutput {
    const out = this.out
    this.out = emptyOutput()
    return out
  }

  // ---- leader ----

  private becomeLeader(state: PartitionState, nowMs: number): void {
    const previous = this.leader
    this.follower = null
    const end = this.log.logEndOffset
    // Cached at once, so a follower with entries of an epoch this leader never saw still finds where to truncate.
    const entry = this.log.assignEpoch(state.leaderEpoch, end)
    if (entry) this.out.writes.push({ type: 'assignEpoch', entry })
    const followers = new Map<number, FollowerState>()
    for (const id of state.replicas) {
      if (id === this.replicaId) continue
      // Kafka's resetReplicaState for a new leader, in every new epoch: Kafka keeps the positions when the same
      // broker is re-elected, but one whose metadata skipped an epoch led by another replica would then trust
      // positions its followers may since have truncated below. The HW waits for one fetch of each ISR member.
      followers.set(id, {
        logEndOffset: UNKNOWN_OFFSET,
        lastFetchLeaderLogEndOffset: UNKNOWN_OFFSET,
        lastFetchTimeMs: NEVER,
        lastCaughtUpTimeMs: state.isr.includes(id) ? nowMs : NEVER,
        lastSentHighWatermark: UNKNOWN_OFFSET,
      })
    }
    this.leader = {
      epochStartOffset: end,
      followers,
      pendingIsr: null,
      // A re-elected leader's waiting produces stay: their records are still in its log.
      waiting: previous?.waiting ?? [],
      parked: previous?.parked ?? [],
      nextIsrCheckMs: nowMs + this.config.replicaLagTimeMaxMs / 2,
    }
    // Fetches held in the previous epoch are answered now, fenced.
    this.completeParkedFetches(nowMs, { expired: true })
  }

  /** Same leader epoch, newer partition epoch: the committed ISR (or replicas) changed. */
  private updateLeader(state: PartitionState): void {
    const leader = this.leader!
    // The metadata is the committed state: any AlterPartition in flight is settled by it (or answered stale).
    leader.pendingIsr = null
    for (const id of state.replicas) {
      if (id !== this.replicaId && !leader.followers.has(id)) {
        leader.followers.set(id, {
          logEndOffset: UNKNOWN_OFFSET,
          lastFetchLeaderLogEndOffset: UNKNOWN_OFFSET,
          lastFetchTimeMs: NEVER,
          lastCaughtUpTimeMs: NEVER,
          lastSentHighWatermark: UNKNOWN_OFFSET,
        })
      }
    }
    for (const id of [...leader.followers.keys()]) if (!state.replicas.includes(id)) leader.followers.delete(id)
  }

  /** No longer leading: waiting produces fail and held fetches are answered. */
  private stopLeading(nowMs: number): void {
    const leader = this.leader
    if (!leader) return
    this.leader = null
    for (const waiting of leader.waiting) {
      this.out.produceResults.push({
        requestId: waiting.requestId,
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        baseOffset: -1n,
      })
    }
    for (const parked of leader.parked) this.respondToFetch(parked.envelope, nowMs, { park: false })
  }

  private checkLeaderEpoch(currentLeaderEpoch: number, options: { requireLeader: boolean }): number {
    const state = this.partitionState
    if (!state || !state.replicas.includes(this.replicaId)) return ErrorCode.NOT_LEADER_OR_FOLLOWER
    // Kafka's checkCurrentLeaderEpoch, before the leadership check.
    if (currentLeaderEpoch !== UNDEFINED_EPOCH) {
      if (currentLeaderEpoch < state.leaderEpoch) return ErrorCode.FENCED_LEADER_EPOCH
      if (currentLeaderEpoch > state.leaderEpoch) return ErrorCode.UNKNOWN_LEADER_EPOCH
    }
    if (options.requireLeader && !this.leader) return ErrorCode.NOT_LEADER_OR_FOLLOWER
    return ErrorCode.NONE
  }

  private handleOffsetForLeaderEpoch(envelope: ReplicaEnvelope<OffsetForLeaderEpochRequest>): void {
    const request = envelope.message
    const answer = this.offsetForLeaderEpoch(request.currentLeaderEpoch, request.leaderEpoch)
    const response: OffsetForLeaderEpochResponse = {
      type: 'OffsetForLeaderEpochResponse',
      correlationId: request.correlationId,
      errorCode: answer.errorCode,
      leaderEpoch: answer.epoch,
      endOffset: answer.endOffset,
    }
    this.out.messages.push({ source: this.replicaId, destination: envelope.source, message: response })
  }

  /**
   * Kafka's Partition.fetchRecords for a follower: the epoch checks, the divergence check, the follower's new
   * position (ISR expansion, HW), then the batches from its offset. With nothing to send and no newer HW, the fetch
   * is held (when `park`) until there is, or replica.fetch.wait.max.ms passes.
   */
  private respondToFetch(
    envelope: ReplicaEnvelope<ReplicaFetchRequest>,
    nowMs: number,
    options: { park: boolean },
  ): void {
    const request = envelope.message
    const respond = (fields: Pick<ReplicaFetchResponse, 'errorCode' | 'divergingEpoch' | 'batches'>): void => {
      const response: ReplicaFetchResponse = {
        type: 'ReplicaFetchResponse',
        correlationId: request.correlationId,
        leaderEpoch: this.leaderEpoch,
        highWatermark: this.hw,
        ...fields,
      }
      this.out.messages.push({ source: this.replicaId, destination: envelope.source, message: response })
    }
    let errorCode = this.checkLeaderEpoch(request.currentLeaderEpoch, { requireLeader: true })
    const follower = this.leader?.followers.get(request.replicaId)
    if (errorCode === ErrorCode.NONE && !follower) errorCode = ErrorCode.NOT_LEADER_OR_FOLLOWER
    if (errorCode !== ErrorCode.NONE || !follower) return respond({ errorCode, divergingEpoch: null, batches: [] })
    if (request.lastFetchedEpoch !== UNDEFINED_EPOCH) {
      const epochEnd = this.log.endOffsetForEpoch(request.lastFetchedEpoch)
      if (epochEnd.epoch < request.lastFetchedEpoch || epochEnd.endOffset < request.fetchOffset) {
        return respond({ errorCode: ErrorCode.NONE, divergingEpoch: epochEnd, batches: [] })
      }
    }
    if (request.fetchOffset < 0n || request.fetchOffset > this.log.logEndOffset)
      return respond({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, divergingEpoch: null, batches: [] })
    // A fetch behind the position already recorded in this epoch is a late duplicate: its follower has moved on
    // (its log below a recorded position never changes in an epoch), so it must not drag the position back.
    if (request.fetchOffset >= follower.logEndOffset)
      this.updateFollowerFetchState(request.replicaId, follower, request.fetchOffset, nowMs)
    const batches = this.log.read(request.fetchOffset, request.maxRecords)
    if (options.park && batches.length === 0 && this.hw <= follower.lastSentHighWatermark) {
      this.leader!.parked.push({ envelope, deadlineMs: nowMs + this.config.replicaFetchWaitMaxMs })
      return
    }
    follower.lastSentHighWatermark = this.hw
    respond({ errorCode: ErrorCode.NONE, divergingEpoch: null, batches })
  }

  /** Kafka's updateFollowerFetchState: position and lastCaughtUpTimeMs, then ISR expansion and the HW. */
  private updateFollowerFetchState(replicaId: number, state: FollowerState, fetchOffset: bigint, nowMs: number): void {
    const leaderEnd = this.log.logEndOffset
    const previousEnd = state.logEndOffset
    if (fetchOffset >= leaderEnd) {
      state.lastCaughtUpTimeMs = Math.max(state.lastCaughtUpTimeMs, nowMs)
    } else if (fetchOffset >= state.lastFetchLeaderLogEndOffset) {
      state.lastCaughtUpTimeMs = Math.max(state.lastCaughtUpTimeMs, state.lastFetchTimeMs)
    }
    state.logEndOffset = fetchOffset
    state.lastFetchLeaderLogEndOffset =
      leaderEnd > state.lastFetchLeaderLogEndOffset ? leaderEnd : state.lastFetchLeaderLogEndOffset
    state.lastFetchTimeMs = nowMs
    this.maybeExpandIsr(replicaId, state, nowMs)
    if (previousEnd !== fetchOffset && this.maybeIncrementHighWatermark(nowMs)) this.completeProduces(nowMs)
  }

  private isCaughtUp(state: FollowerState, leaderEnd: bigint, nowMs: number): boolean {
    return state.logEndOffset === leaderEnd || nowMs - state.lastCaughtUpTimeMs <= this.config.replicaLagTimeMaxMs
  }

  /** Kafka's maybeExpandIsr / isFollowerInSync: LEO >= HW and >= the start of this leader's epoch. */
  private maybeExpandIsr(replicaId: number, state: FollowerState, nowMs: number): void {
    const leader = this.leader!
    const isr = this.partitionState!.isr
    if (leader.pendingIsr || isr.includes(replicaId) || this.ineligible.includes(replicaId)) return
    if (state.logEndOffset >= this.hw && state.logEndOffset >= leader.epochStartOffset) {
      this.proposeIsr([...isr, replicaId], nowMs)
    }
  }

  /** Kafka's maybeShrinkIsr: ISR members not caught up for replica.lag.time.max.ms leave it. */
  private maybeShrinkIsr(nowMs: number): void {
    const leader = this.leader!
    if (leader.pendingIsr) return
    const isr = this.partitionState!.isr
    const leaderEnd = this.log.logEndOffset
    const outOfSync = isr.filter((id) => {
      if (id === this.replicaId) return false
      const state = leader.followers.get(id)
      return !state || !this.isCaughtUp(state, leaderEnd, nowMs)
    })
    if (outOfSync.length > 0) this.proposeIsr(isr.filter((id) => !outOfSync.includes(id)), nowMs)
  }

  private proposeIsr(newIsr: readonly number[], nowMs: number): void {
    const state = this.partitionState!
    const request: AlterPartitionRequest = {
      correlationId: this.nextCorrelationId++,
      brokerId: this.replicaId,
      leaderEpoch: state.leaderEpoch,
      partitionEpoch: state.partitionEpoch,
      newIsr,
    }
    this.leader!.pendingIsr = { request, sentAtMs: nowMs, awaitingMetadata: false }
    this.out.alterPartition.push(request)
  }

  /** The committed ISR or the pending change moved: the HW may move, waiting produces may be answered. */
  private afterIsrChange(nowMs: number): void {
    this.maybeIncrementHighWatermark(nowMs)
    this.completeProduces(nowMs)
  }

  /**
   * Kafka's maybeIncrementLeaderHW: the least LEO over the maximal ISR and the caught-up replicas that could join
   * it, never below the current HW, never while the committed ISR is below min.insync.replicas.
   */
  private maybeIncrementHighWatermark(nowMs: number): boolean {
    const leader = this.leader
    const state = this.partitionState
    if (!leader || !state || state.isr.length < this.minIsr(state)) return false
    const leaderEnd = this.log.logEndOffset
    const maximal = this.maximalIsr
    let candidate = leaderEnd
    for (const [id, follower] of leader.followers) {
      const holdsBack =
        maximal.includes(id) || (this.isCaughtUp(follower, leaderEnd, nowMs) && !this.ineligible.includes(id))
      if (holdsBack && follower.logEndOffset < candidate) candidate = follower.logEndOffset
    }
    if (candidate <= this.hw) return false
    this.setHighWatermark(candidate)
    this.completeParkedFetches(nowMs, { expired: false })
    return true
  }

  private setHighWatermark(offset: bigint): void {
    this.hw = offset
    this.out.writes.push({ type: 'highWatermark', offset })
  }

  /** The ISR size min.insync.replicas asks of this partition (effectiveMinIsr). */
  private minIsr(state: { readonly replicas: readonly number[] }): number {
    return effectiveMinIsr(this.config.minInsyncReplicas, state.replicas.length)
  }

  /** Kafka's DelayedProduce checks: acknowledged, refused after the append, or timed out. */
  private completeProduces(nowMs: number): void {
    const leader = this.leader
    if (!leader || leader.waiting.length === 0) return
    const underMinIsr = this.partitionState!.isr.length < this.minIsr(this.partitionState!)
    leader.waiting = leader.waiting.filter((waiting) => {
      let errorCode: number
      if (this.hw >= waiting.requiredOffset) errorCode = ErrorCode.NONE
      else if (underMinIsr) errorCode = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
      else if (nowMs >= waiting.deadlineMs) errorCode = ErrorCode.REQUEST_TIMED_OUT
      else return true
      const baseOffset = errorCode === ErrorCode.NONE ? waiting.baseOffset : -1n
      this.out.produceResults.push({ requestId: waiting.requestId, errorCode, baseOffset })
      return false
    })
  }

  /** Answers held fetches that now have batches or a newer HW (or, with `expired`, whose wait is over). */
  private completeParkedFetches(nowMs: number, options: { expired: boolean }): void {
    const leader = this.leader
    if (!leader || leader.parked.length === 0) return
    const parked = leader.parked
    leader.parked = []
    for (const fetch of parked) {
      const request = fetch.envelope.message
      const follower = leader.followers.get(request.replicaId)
      const ready =
        request.currentLeaderEpoch !== this.leaderEpoch ||
        !follower ||
        this.log.logEndOffset > request.fetchOffset ||
        this.hw > follower.lastSentHighWatermark ||
        (options.expired && nowMs >= fetch.deadlineMs)
      if (ready) this.respondToFetch(fetch.envelope, nowMs, { park: false })
      else leader.parked.push(fetch)
    }
  }

  // ---- follower ----

  private becomeFollower(state: PartitionState, nowMs: number): void {
    this.stopLeading(nowMs)
    const truncateFirst = this.config.truncation === 'offsetForLeaderEpoch' && this.log.latestEpoch !== UNDEFINED_EPOCH
    this.follower = {
      leaderId: state.leader,
      leaderEpoch: state.leaderEpoch,
      phase: truncateFirst ? 'truncating' : 'fetching',
      inFlight: null,
      nextRequestMs: nowMs,
    }
    this.sendFollowerRequest(nowMs)
  }

  private sendFollowerRequest(nowMs: number): void {
    const follower = this.follower
    if (!follower || follower.leaderId < 0 || follower.phase === 'fenced') return
    if (follower.inFlight || nowMs < follower.nextRequestMs) return
    const correlationId = this.nextCorrelationId++
    const message =
      follower.phase === 'truncating'
        ? {
            type: 'OffsetForLeaderEpochRequest' as const,
            correlationId,
            replicaId: this.replicaId,
            currentLeaderEpoch: follower.leaderEpoch,
            leaderEpoch: this.log.latestEpoch,
          }
        : {
            type: 'ReplicaFetchRequest' as const,
            correlationId,
            replicaId: this.replicaId,
            currentLeaderEpoch: follower.leaderEpoch,
            fetchOffset: this.log.logEndOffset,
            lastFetchedEpoch: this.log.latestEpoch,
            maxRecords: this.config.replicaFetchMaxRecords,
          }
    follower.inFlight = { correlationId, deadlineMs: nowMs + this.config.requestTimeoutMs }
    this.out.messages.push({ source: this.replicaId, destination: follower.leaderId, message })
  }

  /** The response to the request in flight, or null (a late, duplicated or other incarnation's response). */
  private takeInFlight(correlationId: number): FollowerSide | null {
    const follower = this.follower
    if (!follower?.inFlight || follower.inFlight.correlationId !== correlationId) return null
    follower.inFlight = null
    return follower
  }

  /** An error from the leader: a newer epoch there waits for metadata; anything else is retried after a backoff. */
  private followerError(follower: FollowerSide, errorCode: number, nowMs: number): void {
    if (errorCode === ErrorCode.FENCED_LEADER_EPOCH) follower.phase = 'fenced'
    else follower.nextRequestMs = nowMs + this.config.replicaFetchBackoffMs
  }

  private handleFetchResponse(response: ReplicaFetchResponse, nowMs: number): void {
    const follower = this.takeInFlight(response.correlationId)
    if (!follower) return
    if (response.errorCode !== ErrorCode.NONE) return this.followerError(follower, response.errorCode, nowMs)
    if (response.divergingEpoch) {
      this.truncateToLeader(response.divergingEpoch)
    } else {
      for (const batch of response.batches) {
        this.log.append(batch)
        this.out.writes.push({ type: 'append', batch })
      }
      const end = this.log.logEndOffset
      const hw = response.highWatermark < end ? response.highWatermark : end
      if (hw > this.hw) this.setHighWatermark(hw)
    }
    follower.nextRequestMs = nowMs
    this.sendFollowerRequest(nowMs)
  }

  private handleOffsetForLeaderEpochResponse(response: OffsetForLeaderEpochResponse, nowMs: number): void {
    const follower = this.takeInFlight(response.correlationId)
    if (!follower) return
    if (response.errorCode !== ErrorCode.NONE) return this.followerError(follower, response.errorCode, nowMs)
    const complete = this.truncateToLeader({ epoch: response.leaderEpoch, endOffset: response.endOffset })
    if (complete) follower.phase = 'fetching'
    follower.nextRequestMs = nowMs
    this.sendFollowerRequest(nowMs)
  }

  /**
   * Truncates to where this log leaves the leader's, given the leader's end offset for an epoch (Kafka's
   * AbstractFetcherThread.getOffsetTruncationState). Returns false when the leader named an epoch this replica does
   * not have: it truncated to the end of its own largest earlier epoch and must ask again.
   */
  private truncateToLeader(leaderEnd: EpochEndOffset): boolean {
    const { offset: target, complete } = truncationTarget(leaderEnd, {
      logEndOffset: this.log.logEndOffset,
      highWatermark: this.hw,
      ownEnd: (epoch) => this.log.endOffsetForEpoch(epoch),
    })
    if (this.log.truncateTo(target)) this.out.writes.push({ type: 'truncate', endOffset: target })
    // Only a leader from outside the ISR (unclean.leader.election.enable) can lack records below this HW: Kafka's
    // follower then gives them up and lowers its HW (UnifiedLog.truncateTo), and so does this one.
    if (target < this.hw) this.setHighWatermark(target)
    return complete
  }
}

function emptyOutput(): ReplicaOutput {
  return { writes: [], messages: [], alterPartition: [], produceResults: [] }
}
