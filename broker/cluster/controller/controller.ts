/**
 * The controller's state machine on the metadata log (the parts of Kafka's QuorumController that Brook has: broker
 * registration, heartbeats and unregistration as in ClusterControlManager and BrokerHeartbeatManager, topics, new
 * partitions and leader election as in ReplicationControlManager and PartitionChangeBuilder, topic configs as in
 * ConfigurationControlManager, producer-id blocks as in ProducerIdControlManager).
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
 *   be fenced, a new registration of its id) or unregisters it moves leadership of its partitions in the same batch;
 * - a new leader comes from the ISR, in replica order, and only a live (registered, unfenced) broker leads; with
 *   none such the partition has no leader (-1) until an ISR member is live again. Only a topic whose
 *   `unclean.leader.election.enable` is true, or an ElectLeaders request of type UNCLEAN, may elect a live replica
 *   outside the ISR, which becomes the ISR alone;
 * - the ISR shrinks by a fenced broker, never to empty (the last member stays: it holds everything committed);
 *   otherwise only the partition's leader changes it (AlterPartition), at the current leader and partition
 *   epochs, to live replicas that include itself, and that never changes the leader or its epoch;
 * - a new partition (a new topic's, or one CreatePartitions adds) starts at leader and partition epoch 0, its ISR
 *   the live brokers among its replicas (all of them when the controller placed it), led by the first of them;
 * - a broker epoch is the offset of its registration record, so it only grows;
 * - only the cluster's nodes register, each with a plausible client listener (`registrationProblem`);
 * - producer-id blocks of PRODUCER_ID_BLOCK_SIZE are handed out in order, each once.
 */
import { quote } from '../../quote.js'
import { ErrorCode, KafkaError } from '../../../protocol/errors.js'
import { ElectionType, ResourceType } from '../../../protocol/constants.js'
import type { CommittedBatch, LeaderAndEpoch, ProposeResult, RaftStateMachine } from '../raft/node.js'
import type { RaftSnapshot } from '../../../storage/raft-store.js'
import {
  configResourceKey,
  MetadataDelta,
  MetadataImage,
  NO_LEADER,
  NO_LEADER_CHANGE,
  reassigning,
  CLIENT_LISTENER_NAME,
  clientEndpoint,
  type BrokerEndpoint,
  type BrokerRegistration,
  type PartitionRegistration,
  type TopicImage,
  resourceConfigs,
} from '../metadata/image.js'
import { decodeMetadataRecord, encodeMetadataRecord, metadataRecord, type MetadataRecord } from '../metadata/records.js'
import { encodeMetadataSnapshot, restoreMetadataSnapshot } from '../metadata/snapshot.js'
import { partitionCountProblem, topicCollision, topicNameProblem } from '../../topics.js'

/** Producer ids per AllocateProducerIds block (ProducerIdControlManager's block size, KIP-730). */
export const PRODUCER_ID_BLOCK_SIZE = 1000n

/** The metadata.version feature level the first active controller writes (bootstraps) into an empty log. */
export const BOOTSTRAP_METADATA_VERSION = 1

/** The longest host a broker may register for a listener, in characters (a DNS name's limit, RFC 1035). */
export const MAX_HOST_LENGTH = 255

/** The log the controller proposes to: a RaftNode (its propose and logEndOffset). */
export interface MetadataLog {
  readonly logEndOffset: bigint
  propose(records: readonly Buffer[], nowMs: number, options: { epoch?: number }): ProposeResult
}

export interface QuorumControllerOptions {
  /** This quorum member's node id: the controller is active while the member leads. */
  nodeId: number
  /**
   * The ids of the cluster's nodes, the only broker ids that may register (BrokerRegistration). Every Brook node is a
   * voter of the controller quorum and a broker, so these are `controller.quorum.voters`' ids.
   */
  clusterNodeIds: readonly number[]
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
  /**
   * `auto.leader.rebalance.enable`: move leadership back to preferred replicas (Kafka: true), at once when a
   * preferred replica rejoins its ISR or a controller becomes active, and every `leaderImbalanceCheckIntervalMs`.
   */
  autoLeaderRebalanceEnable?: boolean
  /** `leader.imbalance.check.interval.seconds`, in ms: how often the periodic check runs (Kafka: 300 s). */
  leaderImbalanceCheckIntervalMs?: number
  /** Where the active controller says what it decided on its own (fencing a broker whose session expired); none by default. */
  info?: (text: string) => void
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
  /** The broker is stopping and asks for a controlled shutdown (KIP-631). */
  readonly wantShutDown: boolean
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

/**
 * ElectLeaders (KIP-460): which partitions to elect leaders for (null: every partition of the cluster) and how.
 * PREFERRED makes a partition's first replica its leader where it is live and in the ISR; UNCLEAN elects a leader
 * for a partition that has none, from the live ISR members or else, unclean, from any live replica.
 */
export interface ElectLeadersRequest {
  readonly electionType: ElectionType
  readonly topicPartitions: readonly { readonly topic: string; readonly partitions: readonly number[] }[] | null
}

/** One partition's election: NONE (elected), ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION. */
export interface ElectionResult {
  readonly topic: string
  readonly partitionId: number
  readonly errorCode: number
  readonly errorMessage: string | null
}

/**
 * One partition of AlterPartitionReassignments (KIP-455): the replicas it should have (the first the preferred
 * leader), or null to cancel the reassignment under way.
 */
export interface PartitionReassignmentRequest {
  readonly topic: string
  readonly partitionIndex: number
  readonly replicas: readonly number[] | null
}

/** One partition's reassignment: NONE (started, completed or cancelled), or why not. */
export interface ReassignmentResult {
  readonly topic: string
  readonly partitionIndex: number
  readonly errorCode: number
  readonly errorMessage: string | null
}

export interface CreateTopicRequest {
  readonly name: string
  /** -1: `num.partitions`. */
  readonly numPartitions: number
  /** -1: `default.replication.factor`. */
  readonly replicationFactor: number
  readonly configs?: Readonly<Record<string, string>>
  /**
   * A manual assignment: each partition's replicas, by partition id (0..n-1), the first the preferred leader. Given
   * (not empty), numPartitions and replicationFactor must be -1.
   */
  readonly assignments?: readonly (readonly number[])[]
}

/** CreatePartitions for one topic (Kafka's ReplicationControlManager.createPartitions). */
export interface CreatePartitionsRequest {
  readonly name: string
  /** The topic's new partition count. */
  readonly count: number
  /** The new partitions' replicas, one list per new partition in order; null: the controller places them. */
  readonly assignments: readonly (readonly number[])[] | null
  /** Check everything, change nothing. */
  readonly validateOnly: boolean
}

/**
 * AlterConfigs or IncrementalAlterConfigs for one topic (Kafka's ConfigurationControlManager): `alter` makes the
 * topic's new overrides from its overrides in the controller's working image, so concurrent changes to one topic
 * apply one after the other; it throws a KafkaError (INVALID_CONFIG, INVALID_REQUEST) for a change it refuses.
 */
export interface AlterTopicConfigsRequest {
  readonly name: string
  readonly alter: (current: Readonly<Record<string, string>>) => Readonly<Record<string, string>>
  /** Check everything, change nothing. */
  readonly validateOnly: boolean
}

const DEFAULTS = {
  brokerSessionTimeoutMs: 9000,
  defaultReplicationFactor: 1,
  defaultNumPartitions: 1,
  autoLeaderRebalanceEnable: true,
  leaderImbalanceCheckIntervalMs: 300_000,
  info: (): void => undefined,
}

export class QuorumController implements RaftStateMachine {
  private committed = MetadataImage.EMPTY
  /** Set while active: the epoch it leads, the working image, the last offset it proposed. */
  private active: { epoch: number; working: MetadataImage; lastProposed: bigint } | null = null
  /** Active only: broker id -> when it was last heard from (ms); a broker missing here is given a full session. */
  private readonly lastContactMs = new Map<number, number>()
  /** Active only: broker id -> the metadata offset its last heartbeat said it applied. */
  private readonly appliedOffsets = new Map<number, bigint>()
  /** Active only: broker id -> the last offset of the batch that fenced it for its controlled shutdown. */
  private readonly controlledShutdowns = new Map<number, bigint>()
  /**
   * Active only: the brokers whose current incarnation registered or heartbeat to this controller. The others hold
   * only the session a newly active controller grants every registration, which no process has yet shown to be alive.
   */
  private readonly heardFrom = new Set<number>()
  /** Active only: when to look for partitions not led by their preferred replica next (null: one interval from now). */
  private nextRebalanceMs: number | null = null
  /** Active only: look at the next tick (a preferred replica rejoined its ISR, or this controller became active). */
  private rebalanceDue = false
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
      // What happened under the previous controller is not known: look at the preferred leaders once at the start.
      this.rebalanceDue = true
      // Every broker gets a full session from now, as in Kafka, except the node of the controller this one replaces:
      // its session counts from when this node last heard from it (a fetch answer, its resignation, its vote). It was
      // most likely lost (a majority stopped hearing from it), and a full session from now would keep its partitions
      // leaderless for the election time too; one that was only stopped for a while and resigned on its return keeps
      // a session from then.
      const predecessor = leader.predecessor
      if (predecessor && predecessor.leaderId !== this.options.nodeId) this.lastContactMs.set(predecessor.leaderId, predecessor.lastHeardMs)
    }
  }

  private deactivate(): void {
    this.active = null
    this.lastContactMs.clear()
    this.appliedOffsets.clear()
    this.controlledShutdowns.clear()
    this.heardFrom.clear()
    this.nextRebalanceMs = null
    this.rebalanceDue = false
  }

  // ---- operations (active controller only; each answers NOT_CONTROLLER elsewhere) ---------------------------------

  /**
   * Periodic work at `nowMs`: bootstraps an empty log, fences each unfenced broker whose session expired (one batch
   * per broker), and elects the preferred replica of each partition it does not lead, where it is live and in the
   * ISR (one batch): at the first tick after an AlterPartition took a partition's preferred replica back into its ISR
   * (or after this controller became active), and every `leader.imbalance.check.interval.seconds`. Returns the
   * number of batches proposed.
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
      if (this.propose(this.withLeadershipMoves([fence], broker.brokerId), nowMs).ok) {
        proposed++
        // Kafka's ReplicationControlManager: "Fencing broker 3 because its session has timed out."
        this.options.info(`fencing broker ${broker.brokerId}: no heartbeat for ${Math.round(nowMs - last)} ms (broker.session.timeout.ms ${this.options.brokerSessionTimeoutMs})`)
      }
    }
    if (this.active && this.options.autoLeaderRebalanceEnable) {
      this.nextRebalanceMs ??= nowMs + this.options.leaderImbalanceCheckIntervalMs
      if (this.rebalanceDue || nowMs >= this.nextRebalanceMs) {
        if (nowMs >= this.nextRebalanceMs) this.nextRebalanceMs = nowMs + this.options.leaderImbalanceCheckIntervalMs
        this.rebalanceDue = false
        const { records } = this.elections({ electionType: ElectionType.PREFERRED, topicPartitions: null })
        if (records.length > 0 && this.propose(records, nowMs).ok) proposed++
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
   *
   * A registration that could not be a node of this cluster is refused with INVALID_REQUEST and writes nothing (see
   * `registrationProblem`): a broker id that is not one of `clusterNodeIds` (-1, Brook's "no leader", among them),
   * no listener named CLIENT_LISTENER_NAME, or a listener whose host or port is not plausible.
   */
  registerBroker(request: BrokerRegistrationRequest, nowMs: number): ControllerResult<{ brokerEpoch: bigint }> {
    const active = this.active
    if (!active) return notController()
    const problem = registrationProblem(request, this.options.clusterNodeIds)
    if (problem !== null) return failure('INVALID_REQUEST', problem)
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
    this.controlledShutdowns.delete(request.brokerId)
    this.heardFrom.add(request.brokerId)
    return { ok: true, epoch: result.epoch, lastOffset: result.lastOffset, brokerEpoch }
  }

  /**
   * BrokerHeartbeat (Kafka's BrokerHeartbeatManager and ClusterControlManager): renews the session; a fenced broker
   * that caught up to its registration is unfenced (and leads the leaderless partitions whose ISR it is in), an
   * unfenced one that asks to be fenced is. The answer's `lastOffset` is -1 when nothing was proposed.
   *
   * Controlled shutdown (KIP-631's wantShutDown): an unfenced broker that asks is fenced at once, which moves its
   * leaderships to other ISR members and takes it out of every ISR it shares with others, in one batch;
   * `shouldShutDown` tells it to stop once that batch is committed and it and every unfenced broker have applied it
   * (Kafka's lowest active offset), so the new leaders know they lead before the old one goes. A broker that was
   * fenced before it asked leads nothing and may stop at once.
   */
  heartbeat(request: BrokerHeartbeatRequest, nowMs: number): ControllerResult<{ isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean }> {
    const active = this.active
    if (!active) return notController()
    const broker = registeredBroker(active.working, request)
    if ('ok' in broker) return broker
    this.lastContactMs.set(request.brokerId, nowMs)
    this.appliedOffsets.set(request.brokerId, request.currentMetadataOffset)
    this.heardFrom.add(request.brokerId)
    const isCaughtUp = request.currentMetadataOffset >= broker.brokerEpoch
    let records: MetadataRecord[] = []
    if (broker.fenced && !request.wantFence && !request.wantShutDown && isCaughtUp) {
      records = this.withLeadershipGained([metadataRecord('UnfenceBrokerRecord', { id: broker.brokerId, epoch: broker.brokerEpoch })])
    } else if (!broker.fenced && (request.wantFence || request.wantShutDown)) {
      records = this.withLeadershipMoves([metadataRecord('FenceBrokerRecord', { id: broker.brokerId, epoch: broker.brokerEpoch })], broker.brokerId)
    }
    if (records.length === 0) {
      const shouldShutDown = request.wantShutDown && this.mayShutDown(request)
      return { ok: true, epoch: active.epoch, lastOffset: -1n, isCaughtUp, isFenced: broker.fenced, shouldShutDown }
    }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    if (request.wantShutDown) this.controlledShutdowns.set(request.brokerId, result.lastOffset)
    return { ...result, isCaughtUp, isFenced: !broker.fenced, shouldShutDown: false }
  }

  /** Whether a fenced broker in controlled shutdown may stop: its fencing is committed and applied by it and every unfenced broker. */
  private mayShutDown(request: BrokerHeartbeatRequest): boolean {
    const fencedAt = this.controlledShutdowns.get(request.brokerId)
    if (fencedAt === undefined) return true
    if (this.committed.provenance.offset < fencedAt || request.currentMetadataOffset < fencedAt) return false
    return this.active!.working.liveBrokers().every((brokerId) => (this.appliedOffsets.get(brokerId) ?? -1n) >= fencedAt)
  }

  /**
   * UnregisterBroker (API 64, `kafka-cluster.sh unregister`, Admin.unregisterBroker; Kafka's
   * ReplicationControlManager.unregisterBroker and handleBrokerUnregistered): removes the broker's registration,
   * whatever its state, as Kafka does (it checks neither that the broker is fenced nor that it is down). One batch
   * holds the UnregisterBrokerRecord, at the registration's epoch, and the partition changes that go with it, as for a
   * fenced broker: the broker leaves every ISR it is in but as a partition's last member (which stays, leaderless, as
   * Kafka keeps it without KIP-966's ELR), and every partition it led gets the first live ISR member in replica order
   * as leader, with a bumped leader epoch. Replica lists stay as they are (Admin.unregisterBroker: "This operation does
   * not have any effect on partition assignments"). The id may register again later, at a new epoch, as any broker
   * registers. Errors: BROKER_ID_NOT_REGISTERED.
   */
  unregisterBroker(brokerId: number, nowMs: number): ControllerResult<{ brokerEpoch: bigint }> {
    const active = this.active
    if (!active) return notController()
    const broker = active.working.brokers.get(brokerId)
    if (!broker) return failure('BROKER_ID_NOT_REGISTERED', `broker ${brokerId} is not registered`)
    const unregister = metadataRecord('UnregisterBrokerRecord', { brokerId, brokerEpoch: broker.brokerEpoch })
    const result = this.propose(this.withLeadershipMoves([unregister], brokerId), nowMs)
    if (!result.ok) return result
    // Its session goes with it (Kafka's BrokerHeartbeatManager.remove): a registration of the id starts afresh.
    this.lastContactMs.delete(brokerId)
    this.appliedOffsets.delete(brokerId)
    this.controlledShutdowns.delete(brokerId)
    this.heardFrom.delete(brokerId)
    return { ok: true, epoch: result.epoch, lastOffset: result.lastOffset, brokerEpoch: broker.brokerEpoch }
  }

  /**
   * CreateTopics for one topic (Kafka's ReplicationControlManager.createTopic): replicas placed over the live
   * brokers so leaders spread (each partition's leader is the next live broker after the previous partition's,
   * continuing from the cluster's partition count), and the ISR all of them; or a manual assignment, checked as
   * CreatePartitions checks one, whose ISR (and leader, the first of them) are its live brokers. Errors:
   * INVALID_TOPIC_EXCEPTION (a bad name, or one differing from an existing topic's only in '.' versus '_'),
   * TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (more than the live brokers, or below 1),
   * INVALID_REQUEST (an assignment with a partition count or replication factor), INVALID_REPLICA_ASSIGNMENT (see
   * `assignmentProblem`).
   */
  createTopic(request: CreateTopicRequest, nowMs: number): ControllerResult<{ topicId: string; assignments: number[][] }> {
    const active = this.active
    if (!active) return notController()
    const image = active.working
    const nameProblem = topicNameProblem(request.name)
    if (nameProblem) return failure('INVALID_TOPIC_EXCEPTION', nameProblem)
    if (image.topic(request.name)) return failure('TOPIC_ALREADY_EXISTS', `topic ${quote(request.name)} already exists`)
    const collision = topicCollision(request.name, [...image.topicsById.values()].map((topic) => topic.name))
    if (collision) return failure('INVALID_TOPIC_EXCEPTION', collision)
    const live = image.liveBrokers()
    let assignments: number[][]
    if (request.assignments !== undefined && request.assignments.length > 0) {
      if (request.numPartitions !== -1 || request.replicationFactor !== -1) {
        return failure('INVALID_REQUEST', 'give either a partition count and replication factor, or a replica assignment, not both')
      }
      const problem = assignmentProblem(image, request.assignments, 0, request.assignments[0]!.length)
      if (problem !== null) return failure('INVALID_REPLICA_ASSIGNMENT', problem)
      assignments = request.assignments.map((replicas) => [...replicas])
    } else {
      const numPartitions = request.numPartitions === -1 ? this.options.defaultNumPartitions : request.numPartitions
      const replicationFactor = request.replicationFactor === -1 ? this.options.defaultReplicationFactor : request.replicationFactor
      if (!Number.isInteger(numPartitions) || numPartitions < 1) return failure('INVALID_PARTITIONS', `${numPartitions} partitions`)
      if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > live.length) {
        return failure('INVALID_REPLICATION_FACTOR', `replication factor ${replicationFactor} with ${live.length} live brokers`)
      }
      assignments = spreadReplicas(live, { start: partitionCount(image), count: numPartitions, replicationFactor })
    }
    const topicId = this.options.newTopicId()
    const records: MetadataRecord[] = [metadataRecord('TopicRecord', { name: request.name, topicId })]
    assignments.forEach((replicas, partitionId) => records.push(newPartitionRecord(topicId, partitionId, replicas, replicas.filter((id) => live.includes(id)))))
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
    // The ISR that takes the last added replica of a reassignment in completes it in the same record (KIP-455).
    const completion = completedReassignment(image, partition, newIsr)
    const change = metadataRecord('PartitionChangeRecord', { partitionId: request.partitionIndex, topicId: topic.topicId, ...(completion ?? { isr: newIsr }) })
    const result = this.propose([change], nowMs)
    if (!result.ok) return result
    if (completion) {
      return { ...result, leaderId: completion.leader, leaderEpoch: partition.leaderEpoch + 1, isr: completion.isr, partitionEpoch: partition.partitionEpoch + 1 }
    }
    // A preferred replica back in the ISR leads again at the next tick (never in this batch: AlterPartition only
    // changes the ISR, so the leader that asked keeps its epoch for the change it asked for).
    const preferred = partition.replicas[0]!
    if (partition.leader !== preferred && newIsr.includes(preferred) && !partition.isr.includes(preferred)) this.rebalanceDue = true
    return { ...result, leaderId: partition.leader, leaderEpoch: partition.leaderEpoch, isr: newIsr, partitionEpoch: partition.partitionEpoch + 1 }
  }

  /**
   * CreatePartitions for one topic (Kafka's ReplicationControlManager.createPartitions): PartitionRecords for the
   * new partitions, each with the topic's replication factor (that of its partition 0, or of its target while it is
   * being reassigned). Without assignments the
   * replicas are placed over the live brokers as `createTopic` places them, continuing from the cluster's partition
   * count, and the ISR is all of them; a manual assignment names registered brokers, and its ISR (and leader, the
   * first of them) are the live ones. Errors: UNKNOWN_TOPIC_OR_PARTITION; INVALID_PARTITIONS (a count not above the
   * current one); INVALID_REPLICA_ASSIGNMENT (not one list per new partition, a list of another length than the
   * replication factor, a broker twice or not registered, no live broker in a list); INVALID_REPLICATION_FACTOR
   * (fewer live brokers than the replication factor). `validateOnly` proposes nothing and answers lastOffset -1.
   */
  createPartitions(request: CreatePartitionsRequest, nowMs: number): ControllerResult<{ assignments: number[][] }> {
    const active = this.active
    if (!active) return notController()
    const image = active.working
    const topic = image.topic(request.name)
    if (!topic) return failure('UNKNOWN_TOPIC_OR_PARTITION', `topic ${quote(request.name)} does not exist`)
    const current = topic.partitions.size
    const smaller = partitionCountProblem(request.name, current, request.count)
    if (!Number.isInteger(request.count) || smaller !== null) return failure('INVALID_PARTITIONS', smaller ?? `${request.count} partitions`)
    const added = request.count - current
    // Partition 0's replicas when no reassignment is under way, else its target's (KIP-455: without those it removes).
    const first = topic.partitions.get(0)!
    const replicationFactor = first.replicas.length - first.removingReplicas.length
    const live = image.liveBrokers()
    let assignments: number[][]
    if (request.assignments !== null) {
      if (request.assignments.length !== added) {
        return failure('INVALID_REPLICA_ASSIGNMENT', `${added} partitions are added, but ${request.assignments.length} assignments were given`)
      }
      const problem = assignmentProblem(image, request.assignments, current, replicationFactor)
      if (problem !== null) return failure('INVALID_REPLICA_ASSIGNMENT', problem)
      assignments = request.assignments.map((replicas) => [...replicas])
    } else {
      if (replicationFactor > live.length) {
        return failure('INVALID_REPLICATION_FACTOR', `the topic's replication factor ${replicationFactor} needs more than the ${live.length} live brokers`)
      }
      assignments = spreadReplicas(live, { start: partitionCount(image), count: added, replicationFactor })
    }
    if (request.validateOnly) return { ok: true, epoch: active.epoch, lastOffset: -1n, assignments }
    const records = assignments.map((replicas, i) => newPartitionRecord(topic.topicId, current + i, replicas, replicas.filter((id) => live.includes(id))))
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, assignments }
  }

  /**
   * AlterConfigs or IncrementalAlterConfigs for one topic: a ConfigRecord for every override the change sets, changes
   * or removes (value null), none when nothing changes (lastOffset -1). Errors: UNKNOWN_TOPIC_OR_PARTITION, and the
   * KafkaError `alter` throws. `validateOnly` proposes nothing.
   */
  alterTopicConfigs(request: AlterTopicConfigsRequest, nowMs: number): ControllerResult<{ overrides: Readonly<Record<string, string>> }> {
    const active = this.active
    if (!active) return notController()
    if (!active.working.topic(request.name)) return failure('UNKNOWN_TOPIC_OR_PARTITION', `topic ${quote(request.name)} does not exist`)
    return this.alterResourceConfigs(ResourceType.TOPIC, request, nowMs)
  }

  /**
   * AlterConfigs or IncrementalAlterConfigs for the dynamic broker configs of one BROKER resource (`name`: "" for
   * every node, or a node id, known or not, as Kafka's ConfigurationControlManager takes them): a ConfigRecord of
   * resource type BROKER for every config the change sets, changes or removes. Errors: the KafkaError `alter` throws
   * (the caller checks the configs: topic-configs.ts, checkDynamicBrokerConfigs). `validateOnly` proposes nothing.
   */
  alterBrokerConfigs(request: AlterTopicConfigsRequest, nowMs: number): ControllerResult<{ overrides: Readonly<Record<string, string>> }> {
    if (!this.active) return notController()
    return this.alterResourceConfigs(ResourceType.BROKER, request, nowMs)
  }

  private alterResourceConfigs(resourceType: number, request: AlterTopicConfigsRequest, nowMs: number): ControllerResult<{ overrides: Readonly<Record<string, string>> }> {
    const active = this.active!
    const current = resourceConfigs(active.working, resourceType, request.name)
    let overrides: Readonly<Record<string, string>>
    try {
      overrides = request.alter(current)
    } catch (error) {
      if (error instanceof KafkaError) return { ok: false, errorCode: error.code, message: error.message }
      throw error
    }
    const records: MetadataRecord[] = []
    for (const name of new Set([...Object.keys(current), ...Object.keys(overrides)])) {
      const value = Object.hasOwn(overrides, name) ? overrides[name]! : null
      if (value === (Object.hasOwn(current, name) ? current[name] : null)) continue
      records.push(metadataRecord('ConfigRecord', { resourceType, resourceName: request.name, name, value }))
    }
    if (request.validateOnly || records.length === 0) return { ok: true, epoch: active.epoch, lastOffset: -1n, overrides }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, overrides }
  }

  /**
   * ElectLeaders (KIP-460, Kafka's ReplicationControlManager.electLeaders): the elections `request` asks for, in one
   * batch, each partition answered with its result (see `ElectionResult`); with null `topicPartitions` the
   * partitions that needed no election are left out. A new leader gets a bumped leaderEpoch, as every leader change.
   */
  electLeaders(request: ElectLeadersRequest, nowMs: number): ControllerResult<{ results: readonly ElectionResult[] }> {
    const active = this.active
    if (!active) return notController()
    const { records, results } = this.elections(request)
    if (records.length === 0) return { ok: true, epoch: active.epoch, lastOffset: -1n, results }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, results }
  }

  /**
   * AlterPartitionReassignments (KIP-455, Kafka's ReplicationControlManager.alterPartitionReassignments): one
   * PartitionChangeRecord per partition that changes, all in one batch.
   *
   *   replicas R, target T   adding = T - (R - adding)   removing = R - T   replicas := T ++ removing, isr unchanged
   *          │  (grow: the added replicas follow the leader; it takes each into the ISR once caught up, AlterPartition)
   *          v
   *   adding ⊆ isr, and a live member of isr ∩ T  ──>  replicas := T, isr := isr ∩ T, adding := removing := [],
   *                                                    leader kept if in T, else the first of isr ∩ T; leaderEpoch + 1
   *
   * The completion runs at once when nothing is added (a replica set that only shrinks or is reordered), else in
   * the AlterPartition that takes the last added replica into the ISR. A new target replaces the one under way
   * (replicas added for it and not in the new one are removed again). A null target cancels (Kafka's
   * PartitionReassignmentRevert): replicas := R - adding, isr := isr without them, the leader kept if it stays in the
   * ISR (else the first live member), leaderEpoch + 1. The leader epoch moves at the end of either so that the replicas
   * left out stop fetching in the old epoch.
   *
   * Per-partition errors: UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT (no replicas, a broker twice or not
   * registered, every broker fenced; a cancel that would leave the ISR empty, which only an unclean election could
   * mend); NO_REASSIGNMENT_IN_PROGRESS (a cancel with none under way). A partition named twice is answered once.
   */
  alterPartitionReassignments(
    request: { readonly partitions: readonly PartitionReassignmentRequest[] },
    nowMs: number,
  ): ControllerResult<{ results: readonly ReassignmentResult[] }> {
    const active = this.active
    if (!active) return notController()
    const image = active.working
    const records: MetadataRecord[] = []
    const results: ReassignmentResult[] = []
    const asked = new Set<string>()
    for (const { topic: name, partitionIndex, replicas } of request.partitions) {
      if (asked.has(`${name}/${partitionIndex}`)) continue
      asked.add(`${name}/${partitionIndex}`)
      const topic = image.topic(name)
      const partition = topic?.partitions.get(partitionIndex)
      const answer = (errorCode: number, errorMessage: string | null): void => void results.push({ topic: name, partitionIndex, errorCode, errorMessage })
      if (!topic || !partition) {
        answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${quote(name)} has no partition ${partitionIndex}`)
        continue
      }
      const outcome = replicas === null ? cancelledReassignment(image, partition, `partition ${partitionIndex} of ${quote(name)}`) : reassignment(image, partition, replicas, { topic: name, partitionIndex })
      if ('errorCode' in outcome) {
        answer(outcome.errorCode, outcome.errorMessage)
        continue
      }
      if (outcome.change !== null) records.push(metadataRecord('PartitionChangeRecord', { partitionId: partitionIndex, topicId: topic.topicId, ...outcome.change }))
      answer(ErrorCode.NONE, null)
    }
    if (records.length === 0) return { ok: true, epoch: active.epoch, lastOffset: -1n, results }
    const result = this.propose(records, nowMs)
    if (!result.ok) return result
    return { ...result, results }
  }

  /** DeleteTopics for one topic (its configs go with it). Errors: UNKNOWN_TOPIC_OR_PARTITION. */
  deleteTopic(name: string, nowMs: number): ControllerResult<{ topicId: string }> {
    const active = this.active
    if (!active) return notController()
    const topic = active.working.topic(name)
    if (!topic) return failure('UNKNOWN_TOPIC_OR_PARTITION', `topic ${quote(name)} does not exist`)
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
    // The member polls after appending, and that poll may end the leadership (its check-quorum expired while the node
    // could not run: stopped, or its event loop stalled, with this operation the first step it ran since): the member
    // told this controller (leaderChange), which is no longer active. The batch stays in the log, uncommitted in the
    // epoch that ended, so the operation's outcome is unknown, as any NOT_CONTROLLER answer's is to its sender.
    if (this.active !== active) {
      return failure('NOT_CONTROLLER', `this node lost the leadership of the metadata log while proposing (epoch ${result.epoch})`)
    }
    // The propose call may have applied earlier batches (and reset the working image to the committed one): the
    // new records go on top of whatever the working image is now.
    const working = new MetadataDelta(active.working)
    for (const record of records) working.replay(record)
    active.working = working.apply({ offset: result.lastOffset, epoch: result.epoch })
    active.lastProposed = result.lastOffset
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
   * `records` (which fence, re-register or unregister `brokerId`) and the partition changes that go with them: the
   * broker leaves every ISR it is in (unless it is the last member) and every partition it led gets a new leader.
   */
  private withLeadershipMoves(records: MetadataRecord[], brokerId: number): MetadataRecord[] {
    const image = this.after(records)
    const changes: MetadataRecord[] = []
    for (const topic of image.topicsById.values()) {
      for (const [partitionId, partition] of topic.partitions) {
        if (!partition.isr.includes(brokerId) && partition.leader !== brokerId) continue
        const isr = partition.isr.length > 1 ? partition.isr.filter((id) => id !== brokerId) : partition.isr
        const change = electLeader(image, partition, isr, { unclean: uncleanElectionEnabled(image, topic) })
        if (change) changes.push(partitionChange(topic, partitionId, change, partition))
      }
    }
    return [...records, ...changes]
  }

  /**
   * The elections `request` asks for in the working image: a PartitionChangeRecord for each partition that gets a new
   * leader, and each partition's result. Every partition of the cluster when `topicPartitions` is null, then leaving
   * out those that need no election (Kafka's ReplicationControlManager.electLeaders does the same).
   */
  private elections(request: ElectLeadersRequest): { records: MetadataRecord[]; results: ElectionResult[] } {
    const image = this.active!.working
    const records: MetadataRecord[] = []
    const results: ElectionResult[] = []
    const elect = (topic: TopicImage, partitionId: number, partition: PartitionRegistration): ElectionResult => {
      const outcome = election(image, topic, partitionId, partition, request.electionType)
      if ('leader' in outcome) {
        records.push(partitionChange(topic, partitionId, outcome, partition))
        return { topic: topic.name, partitionId, errorCode: ErrorCode.NONE, errorMessage: null }
      }
      return { topic: topic.name, partitionId, ...outcome }
    }
    if (request.topicPartitions === null) {
      for (const topic of image.topicsById.values()) {
        for (const [partitionId, partition] of topic.partitions) {
          const result = elect(topic, partitionId, partition)
          if (result.errorCode !== ErrorCode.ELECTION_NOT_NEEDED) results.push(result)
        }
      }
      return { records, results }
    }
    const asked = new Set<string>()
    for (const { topic: name, partitions } of request.topicPartitions) {
      const topic = image.topic(name)
      for (const partitionId of partitions) {
        // A partition named twice is elected (and answered) once.
        if (asked.has(`${name}/${partitionId}`)) continue
        asked.add(`${name}/${partitionId}`)
        const partition = topic?.partitions.get(partitionId)
        if (!topic || !partition) {
          const { errorCode, message } = failure('UNKNOWN_TOPIC_OR_PARTITION', `${quote(name)} has no partition ${partitionId}`)
          results.push({ topic: name, partitionId, errorCode, errorMessage: message })
          continue
        }
        results.push(elect(topic, partitionId, partition))
      }
    }
    return { records, results }
  }

  /** `records` (which unfence a broker) and elections for the partitions without a leader that now have one. */
  private withLeadershipGained(records: MetadataRecord[]): MetadataRecord[] {
    const image = this.after(records)
    const changes: MetadataRecord[] = []
    for (const topic of image.topicsById.values()) {
      for (const [partitionId, partition] of topic.partitions) {
        if (partition.leader !== NO_LEADER) continue
        const change = electLeader(image, partition, partition.isr, { unclean: uncleanElectionEnabled(image, topic) })
        if (change) changes.push(partitionChange(topic, partitionId, change, partition))
      }
    }
    return [...records, ...changes]
  }

}

/** The number of partitions of every topic in `image`: where the placement of the next new partitions continues. */
function partitionCount(image: MetadataImage): number {
  let count = 0
  for (const topic of image.topicsById.values()) count += topic.partitions.size
  return count
}

/**
 * Replicas for `count` new partitions over the `live` brokers (ascending ids), so leaders spread: the n-th new
 * partition's first replica (its leader) is the live broker at (start + n) mod the live count, and the rest follow
 * it in id order, wrapping around.
 */
function spreadReplicas(live: readonly number[], placement: { start: number; count: number; replicationFactor: number }): number[][] {
  return Array.from({ length: placement.count }, (_, n) => {
    const first = (placement.start + n) % live.length
    return Array.from({ length: placement.replicationFactor }, (_, i) => live[(first + i) % live.length]!)
  })
}

/**
 * What is wrong with a manual replica assignment for partitions `firstPartitionId` on (`assignments[i]` for partition
 * firstPartitionId + i), or null: a list of another length than `replicationFactor` (or none at all), a broker twice
 * or not registered, a list whose brokers are all fenced. Kafka's ReplicationControlManager checks the same.
 */
export function assignmentProblem(image: MetadataImage, assignments: readonly (readonly number[])[], firstPartitionId: number, replicationFactor: number): string | null {
  const live = image.liveBrokers()
  for (const [i, replicas] of assignments.entries()) {
    const partitionId = firstPartitionId + i
    if (replicas.length === 0) return `partition ${partitionId} is given no replicas`
    if (replicas.length !== replicationFactor) return `partition ${partitionId} is given ${replicas.length} replica${replicas.length === 1 ? '' : 's'}; the topic's partitions have ${replicationFactor}`
    if (new Set(replicas).size !== replicas.length) return `partition ${partitionId} names a broker more than once: [${replicas}]`
    const unknown = replicas.find((id) => !image.brokers.has(id))
    if (unknown !== undefined) return `partition ${partitionId} names broker ${unknown}, which is not registered`
    if (!replicas.some((id) => live.includes(id))) return `every broker of partition ${partitionId} is fenced: [${replicas}]`
  }
  return null
}

/** The characters of a host name, an IPv4 address or an IPv6 address (bracketed or not, with a zone). */
const HOST = /^[A-Za-z0-9._:%[\]-]+$/

/**
 * What makes `request` a registration no node of this cluster sends, or null: a broker id not among `nodeIds`, no
 * listener named CLIENT_LISTENER_NAME (clients could not be told where the broker is), or a listener whose host is
 * empty, longer than MAX_HOST_LENGTH or has a character no host name or IP address has (letters, digits and
 * `-._:%[]` only), or whose port is not 1-65535.
 */
export function registrationProblem(request: BrokerRegistrationRequest, nodeIds: readonly number[]): string | null {
  if (!nodeIds.includes(request.brokerId)) return `broker id ${request.brokerId} is not a node of this cluster (its nodes: ${[...nodeIds].sort((a, b) => a - b).join(', ')})`
  if (clientEndpoint(request) === undefined) {
    return `broker ${request.brokerId} registers no ${CLIENT_LISTENER_NAME} listener (it registers ${request.endPoints.length === 0 ? 'none' : request.endPoints.map((endpoint) => quote(endpoint.name)).join(', ')})`
  }
  for (const endpoint of request.endPoints) {
    if (endpoint.host.length === 0 || endpoint.host.length > MAX_HOST_LENGTH || !HOST.test(endpoint.host)) {
      return `broker ${request.brokerId}'s listener ${quote(endpoint.name)} has no plausible host: ${quote(endpoint.host)}`
    }
    if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) {
      return `broker ${request.brokerId}'s listener ${quote(endpoint.name)} has port ${endpoint.port}, not one of 1-65535`
    }
  }
  return null
}

/** The PartitionRecord of a new partition: led by the first of `isr` (a non-empty subset of `replicas`), at epoch 0. */
function newPartitionRecord(topicId: string, partitionId: number, replicas: readonly number[], isr: readonly number[]): MetadataRecord {
  return metadataRecord('PartitionRecord', {
    partitionId,
    topicId,
    replicas: [...replicas],
    isr: [...isr],
    removingReplicas: [],
    addingReplicas: [],
    leader: isr[0]!,
    leaderEpoch: 0,
    partitionEpoch: 0,
  })
}

/**
 * The partition's ISR and leader after `isr` replaces its ISR, or null when neither changes: its leader stays while
 * it is a live member of `isr`, else the first live member in replica order leads; with none, and `unclean`, the
 * first live replica leads with an ISR of itself alone.
 */
function electLeader(
  image: MetadataImage,
  partition: PartitionRegistration,
  isr: readonly number[],
  options: { unclean: boolean },
): { isr: readonly number[]; leader: number } | null {
  const live = (id: number): boolean => image.brokers.get(id)?.fenced === false
  let leader = partition.leader !== NO_LEADER && isr.includes(partition.leader) && live(partition.leader) ? partition.leader : NO_LEADER
  let newIsr = isr
  if (leader === NO_LEADER) {
    leader = partition.replicas.find((id) => isr.includes(id) && live(id)) ?? NO_LEADER
    if (leader === NO_LEADER && options.unclean) {
      leader = partition.replicas.find(live) ?? NO_LEADER
      if (leader !== NO_LEADER) newIsr = [leader]
    }
  }
  if (leader === partition.leader && sameMembers(newIsr, partition.isr)) return null
  return { isr: newIsr, leader }
}

/**
 * One partition's election of `electionType` (ElectLeaders): the new leader (and ISR), or why there is none.
 * PREFERRED: the first replica, live and in the ISR, unless it leads already. UNCLEAN: for a partition without a
 * leader, a live ISR member or else any live replica, whatever the topic's `unclean.leader.election.enable`.
 */
function election(
  image: MetadataImage,
  topic: TopicImage,
  partitionId: number,
  partition: PartitionRegistration,
  electionType: ElectionType,
): { isr: readonly number[]; leader: number } | { errorCode: number; errorMessage: string } {
  const where = `partition ${partitionId} of '${topic.name}'`
  if (electionType === ElectionType.PREFERRED) {
    const preferred = partition.replicas[0]!
    if (partition.leader === preferred) return refused('ELECTION_NOT_NEEDED', `${where} is led by its preferred replica ${preferred}`)
    if (!partition.isr.includes(preferred) || image.brokers.get(preferred)?.fenced !== false) {
      return refused('PREFERRED_LEADER_NOT_AVAILABLE', `the preferred replica ${preferred} of ${where} is not a live member of its isr [${partition.isr}]`)
    }
    return { isr: partition.isr, leader: preferred }
  }
  if (partition.leader !== NO_LEADER) return refused('ELECTION_NOT_NEEDED', `${where} has a leader (${partition.leader})`)
  const change = electLeader(image, partition, partition.isr, { unclean: true })
  if (!change || change.leader === NO_LEADER) return refused('ELIGIBLE_LEADERS_NOT_AVAILABLE', `no replica of ${where} is live`)
  return change
}

/** The fields of a PartitionChangeRecord that (re)assign a partition's replicas. */
interface ReplicaChange {
  readonly replicas: number[]
  readonly isr?: number[]
  readonly addingReplicas: number[]
  readonly removingReplicas: number[]
  readonly leader?: number
}

/**
 * The change that starts (or completes at once) the reassignment of `partition` to `target`, null when it asks for
 * what is already under way or in place; or why it is refused (see `QuorumController.alterPartitionReassignments`).
 */
function reassignment(
  image: MetadataImage,
  partition: PartitionRegistration,
  target: readonly number[],
  at: { readonly topic: string; readonly partitionIndex: number },
): { change: ReplicaChange | null } | { errorCode: number; errorMessage: string } {
  const problem = assignmentProblem(image, [target], at.partitionIndex, target.length)
  if (problem !== null) return refused('INVALID_REPLICA_ASSIGNMENT', `topic ${quote(at.topic)}: ${problem}`)
  const original = partition.replicas.filter((id) => !partition.addingReplicas.includes(id))
  const removing = partition.replicas.filter((id) => !target.includes(id))
  const grown: PartitionRegistration = {
    ...partition,
    replicas: [...target, ...removing],
    addingReplicas: target.filter((id) => !original.includes(id)),
    removingReplicas: removing,
  }
  const completion = completedReassignment(image, grown, partition.isr)
  if (completion) return { change: completion }
  if (sameMembers(grown.replicas, partition.replicas) && sameMembers(grown.addingReplicas, partition.addingReplicas) && sameMembers(grown.removingReplicas, partition.removingReplicas)) {
    return { change: null }
  }
  return { change: { replicas: [...grown.replicas], addingReplicas: [...grown.addingReplicas], removingReplicas: [...grown.removingReplicas] } }
}

/**
 * The change that ends `partition`'s reassignment once `isr` is its ISR, or null while it cannot end: a reassignment
 * (replicas with adding or removing ones, target = replicas - removing) ends when every added replica is in `isr` and
 * a live member of `isr` within the target can lead. The leader stays if it is such a member; the leader epoch moves
 * either way.
 */
function completedReassignment(image: MetadataImage, partition: PartitionRegistration, isr: readonly number[]): (ReplicaChange & { isr: number[]; leader: number }) | null {
  if (!reassigning(partition)) return null
  const target = partition.replicas.filter((id) => !partition.removingReplicas.includes(id))
  if (!partition.addingReplicas.every((id) => isr.includes(id))) return null
  const finalIsr = isr.filter((id) => target.includes(id))
  const live = (id: number): boolean => image.brokers.get(id)?.fenced === false
  const leader = finalIsr.includes(partition.leader) && live(partition.leader) ? partition.leader : target.find((id) => finalIsr.includes(id) && live(id))
  if (leader === undefined) return null
  return { replicas: target, isr: finalIsr, addingReplicas: [], removingReplicas: [], leader }
}

/** The change that cancels `partition`'s reassignment (KIP-455's revert), or why it cannot. */
function cancelledReassignment(image: MetadataImage, partition: PartitionRegistration, where: string): { change: ReplicaChange } | { errorCode: number; errorMessage: string } {
  if (!reassigning(partition)) {
    return refused('NO_REASSIGNMENT_IN_PROGRESS', `${where} has no reassignment under way`)
  }
  const original = partition.replicas.filter((id) => !partition.addingReplicas.includes(id))
  const isr = partition.isr.filter((id) => original.includes(id))
  if (isr.length === 0) {
    return refused('INVALID_REPLICA_ASSIGNMENT', `cancelling the reassignment of ${where} would leave its isr [${partition.isr}] without a replica of [${original}]: only an unclean election could lead it`)
  }
  const live = (id: number): boolean => image.brokers.get(id)?.fenced === false
  const leader = isr.includes(partition.leader) && live(partition.leader) ? partition.leader : (original.find((id) => isr.includes(id) && live(id)) ?? NO_LEADER)
  return { change: { replicas: original, isr, addingReplicas: [], removingReplicas: [], leader } }
}

function refused(name: keyof typeof ErrorCode, errorMessage: string): { errorCode: number; errorMessage: string } {
  return { errorCode: ErrorCode[name], errorMessage }
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
