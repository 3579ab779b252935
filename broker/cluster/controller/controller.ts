/**
 * The controller's state machine on the metadata log (the parts of Kafka's QuorumController that Brook has: broker
 * registration and heartbeats as in ClusterControlManager and BrokerHeartbeatManager, topics and leader election as
 * in ReplicationControlManager and PartitionChangeBuilder, producer-id blocks as in ProducerIdControlManager).
 *
 * Every quorum member runs one. Each applies the committed log to its image (image.ts); the one whose Raft member
 * leads, once that member has applied everything before its epoch, is active: it turns requests into records,
 * proposes them through the RaftNode in its epoch, and answers the next request from its working image, the
 * committed image with its own proposals replayed on top (Kafka's "uncommitted state"):
 *
 *   committed image ──(committed batches)──> committed image'          every member
 *         │
 *         └── working image = committed + proposals not yet committed   the active controller only
 *
 *   inactive ──leaderChange(self, epoch)──> active(epoch) ──leaderChange(other) / restore──> inactive
 *               working := committed                        working, proposals, sessions dropped
 *
 * A proposal of an epoch either commits in that epoch, in the order proposed, or is lost with the leadership (a
 * batch of another epoch takes its offsets), so the working image is always the committed image plus a suffix of
 * proposals that may still commit; losing leadership drops that suffix, and the next active controller decides
 * from its own committed image. A request is done when its last offset is in the committed image
 * (`image.provenance.offset >= lastOffset`) in the epoch it was proposed in.
 *
 * Invariants the controller keeps in every committed image (besides the image's own):
 * - a fenced or unregistered broker leads nothing: the batch that fences a broker (a missed session, a request to
 *   be fenced, a new registration of its id) moves leadership of its partitions in the same batch;
 * - a new leader comes from the ISR, in replica order, and only a live (registered, unfenced) broker leads; with
 *   none such the partition has no leader (-1) until an ISR member is live again. Only a topic whose
 *   `unclean.leader.election.enable` is true may elect a live replica outside the ISR, which becomes the ISR alone;
 * - the ISR shrinks by a fenced broker, never to empty (the last member stays: it holds everything committed);
 *   otherwise only the partition's leader changes it (AlterPartition), at the current leader and partition
 *   epochs, to live replicas that include itself, and that never changes the leader or its epoch;
 * - a broker epoch is the offset of its registration record, so it only grows;
 * - producer-id blocks of PRODUCER_ID_BLOCK_SIZE are handed out in order, each once.
 */
import { ErrorCode } from '../../../protocol/errors.js'
import { ResourceType } from '../../../protocol/constants.js'
import type { CommittedBatch, LeaderAndEpoch, ProposeResult, RaftStateMachine } from '../raft/node.js'
import type { RaftSnapshot } from '../../../storage/raft-store.js'
import {
  configResourceKey,
  MetadataDelta,
  MetadataImage,
  NO_LEADER,
  NO_LEADER_CHANGE,
  type BrokerEndpoint,
  type BrokerRegistration,
  type PartitionRegistration,
  type TopicImage,
} from '../metadata/image.js'
import { decodeMetadataRecord, encodeMetadataRecord, metadataRecord, type MetadataRecord } from '../metadata/records.js'
import { encodeMetadataSnapshot, restoreMetadataSnapshot } from '../metadata/snapshot.js'
import { topicNameProblem } from '../../topics.js'

/** Producer ids per AllocateProducerIds block (ProducerIdControlManager's block size, KIP-730). */
export const PRODUCER_ID_BLOCK_SIZE = 1000n

/** The metadata.version feature level the first active controller writes (bootstraps) into an empty log. */
export const BOOTSTRAP_METADATA_VERSION = 1

/** The log the controller proposes to: a RaftNode (its propose and logEndOffset). */
export interface MetadataLog {
  readonly logEndOffset: bigint
  propose(records: readonly Buffer[], nowMs: number, options: { epoch?: number }): ProposeResult
}

export interface QuorumControllerOptions {
  /** This quorum member's node id: the controller is active while the member leads. */
  nodeId: number
  /** The RaftNode this controller's member is (read when proposing, never from inside apply). */
  log: () => MetadataLog
  /** A new topic id (a random UUID; seeded in simulation). */
  newTopicId: () => string
  /** `broker.session.timeout.ms`: a broker not heard from for this long is fenced (Kafka: 9000). */
  brokerSessionTimeoutMs?: number
  /** `default.replication.factor`, for a CreateTopics replicationFactor of -1 (Kafka: 1). */
  defaultReplicationFactor?: number
  /** `num.partitions`, for a CreateTopics numPartitions of -1 (Kafka: 1). */
  defaultNumPartitions?: number
  /** `auto.leader.rebalance.enable`: move leadership back to preferred replicas periodically (Kafka: true). */
  autoLeaderRebalanceEnable?: boolean
  /** `leader.imbalance.check.interval.seconds`, in ms: how often (Kafka: 300 s). */
  leaderImbalanceCheckIntervalMs?: number
}

/**
 * What an operation answers: on success, the epoch and last offset of its proposal (lastOffset -1 when it proposed
 * nothing) and its data; else a Kafka error code (NOT_CONTROLLER on any member but the active controller).
 */
export type ControllerResult<T> = ({ readonly ok: true; readonly epoch: number; readonly lastOffset: bigint } & T) | ControllerError

export interface ControllerError {
  readonly ok: false
  readonly errorCode: number
  readonly message: string
}

export interface BrokerRegistrationRequest {
  readonly brokerId: number
  readonly incarnationId: string
  readonly endPoints: readonly BrokerEndpoint[]
  readonly rack: string | null
}

export interface BrokerHeartbeatRequest {
  readonly brokerId: number
  readonly brokerEpoch: bigint
  /** The highest metadata offset the broker applied. */
  readonly currentMetadataOffset: bigint
  readonly wantFence: boolean
}

/** One partition of an AlterPartition request: its leader's new ISR, at the epochs the leader knows. */
export interface AlterPartitionRequest {
  readonly brokerId: number
  readonly brokerEpoch: bigint
  readonly topicId: string
  readonly partitionIndex: number
  readonly leaderEpoch: number
  readonly partitionEpoch: number
  readonly newIsr: readonly number[]
}

export interface CreateTopicRequest {
  readonly name: string
  /** -1: `num.partitions`. */
  readonly numPartitions: number
  /** -1: `default.replication.factor`. */
  readonly replicationFactor: number
  readonly configs?: Readonly<Record<string, string>>
}

const DEFAULTS = {
  brokerSessionTimeoutMs: 9000,
  defaultReplicationFactor: 1,
  defaultNumPartitions: 1,
  autoLeaderRebalanceEnable: true,
  leaderImbalanceCheckIntervalMs: 300_000,
} as const

export class QuorumController implements RaftStateMachine {
  private committed = MetadataImage.EMPTY
  /** Set while active: the epoch it leads, the working image, the last offset it proposed. */
  private active: { epoch: number; working: MetadataImage; lastProposed: bigint } | null = null
  /** Active only: broker id -> when it was last heard from (ms); a broker missing here is given a full session. */
  private readonly lastContactMs = new Map<number, number>()
  /**
   * Active only: the brokers whose current incarnation registered or heartbeat to this controller. The others hold
   * only the session a newly active controller grants every registration, which no process has yet shown to be alive.
   */
  private readonly heardFrom = new Set<number>()
  /** Active only: when to look for partitions not led by their preferred replica next (null: one interval from now). */
  private nextRebalanceMs: number | null = null
  private readonly options: Required<QuorumControllerOptions>

  constructor(options: QuorumControllerOptions) {
    this.options = { ...DEFAULTS, ...options }
  }

  /** The image of the committed log. */
  get image(): MetadataImage {
    return this.committed
  }

  /** The epoch this controller is active in, or null. */
  get activeEpoch(): number | null {
    return this.active?.epoch ?? null
  }

  // ---- RaftStateMachine -------------------------------------------------------------------------------------------

  apply(batch: CommittedBatch): void {
    const delta = new MetadataDelta(this.committed)
    for (const bytes of batch.records) delta.replay(decodeMetadataRecord(bytes))
    this.committed = delta.apply({ offset: batch.lastOffset, epoch: batch.epoch })
    // Everything proposed is in: the working image is the committed one (and keeps no stale copy).
    if (this.active && this.active.lastProposed <= batch.lastOffset) this.active.working = this.committed
  }

  snapshot(): Buffer {
    return encodeMetadataSnapshot(this.committed)
  }

  restore(snapshot: RaftSnapshot): void {
    this.committed = restoreMetadataSnapshot(snapshot.data, { offset: snapshot.endOffset - 1n, epoch: snapshot.epoch })
    this.deactivate()
  }

  /** The member reports itself as leader only once it applied everything before its epoch: the image is complete. */
  leaderChange(leader: LeaderAndEpoch): void {
    this.deactivate()
    if (leader.leaderId === this.options.nodeId) {
      this.active = { epoch: leader.epoch, working: this.committed, lastProposed: this.committed.provenance.offset }
    }
  }

  private deactivate(): void {
    this.active = null
    this.lastContactMs.clear()
    this.heardFrom.clear()
    this.nextRebalanceMs = null
  }

  // ---- operations (active controller only; each answers NOT_CONTROLLER elsewhere) ---------------------------------

  /**
   * Periodic work at `nowMs`: bootstraps an empty log, fences each unfenced broker whose session expired (one batch
   * per broker), and every `leader.imbalance.check.interval.seconds` elects the preferred replica of each partition
   * it does not lead, where it is live and in the ISR (one batch). Returns the number of batches proposed.
   */
  tick(nowMs: number): number {
    const active = this.active
    if (!active) return 0
    let proposed = 0
    // Nothing was ever written (the log holds only leader changes): write the bootstrap records, as Kafka does.
    if (active.working.provenance.offset < 0n) {
      if (this.propose([metadataRecord('FeatureLevelRecord', { name: 'metadata.version', featureLevel: BOOTSTRAP_METADATA_VERSION })], nowMs).ok) proposed++
    }
    for (const broker of active.working.brokers.values()) {
      // A proposal that failed ended the leadership.
      if (!this.active) break
      if (broker.fenced) continue
      const last = this.lastContactMs.get(broker.brokerId)
      if (last === undefined) {
        this.lastContactMs.set(broker.brokerId, nowMs)
        continue
      }
      if (nowMs - last <= this.options.brokerSessionTimeoutMs) continue
      const fence = metadataRecord('FenceBrokerRecord', { id: broker.brokerId, epoch: broker.brokerEpoch })
      if (this.propose(this.withLeadershipMoves([fence], broker.brokerId), nowMs).ok) proposed++
    }
    if (this.active && this.options.autoLeaderRebalanceEnable) {
      this.nextRebalanceMs ??= nowMs + this.options.leaderImbalanceCheckIntervalMs
      if (nowMs >= this.nextRebalanceMs) {
        this.nextRebalanceMs = nowMs + this.options.leaderImbalanceCheckIntervalMs
        const elections = this.preferredLeaderElections()
        if (elections.length > 0 && this.propose(elections, nowMs).ok) proposed++
      }
    }
    return proposed
  }

  /**
   * BrokerRegistration (Kafka's ClusterControlManager.registerBroker): the broker starts fenced at a new epoch.
   * Another incarnation of the id is refused while its session is live, as in Kafka, but only a session that
   * incarnation renewed with this controller counts. The full session a newly active controller grants every
   * unfenced registration keeps live brokers from being fenced across a failover; it is not a sign of life. After a
   * restart of the whole cluster every node is a new incarnation whose old registration was never fenced (no
   * controller was left to fence it), and Kafka makes each wait out that granted session (broker.session.timeout.ms),
   * while the image still names it leader and it serves nothing (NOT_LEADER_OR_FOLLOWER). Here it registers at once,
   * and leadership moves off its old incarnation as on any re-registration.
   */
  registerBroker(request: BrokerRegistrationRequest, nowMs: number): ControllerResult<{ brokerEpoch: bigint }> {
    const active = this.active
    if (!active) return notController()
    const existing = active.working.brokers.get(request.brokerId)
    const last = this.lastContactMs.get(request.brokerId)
    if (
      existing &&
      existing.incarnationId !== request.incarnationId &&
      !existing.fenced &&
      this.heardFrom.has(request.brokerId) &&
      last !== undefined &&
      nowMs - last <= this.options.brokerSessionTimeoutMs
    ) {
      return failure('DUPLICATE_BROKER_REGISTRATION', `broker ${request.brokerId} is registered by another incarnation with a live session`)
    }
    const brokerEpoch = this.options.log().logEndOffset
    const register = metadataRecord('RegisterBrokerRecord', {
      brokerId: request.brokerId,
      incarnationId: request.incarnationId,
      brokerEpoch,
      endPoints: request.endPoints.map((endpoint) => ({ ...endpoint })),
      features: [],
      rack: request.rack,
      fenced: true,
    })
    const result = this.propose(this.withLeadershipMoves([register], request.brokerId), nowMs)
    if (!result.ok) return result
    if (result.baseOffset !== brokerEpoch) throw new Error(`the registration landed at ${result.baseOffset}, not at the log end ${brokerEpoch}`)
    this.lastContactMs.set(request.brokerId, nowMs)
    this.heardFrom.add(request.brokerId)
    return { ok: true, epoch: result.epoch, lastOffset: result.lastOffset, brokerEpoch }
  }

  /**
   * BrokerHeartbeat (Kafka's BrokerHeartbeatManager and ClusterControlManager): renews the session; a fenced broker
   * that caught up to its registration is unfenced (and leads the leaderless partitions whose ISR it is in), an
   * unfenced one that asks to be fenced is. The answer's `lastOffset` is -1 when nothing was proposed.
   */
  heartbeat(request: BrokerHeartbeatRequest, nowMs: number): ControllerResult<{ isCaughtUp: boolean; isFenced: boolean }> {
    const active = this.active
    if (!active) return notController()
    const broker = registeredBroker(active.working, request)
    if ('ok' in broker) return broker
    this.lastContactMs.set(request.brokerId, nowMs)
    this.heardFrom.add(request.brokerId)
    const isCaughtUp = request.currentMetadataOffset >= broker.brokerEpoch
    let records: MetadataRecord[] = []
    if (broker.fenced && !request.wantFence && isCaughtUp) {
      records = this.withLeadershipGained([metadataRecord('UnfenceBrokerRecord', { id: broker.brokerId, epoch: broker.brokerEpoch })])
    } else if (!broker.fenced && request.wantFence) {
      records = this.withLeadershipMoves([metadataRecord('FenceBrokerRecord', { id: broker.brokerId, epoch: broker.brokerEpoch })], broker.brokerId)
    }
    if (records.length === 0) return { ok: true, epoch: active.epoch, lastOffset: -1n, isCaughtUp, isFenced: broker.fenced }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, isCaughtUp, isFenced: !broker.fenced }
  }

  /**
   * CreateTopics for one topic: replicas placed over the live brokers so leaders spread (each partition's leader is
   * the next live broker after the previous partition's, continuing from the cluster's partition count). Errors:
   * INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (more than the live
   * brokers, or below 1).
   */
  createTopic(request: CreateTopicRequest, nowMs: number): ControllerResult<{ topicId: string; assignments: number[][] }> {
    const active = this.active
    if (!active) return notController()
    const image = active.working
    const nameProblem = topicNameProblem(request.name)
    if (nameProblem) return failure('INVALID_TOPIC_EXCEPTION', nameProblem)
    if (image.topic(request.name)) return failure('TOPIC_ALREADY_EXISTS', `topic '${request.name}' already exists`)
    const numPartitions = request.numPartitions === -1 ? this.options.defaultNumPartitions : request.numPartitions
    const replicationFactor = request.replicationFactor === -1 ? this.options.defaultReplicationFactor : request.replicationFactor
    if (!Number.isInteger(numPartitions) || numPartitions < 1) return failure('INVALID_PARTITIONS', `${numPartitions} partitions`)
    const live = image.liveBrokers()
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > live.length) {
      return failure('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} with ${live.length} live brokers`)
    }
    const topicId = this.options.newTopicId()
    const records: MetadataRecord[] = [metadataRecord('TopicRecord', { name: request.name, topicId })]
    let start = 0
    for (const topic of image.topicsById.values()) start += topic.partitions.size
    const assignments: number[][] = []
    for (let partitionId = 0; partitionId < numPartitions; partitionId++) {
      const first = (start + partitionId) % live.length
      const replicas = Array.from({ length: replicationFactor }, (_, i) => live[(first + i) % live.length]!)
      assignments.push(replicas)
      records.push(
        metadataRecord('PartitionRecord', {
          partitionId,
          topicId,
          replicas,
          isr: replicas,
          removingReplicas: [],
          addingReplicas: [],
          leader: replicas[0]!,
          leaderEpoch: 0,
          partitionEpoch: 0,
        }),
      )
    }
    for (const [name, value] of Object.entries(request.configs ?? {})) {
      records.push(metadataRecord('ConfigRecord', { resourceType: ResourceType.TOPIC, resourceName: request.name, name, value }))
    }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, topicId, assignments }
  }

  /**
   * AlterPartition for one partition (KIP-497, Kafka's ReplicationControlManager.alterPartition): the leader
   * replaces the ISR. Errors: BROKER_ID_NOT_REGISTERED or STALE_BROKER_EPOCH (the sender's registration),
   * UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (the sender does not lead the partition, or the new
   * ISR leaves it out or repeats a broker), FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION (a partitionEpoch other than
   * the current one: the partition changed since the leader learned it), INELIGIBLE_REPLICA (a member that is not a
   * replica, or not a live broker).
   */
  alterPartition(
    request: AlterPartitionRequest,
    nowMs: number,
  ): ControllerResult<{ leaderId: number; leaderEpoch: number; isr: readonly number[]; partitionEpoch: number }> {
    const active = this.active
    if (!active) return notController()
    const image = active.working
    const broker = registeredBroker(image, request)
    if ('ok' in broker) return broker
    const topic = image.topicsById.get(request.topicId)
    if (!topic) return failure('UNKNOWN_TOPIC_ID', `no topic has id ${request.topicId}`)
    const partition = topic.partitions.get(request.partitionIndex)
    if (!partition) return failure('UNKNOWN_TOPIC_OR_PARTITION', `'${topic.name}' has no partition ${request.partitionIndex}`)
    const where = `partition ${request.partitionIndex} of '${topic.name}'`
    if (partition.leader !== request.brokerId) return failure('INVALID_REQUEST', `broker ${request.brokerId} does not lead ${where} (${partition.leader} does)`)
    if (request.leaderEpoch !== partition.leaderEpoch) {
      return failure('FENCED_LEADER_EPOCH', `${where} is at leader epoch ${partition.leaderEpoch}, not ${request.leaderEpoch}`)
    }
    if (request.partitionEpoch !== partition.partitionEpoch) {
      return failure('INVALID_UPDATE_VERSION', `${where} is at partition epoch ${partition.partitionEpoch}, not ${request.partitionEpoch}`)
    }
    const newIsr = [...request.newIsr]
    if (!newIsr.includes(partition.leader) || new Set(newIsr).size !== newIsr.length) {
      return failure('INVALID_REQUEST', `the new isr [${newIsr}] of ${where} must hold its leader ${partition.leader}, each broker once`)
    }
    const ineligible = newIsr.filter((id) => !partition.replicas.includes(id) || image.brokers.get(id)?.fenced !== false)
    if (ineligible.length > 0) return failure('INELIGIBLE_REPLICA', `[${ineligible}] of the new isr of ${where} are not live replicas`)
    const change = metadataRecord('PartitionChangeRecord', { partitionId: request.partitionIndex, topicId: topic.topicId, isr: newIsr })
    const result = this.propose([change], nowMs)
    if (!result.ok) return result
    return { ...result, leaderId: partition.leader, leaderEpoch: partition.leaderEpoch, isr: newIsr, partitionEpoch: partition.partitionEpoch + 1 }
  }

  /** DeleteTopics for one topic (its configs go with it). Errors: UNKNOWN_TOPIC_OR_PARTITION. */
  deleteTopic(name: string, nowMs: number): ControllerResult<{ topicId: string }> {
    const active = this.active
    if (!active) return notController()
    const topic = active.working.topic(name)
    if (!topic) return failure('UNKNOWN_TOPIC_OR_PARTITION', `topic '${name}' does not exist`)
    const result = this.propose([metadataRecord('RemoveTopicRecord', { topicId: topic.topicId })], nowMs)
    if (!result.ok) return result
    return { ...result, topicId: topic.topicId }
  }

  /**
   * AllocateProducerIds (KIP-730): the next block of PRODUCER_ID_BLOCK_SIZE ids for a registered broker at its
   * current epoch. Errors: BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH.
   */
  allocateProducerIds(
    request: { brokerId: number; brokerEpoch: bigint },
    nowMs: number,
  ): ControllerResult<{ producerIdStart: bigint; producerIdLen: number }> {
    const active = this.active
    if (!active) return notController()
    const broker = registeredBroker(active.working, request)
    if ('ok' in broker) return broker
    const producerIdStart = active.working.producerIds.nextProducerId
    const record = metadataRecord('ProducerIdsRecord', {
      brokerId: request.brokerId,
      brokerEpoch: request.brokerEpoch,
      nextProducerId: producerIdStart + PRODUCER_ID_BLOCK_SIZE,
    })
    const result = this.propose([record], nowMs)
    if (!result.ok) return result
    return { ...result, producerIdStart, producerIdLen: Number(PRODUCER_ID_BLOCK_SIZE) }
  }

  // ---- internals --------------------------------------------------------------------------------------------------

  /**
   * Proposes `records` as one batch in the active epoch and replays them onto the working image. A record that
   * does not apply to the working image is a bug of this controller and throws before anything is proposed.
   */
  private propose(records: MetadataRecord[], nowMs: number): ControllerResult<{ baseOffset: bigint }> {
    const active = this.active!
    // Replayed first on a copy: a record that does not apply throws here, before the log has it.
    const check = new MetadataDelta(active.working)
    for (const record of records) check.replay(record)
    const result = this.options.log().propose(records.map((record) => encodeMetadataRecord(record)), nowMs, { epoch: active.epoch })
    if (!result.ok) {
      this.deactivate()
      return failure('NOT_CONTROLLER', `this node no longer leads the metadata log (epoch ${result.epoch})`)
    }
    // The propose call may have applied earlier batches (and reset the working image to the committed one): the
    // new records go on top of whatever the working image is now.
    const working = new MetadataDelta(this.active!.working)
    for (const record of records) working.replay(record)
    this.active!.working = working.apply({ offset: result.lastOffset, epoch: result.epoch })
    this.active!.lastProposed = result.lastOffset
    return { ok: true, epoch: result.epoch, lastOffset: result.lastOffset, baseOffset: result.baseOffset }
  }

  /** The image `records` make of the working image (to decide the elections that go with them). */
  private after(records: readonly MetadataRecord[]): MetadataImage {
    const active = this.active!
    const delta = new MetadataDelta(active.working)
    for (const record of records) delta.replay(record)
    return delta.apply(active.working.provenance)
  }

  /**
   * `records` (which fence or re-register `brokerId`) and the partition changes that go with them: the broker leaves
   * every ISR it is in (unless it is the last member) and every partition it led gets a new leader.
   */
  private withLeadershipMoves(records: MetadataRecord[], brokerId: number): MetadataRecord[] {
    const image = this.after(records)
    const changes: MetadataRecord[] = []
    for (const topic of image.topicsById.values()) {
      for (const [partitionId, partition] of topic.partitions) {
        if (!partition.isr.includes(brokerId) && partition.leader !== brokerId) continue
        const isr = partition.isr.length > 1 ? partition.isr.filter((id) => id !== brokerId) : partition.isr
        const change = electLeader(image, topic, partition, isr)
        if (change) changes.push(partitionChange(topic, partitionId, change, partition))
      }
    }
    return [...records, ...changes]
  }

  /**
   * Preferred-leader elections (Kafka's auto leader rebalance): each partition whose first replica is live and in
   * the ISR but does not lead gets it as leader, with a bumped leaderEpoch.
   */
  private preferredLeaderElections(): MetadataRecord[] {
    const image = this.active!.working
    const changes: MetadataRecord[] = []
    for (const topic of image.topicsById.values()) {
      for (const [partitionId, partition] of topic.partitions) {
        const preferred = partition.replicas[0]!
        if (partition.leader === preferred || !partition.isr.includes(preferred) || image.brokers.get(preferred)?.fenced !== false) continue
        changes.push(metadataRecord('PartitionChangeRecord', { partitionId, topicId: topic.topicId, leader: preferred }))
      }
    }
    return changes
  }

  /** `records` (which unfence a broker) and elections for the partitions without a leader that now have one. */
  private withLeadershipGained(records: MetadataRecord[]): MetadataRecord[] {
    const image = this.after(records)
    const changes: MetadataRecord[] = []
    for (const topic of image.topicsById.values()) {
      for (const [partitionId, partition] of topic.partitions) {
        if (partition.leader !== NO_LEADER) continue
        const change = electLeader(image, topic, partition, partition.isr)
        if (change) changes.push(partitionChange(topic, partitionId, change, partition))
      }
    }
    return [...records, ...changes]
  }

}

/** The partition's ISR and leader after `isr` replaces its ISR, or null when neither changes. */
function electLeader(
  image: MetadataImage,
  topic: TopicImage,
  partition: PartitionRegistration,
  isr: readonly number[],
): { isr: readonly number[]; leader: number } | null {
  const live = (id: number): boolean => image.brokers.get(id)?.fenced === false
  let leader = partition.leader !== NO_LEADER && isr.includes(partition.leader) && live(partition.leader) ? partition.leader : NO_LEADER
  let newIsr = isr
  if (leader === NO_LEADER) {
    leader = partition.replicas.find((id) => isr.includes(id) && live(id)) ?? NO_LEADER
    if (leader === NO_LEADER && uncleanElectionEnabled(image, topic)) {
      leader = partition.replicas.find(live) ?? NO_LEADER
      if (leader !== NO_LEADER) newIsr = [leader]
    }
  }
  if (leader === partition.leader && sameMembers(newIsr, partition.isr)) return null
  return { isr: newIsr, leader }
}

function partitionChange(
  topic: TopicImage,
  partitionId: number,
  change: { isr: readonly number[]; leader: number },
  partition: PartitionRegistration,
): MetadataRecord {
  return metadataRecord('PartitionChangeRecord', {
    partitionId,
    topicId: topic.topicId,
    isr: sameMembers(change.isr, partition.isr) ? null : [...change.isr],
    leader: change.leader === partition.leader ? NO_LEADER_CHANGE : change.leader,
  })
}

function uncleanElectionEnabled(image: MetadataImage, topic: TopicImage): boolean {
  return image.configs.get(configResourceKey(ResourceType.TOPIC, topic.name))?.get('unclean.leader.election.enable') === 'true'
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i])
}

/** The sender's registration, or BROKER_ID_NOT_REGISTERED / STALE_BROKER_EPOCH when it is not current. */
function registeredBroker(image: MetadataImage, sender: { brokerId: number; brokerEpoch: bigint }): BrokerRegistration | ControllerError {
  const broker = image.brokers.get(sender.brokerId)
  if (!broker) return failure('BROKER_ID_NOT_REGISTERED', `broker ${sender.brokerId} is not registered`)
  if (broker.brokerEpoch !== sender.brokerEpoch) {
    return failure('STALE_BROKER_EPOCH', `broker ${sender.brokerId} is registered at epoch ${broker.brokerEpoch}, not ${sender.brokerEpoch}`)
  }
  return broker
}

function notController(): ControllerError {
  return failure('NOT_CONTROLLER', 'this node is not the active controller')
}

function failure(name: keyof typeof ErrorCode, message: string): ControllerError {
  return { ok: false, errorCode: ErrorCode[name], message }
}
