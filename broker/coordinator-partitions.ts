/**
 * The partitions of a coordinator's internal topic (`__consumer_offsets` for groups, `__transaction_state` for
 * transactional ids) and which of them this node coordinates, as in Kafka: a key (a group id, a transactional id)
 * lives in partition `abs(javaHashCode(key)) % partitions` (GroupMetadataManager.partitionFor,
 * TransactionStateManager.partitionFor), and its coordinator is that partition's leader.
 *
 * On a single node the topic is the node's own, created on first use with the configured partitions, and the node
 * coordinates every key; its state is loaded when the node opens.
 *
 * On a cluster node the topic is created through the active controller when the cluster first needs it (a
 * FindCoordinator, as Kafka's brokers auto-create it), with the configured partitions and the replication factor of
 * `internalTopicReplicationFactor`, compacted. The node coordinates the partitions its metadata image makes it lead,
 * each at the partition's leader epoch (the coordinator epoch), and follows the image as it changes (Kafka's
 * BrokerMetadataPublisher calling the coordinators' onElection and onResignation, once the logs are in place and the
 * node has caught up with the metadata log):
 *
 *                 image: led here at epoch e               loaded
 *   not led ─────────────────────────────────> loading ─────────────> loaded
 *      ^                                          │                      │
 *      └── image: led elsewhere, or another epoch ┴──────────────────────┘  (unload; then load again at the new epoch)
 *
 * - A key of a partition not led here is NOT_COORDINATOR; of a partition still loading, or led here by the image
 *   while its logs are being opened, COORDINATOR_LOAD_IN_PROGRESS (both retriable: clients look the coordinator up
 *   again, or wait).
 * - Loads and unloads run one at a time, in the order the images asked for them, so a partition is never loaded
 *   twice over or unloaded while it loads. Ownership itself changes at once, so no request is served for a
 *   partition this node no longer leads while its unload waits its turn.
 */
import { ErrorCode, errorInfo, KafkaError } from '../protocol/errors.js'
import { counted } from '../client/wording.js'
import type { Logger } from './logger.js'
import type { Topic } from './partition.js'
import { AppendOrigin } from '../storage/producer-state.js'
import type { TopicManager } from './topics.js'
import { partitionForGroup } from './group/offsets-topic.js'
import type { QuorumRunner } from './cluster/quorum-runner.js'
import type { ReplicaManager } from './cluster/replica-manager.js'
import type { MetadataImage } from './cluster/metadata/image.js'
import { createTopicAtController } from './cluster/topic-changes.js'
import { quote } from './quote.js'

/**
 * The replication factor a cluster gives an internal topic it creates: Kafka's offsets.topic.replication.factor
 * and transaction.state.log.replication.factor (3), capped at the registered brokers. As in Kafka, the creation
 * fails while fewer brokers than that are live (the controller refuses the replication factor), and FindCoordinator
 * answers COORDINATOR_NOT_AVAILABLE, which clients retry, until they are.
 */
export function internalTopicReplicationFactor(registeredBrokers: number): number {
  return Math.max(1, Math.min(INTERNAL_TOPIC_REPLICATION_FACTOR, registeredBrokers))
}

const INTERNAL_TOPIC_REPLICATION_FACTOR = 3
/** How long a coordinator's write waits for the ISR (Kafka's offsets.commit.timeout.ms default). */
const COORDINATOR_APPEND_TIMEOUT_MS = 5000

/**
 * What a coordinator answers for a write the replicas did not confirm, as Kafka's GroupMetadataManager and
 * TransactionStateManager translate their appends' errors: the partition moved (NOT_COORDINATOR, so the client looks
 * the coordinator up again), or the ISR could not take it in time (COORDINATOR_NOT_AVAILABLE, retriable).
 */
function coordinatorAppendError(code: number): number {
  return code === ErrorCode.NOT_LEADER_OR_FOLLOWER ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_NOT_AVAILABLE
}

/** What a coordinator does when it gains or loses a partition of its topic. */
export interface PartitionLoader {
  /** Replays `partition` of the local topic into memory; `coordinatorEpoch` is the partition's leader epoch. */
  loadPartition(partition: Topic['partitions'][number], coordinatorEpoch: number): Promise<void>
  /** Drops from memory everything of partition `index`, answering whatever waits on it with NOT_COORDINATOR. */
  unloadPartition(index: number): void
  /**
   * Partition `index` is loaded and served from now on: what the coordinator writes to it on taking it over. Called
   * in the same turn as the partition starts being served, so no request sees it before this has begun.
   */
  partitionLoaded?(index: number): Promise<void>
}

export interface CoordinatorPartitionsOptions {
  /** The internal topic's name. */
  readonly topic: string
  /** offsets.topic.num.partitions or transaction.state.log.num.partitions: the partitions it is created with. */
  readonly partitions: number
  readonly topics: TopicManager
  readonly log: Logger
  /** A cluster node's quorum member, its node id and its replicas; absent on a single node. */
  readonly cluster?: { readonly quorum: QuorumRunner; readonly nodeId: number; readonly replicas: ReplicaManager }
  /**
   * The topic's min.insync.replicas on a cluster (transaction.state.log.min.isr for __transaction_state), lowered to
   * the replication factor it is created with; absent: the broker's default (1).
   */
  readonly minInsyncReplicas?: number
}

interface Ownership {
  readonly coordinatorEpoch: number
  loaded: boolean
}

export class CoordinatorPartitions {
  readonly topicName: string
  private readonly options: CoordinatorPartitionsOptions
  /** Partition index -> this node's ownership; only on a cluster node (a single node owns every partition). */
  private readonly owned = new Map<number, Ownership>()
  /** Partition index -> the coordinator epoch at which its load failed (a cluster node): not waited for again. */
  private readonly failedLoads = new Map<number, number>()
  private loader: PartitionLoader | null = null
  private queue: Promise<void> = Promise.resolve()
  private creating: Promise<Topic> | null = null
  private creatingInCluster: Promise<void> | null = null

  constructor(options: CoordinatorPartitionsOptions) {
    this.options = options
    this.topicName = options.topic
  }

  /** Whether the topic is the cluster's (a cluster node) rather than this node's own. */
  get clustered(): boolean {
    return this.options.cluster !== undefined
  }

  /** The coordinator that loads and unloads partitions as the image moves them (a cluster node). */
  serve(loader: PartitionLoader): void {
    this.loader = loader
  }

  /** The topic's partition count: the topic's own once it exists, else the one it will be created with. */
  get partitionCount(): number {
    const local = this.options.topics.get(this.topicName)
    if (local) return local.partitions.length
    return this.options.cluster?.quorum.controller.image.topic(this.topicName)?.partitions.size ?? this.options.partitions
  }

  /** The partition holding `key` (a group id, a transactional id). */
  partitionFor(key: string): number {
    return partitionForGroup(key, this.partitionCount)
  }

  /** NONE when this node coordinates `key` now; NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS otherwise. */
  errorFor(key: string): number {
    return this.errorForPartition(this.partitionFor(key))
  }

  /**
   * As `errorFor`, for a partition of the topic. A partition the node's metadata image already makes it lead, whose
   * logs are still being opened (the load starts after), is COORDINATOR_LOAD_IN_PROGRESS as well, unless its load at
   * that epoch failed: a client told NOT_COORDINATOR then would look the coordinator up again and be sent straight
   * back (right after the topic's creation, or a leader change, the other nodes name this one at once).
   */
  errorForPartition(index: number): number {
    const { cluster } = this.options
    if (!cluster) return ErrorCode.NONE
    const ownership = this.owned.get(index)
    if (ownership) return ownership.loaded ? ErrorCode.NONE : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    const registration = cluster.quorum.controller.image.topic(this.topicName)?.partitions.get(index)
    const ledHere = registration !== undefined && registration.leader === cluster.nodeId && this.failedLoads.get(index) !== registration.leaderEpoch
    return ledHere ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS : ErrorCode.NOT_COORDINATOR
  }

  /** Whether some partition led here is still loading (ListGroups answers COORDINATOR_LOAD_IN_PROGRESS then). */
  get loading(): boolean {
    for (const ownership of this.owned.values()) if (!ownership.loaded) return true
    return false
  }

  /** The coordinator epoch of a partition: its leader epoch on a cluster node, 0 on a single node. */
  coordinatorEpoch(index: number): number {
    return this.owned.get(index)?.coordinatorEpoch ?? 0
  }

  /**
   * The node that coordinates `key` as the metadata image says (its partition's leader): its id, or null while the
   * topic does not exist or the partition has no leader. On a single node, null (the node itself answers).
   */
  leaderFor(key: string): number | null {
    const topic = this.options.cluster?.quorum.controller.image.topic(this.topicName)
    if (!topic) return null
    const leader = topic.partitions.get(partitionForGroup(key, topic.partitions.size))?.leader
    return leader === undefined || leader < 0 ? null : leader
  }

  /**
   * Makes sure the topic exists. A single node creates its own (compacted, the configured partitions) and resolves
   * to it; a cluster node has the active controller create it unless the image holds it, and resolves once its
   * image does. Rejects with a StorageError (a single node refusing writes) or a KafkaError
   * (COORDINATOR_NOT_AVAILABLE: the controller could not create it).
   */
  async ensureTopic(): Promise<void> {
    const { cluster } = this.options
    if (!cluster) {
      await this.localTopic()
      return
    }
    if (cluster.quorum.controller.image.topic(this.topicName)) return
    // One creation at a time from this node: the FindCoordinator requests of a whole consumer group arrive together.
    this.creatingInCluster ??= this.createAtController(cluster.quorum).finally(() => (this.creatingInCluster = null))
    return this.creatingInCluster
  }

  private async createAtController(quorum: QuorumRunner): Promise<void> {
    const { log } = this.options
    const replicationFactor = internalTopicReplicationFactor(quorum.controller.image.brokers.size)
    const { minInsyncReplicas } = this.options
    // Kafka's TransactionStateManager creates __transaction_state with min.insync.replicas = transaction.state.log.min.isr
    // whatever its replication factor (a single broker then refuses every transaction until it is lowered); here it
    // is lowered to the replication factor.
    const minIsr: Record<string, string> = minInsyncReplicas === undefined ? {} : { 'min.insync.replicas': String(Math.min(minInsyncReplicas, replicationFactor)) }
    // The client waits on its FindCoordinator meanwhile: the 'internal' channel's short window (CONTROLLER_CHANNELS),
    // then COORDINATOR_NOT_AVAILABLE, and the client asks again.
    const created = await createTopicAtController(
      quorum,
      { name: this.topicName, numPartitions: this.options.partitions, replicationFactor, configs: { 'cleanup.policy': 'compact', ...minIsr } },
      { forward: true, channel: 'internal' },
    )
    if (created.errorCode === ErrorCode.NONE) log.info(`created ${this.topicName} with ${counted(this.options.partitions, 'partition')} through the controller`)
    if (quorum.controller.image.topic(this.topicName)) return
    throw new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, `${this.topicName} could not be created: ${created.errorMessage ?? 'the controller did not answer'}`)
  }

  /**
   * Appends a coordinator's batch (group metadata, offsets, a transaction's state) to `partition` of the topic and,
   * on a cluster node, resolves only once the partition's ISR has it (Kafka's coordinators append with acks=-1), so
   * what a coordinator answered survives the loss of its node. Errors: the append's own (KafkaError, StorageError),
   * or a KafkaError NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE when the replicas did not confirm it within
   * offsets.commit.timeout.ms's default (the batch may still be in the log; the coordinator's memory does not have it).
   *
   * `awaitReplication: false` resolves once the batch is in the leader's log (Kafka's requiredAcks = 0 for the
   * tombstones of GroupMetadataManager.cleanupGroupMetadata): for records whose effect has already been applied in
   * memory and must not wait for, or fail with, an ISR that cannot move. They are replicated as the log's later
   * records are, and stay ordered before them. Resolves with the batch's base offset.
   */
  async append(partition: Topic['partitions'][number], batch: Buffer, { awaitReplication = true } = {}): Promise<bigint> {
    const replicas = this.options.cluster?.replicas
    // As Kafka's coordinators append with acks=-1: nothing is written while the ISR is below min.insync.replicas
    // (NOT_ENOUGH_REPLICAS, which the coordinators answer as COORDINATOR_NOT_AVAILABLE).
    if (replicas && awaitReplication && replicas.underMinIsr(partition.topic.topicId, partition.index, Date.now())) {
      throw new KafkaError(coordinatorAppendError(ErrorCode.NOT_ENOUGH_REPLICAS), `${this.topicName}-${partition.index} has fewer in-sync replicas than its min.insync.replicas`)
    }
    const { baseOffset, lastOffset } = await partition.appendAsLeader(batch, { origin: AppendOrigin.COORDINATOR })
    if (!replicas || !awaitReplication) return baseOffset
    const code = await replicas.awaitHighWatermark(partition.topic.topicId, partition.index, lastOffset + 1n, COORDINATOR_APPEND_TIMEOUT_MS)
    if (code !== ErrorCode.NONE) {
      throw new KafkaError(coordinatorAppendError(code), `${this.topicName}-${partition.index} did not replicate the write (${errorInfo(code).name})`)
    }
    return baseOffset
  }

  /**
   * The local topic to write a key's records to. A single node creates it on first use (rejecting with a
   * StorageError when it cannot); on a cluster node it exists once this node leads one of its partitions, and is
   * NOT_COORDINATOR (a KafkaError) otherwise.
   */
  async localTopic(): Promise<Topic> {
    const { topics, log } = this.options
    const local = topics.get(this.topicName)
    if (local) return local
    if (this.clustered) throw new KafkaError(ErrorCode.NOT_COORDINATOR, `${this.topicName} has no local log here`)
    this.creating ??= topics
      .getOrCreate({ name: this.topicName, partitions: this.options.partitions, replicationFactor: 1, config: topics.parseConfig({ 'cleanup.policy': 'compact' }) })
      .then(({ topic, created }) => {
        if (created) log.info(`created ${this.topicName} with ${counted(topic.partitions.length, 'partition')}`)
        return topic
      })
      .finally(() => (this.creating = null))
    return this.creating
  }

  /**
   * A cluster node applied `image` to its local logs: the partitions it now leads are loaded (at their leader
   * epoch), the ones it no longer leads, or leads at another epoch, unloaded.
   */
  follow(image: MetadataImage): void {
    const { cluster, topics, log } = this.options
    const loader = this.loader
    if (!cluster) return
    if (!loader) throw new Error(`no coordinator serves ${this.topicName} yet`)
    const topic = image.topic(this.topicName)
    const local = topic && topics.getById(topic.topicId)
    const led = new Map<number, number>()
    for (const [index, registration] of topic && local ? topic.partitions : []) {
      if (registration.leader === cluster.nodeId) led.set(index, registration.leaderEpoch)
    }
    for (const [index, ownership] of [...this.owned]) {
      if (led.get(index) === ownership.coordinatorEpoch) continue
      this.owned.delete(index)
      this.enqueue(() => {
        loader.unloadPartition(index)
        log.info(`no longer the coordinator of ${this.topicName}-${index}`)
      })
    }
    for (const [index, coordinatorEpoch] of led) {
      if (this.owned.has(index)) continue
      const ownership: Ownership = { coordinatorEpoch, loaded: false }
      this.owned.set(index, ownership)
      this.enqueue(async () => {
        const partition = local!.partitions[index]
        if (this.owned.get(index) !== ownership || !partition) return
        try {
          await loader.loadPartition(partition, coordinatorEpoch)
        } catch (error) {
          // Clients are sent elsewhere (NOT_COORDINATOR) rather than told to wait for a load that will not end.
          if (this.owned.get(index) === ownership) this.owned.delete(index)
          this.failedLoads.set(index, coordinatorEpoch)
          loader.unloadPartition(index)
          throw error
        }
        if (this.owned.get(index) !== ownership) return
        this.failedLoads.delete(index)
        ownership.loaded = true
        await loader.partitionLoaded?.(index)
        log.debug(`coordinator of ${this.topicName}-${index} at epoch ${coordinatorEpoch}`)
      })
    }
  }

  /** Resolves once every load and unload asked for so far is done. */
  settled(): Promise<void> {
    return this.queue
  }

  private enqueue(operation: () => void | Promise<void>): void {
    this.queue = this.queue.then(operation).catch((error: Error) => {
      this.options.log.error(`loading or unloading a partition of ${quote(this.topicName)} failed: ${error.message}`)
    })
  }
}
