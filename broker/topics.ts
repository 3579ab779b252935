/**
 * The topics this node knows, by name and by topic id, backed by the node's topic records. Creating, growing and
 * deleting topics goes through here, so the in-memory view and the stored records change together.
 */
import { randomUUID } from 'node:crypto'
import type { LogStore, TopicRecord } from '../storage/log-store.js'
import { Partition, type Topic } from './partition.js'
import { ErrorCode, KafkaError } from '../protocol/errors.js'
import { OFFSETS_TOPIC } from './group/offsets-topic.js'
import { NO_DYNAMIC_CONFIGS, parseTopicConfig, type DynamicBrokerConfigs, type TopicConfig, type TopicDefaults } from './topic-configs.js'
import type { BrokerConfig } from './config.js'
import { StorageError } from '../storage/log-store.js'
import { isStorageFailure } from '../storage/database.js'
import { quote } from './quote.js'

/** What the registry needs of the node's settings: topic config defaults, and how long producer ids are kept. */
export type TopicSettings = TopicDefaults & Pick<BrokerConfig, 'producerIdExpirationMs'>

/** Kafka's rule (Topic.java): at most 249 characters of [a-zA-Z0-9._-], and not '.' or '..'. */
export function topicNameProblem(name: string): string | null {
  if (name.length === 0) return 'topic name is empty'
  if (name === '.' || name === '..') return `topic name cannot be '${name}'`
  if (name.length > 249) return `topic name ${quote(name)} is longer than 249 characters`
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) return `topic name '${name}' has characters other than ASCII letters, digits, '.', '_' and '-'`
  return null
}

/**
 * Why CreatePartitions cannot grow topic `name` from `current` partitions to `count`, in Kafka's words
 * (ReplicationControlManager.createPartitionsForTopic, INVALID_PARTITIONS), or null when `count` is larger.
 */
export function partitionCountProblem(name: string, current: number, count: number): string | null {
  if (count === current) return `Topic already has ${current} partition(s).`
  if (count < current) return `The topic ${name} currently has ${current} partition(s); ${count} would not be an increase.`
  return null
}

/**
 * Kafka's Topic.unifyCollisionChars: '.' and '_' become the same character in metric names, so two topics whose names
 * differ only there would share their metrics, and Kafka refuses to create the second (Topic.hasCollision).
 */
function unifyCollisionChars(name: string): string {
  return name.replaceAll('.', '_')
}

/**
 * Why a new topic `name` may not sit beside the topics `existing` names, or null: INVALID_TOPIC_EXCEPTION's message
 * when it differs from some only in '.' versus '_' (Kafka's ReplicationControlManager.validateNewTopicNames: "Topic
 * 'a_x' collides with existing topics: a.x"). A single node's registry and the cluster's controller both ask it.
 */
export function topicCollision(name: string, existing: Iterable<string>): string | null {
  if (!name.includes('.') && !name.includes('_')) return null
  const unified = unifyCollisionChars(name)
  const colliding = [...existing].filter((other) => other !== name && unifyCollisionChars(other) === unified)
  return colliding.length === 0 ? null : `topic '${name}' collides with existing topics: ${colliding.sort().join(', ')}`
}

export const INTERNAL_TOPICS: ReadonlySet<string> = new Set([OFFSETS_TOPIC, '__transaction_state'])

export interface NewTopic {
  name: string
  partitions: number
  replicationFactor: number
  /** From `parseConfig`. */
  config: TopicConfig
  /** The id a cluster node's metadata image gave the topic; a new one otherwise. */
  topicId?: string
}

/** The node value that holds a single node's dynamic broker configs (DynamicBrokerConfigs). */
const DYNAMIC_CONFIGS_KEY = 'dynamicBrokerConfigs'
/** The turn of dynamic config changes among the per-topic changes: no topic name is empty. */
const DYNAMIC_CONFIGS_TURN = ''

export class TopicManager {
  private readonly byName = new Map<string, Topic>()
  private readonly byId = new Map<string, Topic>()
  private readonly creating = new Map<string, Promise<Topic>>()
  private readonly deletionListeners: ((topic: Topic) => Promise<void>)[] = []
  /**
   * Per topic name, the end of the last change that writes its records (create, add partitions, set configs,
   * delete). They run one at a time: a change interleaved with a deletion would write back the records the deletion
   * removed (the topic record is stored under its name), or a deletion would remove a topic created again meanwhile.
   */
  private readonly changes = new Map<string, Promise<void>>()

  /** `settings`: the node's settings that topic configs default to, and producer.id.expiration.ms. */
  constructor(
    private readonly store: LogStore,
    private readonly nodeId: number,
    private settings: TopicSettings,
  ) {}

  /** The dynamic broker configs the topics' defaults follow now (setDynamicConfigs). */
  get dynamicConfigs(): DynamicBrokerConfigs {
    return this.settings.dynamic ?? NO_DYNAMIC_CONFIGS
  }

  /**
   * Makes `dynamic` the dynamic broker configs over this node's settings (DynamicBrokerConfigs: checked when they were
   * set) and parses every topic's configs again against them, at once: a topic without its own max.message.bytes takes
   * a new message.max.bytes at its next produce, retention and the cleaner theirs at their next pass. Stores nothing:
   * a single node stores them with `storeDynamicConfigs`, a cluster node follows its metadata image.
   */
  setDynamicConfigs(dynamic: DynamicBrokerConfigs): void {
    this.settings = { ...this.settings, dynamic }
    for (const topic of this.byName.values()) topic.config = this.parseConfig(topic.config.overrides, { stored: true })
  }

  /**
   * A single node's dynamic broker configs changed to `alter(the ones it has now)`: stored in the node's data
   * (`dynamicBrokerConfigs`, read again at start by `loadDynamicConfigs`), then applied (setDynamicConfigs). Changes run
   * one at a time. Rejects with what `alter` throws (a KafkaError for a bad config), or a StorageError, changing nothing.
   */
  storeDynamicConfigs(alter: (current: DynamicBrokerConfigs) => DynamicBrokerConfigs): Promise<DynamicBrokerConfigs> {
    return this.serialized(DYNAMIC_CONFIGS_TURN, async () => {
      const next = alter(this.dynamicConfigs)
      await this.store.putNodeValue(DYNAMIC_CONFIGS_KEY, next)
      this.setDynamicConfigs(next)
      return next
    })
  }

  /**
   * Checks that `dynamic` over this node's settings gives topic defaults that hold together (min.compaction.lag.ms at
   * most max.compaction.lag.ms); throws KafkaError(INVALID_CONFIG) saying why not.
   */
  checkDynamicConfigs(dynamic: DynamicBrokerConfigs): void {
    parseTopicConfig({}, { ...this.settings, dynamic })
  }

  /** Applies the dynamic broker configs a single node stored (storeDynamicConfigs), before its topics load. */
  async loadDynamicConfigs(): Promise<void> {
    const stored = await this.store.getNodeValue<DynamicBrokerConfigs>(DYNAMIC_CONFIGS_KEY)
    if (stored !== undefined) this.setDynamicConfigs(stored)
  }

  /** Whether the node's storage failed: it then refuses every write until the node restarts (storage/README.md). */
  get storageFailed(): boolean {
    return this.store.failure !== null
  }

  /**
   * A topic's configs parsed against this node's defaults; throws KafkaError(INVALID_CONFIG) naming a bad config.
   * `stored`: configs loaded from the node's data or the metadata log, not being set (parseTopicConfig).
   */
  parseConfig(overrides: Readonly<Record<string, string | null>>, options: { stored?: boolean } = {}): TopicConfig {
    return parseTopicConfig(overrides, this.settings, options)
  }

  /** Opens (or, for a new partition, creates) a partition's log and rebuilds its producer state. */
  private async openPartition(topic: Topic, index: number, options: { create: boolean }): Promise<Partition> {
    const log = await this.store.log(topic.topicId, index, options)
    return Partition.open(topic, index, log, {
      leaderId: this.nodeId,
      stores: this.store.transactionStores(topic.topicId, index),
      producerIdExpirationMs: this.settings.producerIdExpirationMs,
    })
  }

  /**
   * Snapshots every partition's producer state (a clean stop, as Kafka's LogManager.shutdown does), so the next start
   * replays nothing; with `changedOnly`, those of partitions appended to since their last snapshot (the periodic
   * checkpoint, so that a restart after a crash replays only what came after it). A storage that refuses writes gets
   * none: nothing may be written after a failed write. Returns the partitions snapshotted and the offset of each.
   */
  async snapshotProducerStates(options: { changedOnly?: boolean } = {}): Promise<{ partition: Partition; offset: bigint }[]> {
    const taken: { partition: Partition; offset: bigint }[] = []
    if (this.storageFailed) return taken
    for (const topic of this.list()) {
      for (const partition of topic.partitions) {
        if (options.changedOnly && !partition.appendedSinceSnapshot) continue
        try {
          taken.push({ partition, offset: await partition.takeSnapshot() })
        } catch (error) {
          if (error instanceof StorageError) return taken
          throw error
        }
      }
    }
    return taken
  }

  /** Forgets, in every partition, producers idle for producer.id.expiration.ms; returns how many went. */
  removeExpiredProducers(nowMs = Date.now()): number {
    let removed = 0
    for (const topic of this.list()) for (const partition of topic.partitions) removed += partition.removeExpiredProducers(nowMs)
    return removed
  }

  /**
   * Opens the stored topics `records` (the store's listTopics, which the caller has to count them); returns how many
   * batches were replayed to rebuild producer states (Partition.open). A partition that cannot be opened (LevelDB
   * cannot read its stored state or batches: a damaged table file) fails the whole load with a StorageError naming
   * it.
   */
  async load(records: readonly TopicRecord[]): Promise<number> {
    let replayed = 0
    for (const record of records) {
      const topic = this.topicFrom(record)
      for (let p = 0; p < record.partitions; p++) {
        let partition: Partition
        try {
          partition = await this.openPartition(topic, p, { create: false })
        } catch (error) {
          // LevelDB's own errors (a damaged table file: "Corruption: ...") name no partition.
          if (!isStorageFailure(error)) throw error
          throw new StorageError(`cannot open partition ${p} of topic '${record.name}': ${(error as Error).message}`, { cause: error })
        }
        replayed += partition.batchesReplayedAtOpen
        topic.partitions.push(partition)
      }
      this.index(topic)
    }
    return replayed
  }

  /** Configs were checked when they were set, so one that fails here was not stored by this version of Brook. */
  private topicFrom(record: TopicRecord): Topic {
    let config: TopicConfig
    try {
      config = this.parseConfig(record.configs, { stored: true })
    } catch (error) {
      throw new Error(`topic '${record.name}' has a stored config this node cannot use: ${(error as Error).message}`)
    }
    return {
      name: record.name,
      topicId: record.topicId,
      isInternal: INTERNAL_TOPICS.has(record.name),
      config,
      partitions: [],
      replicationFactor: record.replicationFactor,
    }
  }

  private index(topic: Topic): void {
    this.byName.set(topic.name, topic)
    this.byId.set(topic.topicId, topic)
  }

  private record(topic: Topic, createdAtMs = Date.now()): TopicRecord {
    return {
      name: topic.name,
      topicId: topic.topicId,
      partitions: topic.partitions.length,
      replicationFactor: topic.replicationFactor,
      configs: topic.config.overrides,
      createdAtMs,
    }
  }

  get(name: string): Topic | undefined {
    return this.byName.get(name)
  }

  getById(topicId: string): Topic | undefined {
    return this.byId.get(topicId)
  }

  list(): Topic[] {
    return [...this.byName.values()]
  }

  partition(name: string, index: number): Partition | undefined {
    return this.byName.get(name)?.partitions[index]
  }

  /**
   * Why a topic named `name` cannot be created now, or null: TOPIC_ALREADY_EXISTS when it exists or is being created,
   * INVALID_TOPIC_EXCEPTION when it differs from such a topic only in '.' versus '_' (Kafka's
   * ReplicationControlManager.validateNewTopicNames: "Topic 'a_x' collides with existing topics: a.x"). The name
   * itself must already have passed `topicNameProblem`.
   */
  newNameProblem(name: string, options: { fromImage?: boolean } = {}): KafkaError | null {
    if (this.byName.has(name) || this.creating.has(name)) return new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic '${name}' already exists`)
    // A cluster's controller refuses collisions; a topic its metadata image holds anyway (created before it did) is
    // hosted, or it could be neither used nor left.
    if (options.fromImage) return null
    const collision = topicCollision(name, [...this.byName.keys(), ...this.creating.keys()])
    return collision === null ? null : new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, collision)
  }

  /** Creates a topic; refused as `newNameProblem` says (a KafkaError); one with a `topicId` comes from the metadata image. */
  create(spec: NewTopic): Promise<Topic> {
    const problem = this.newNameProblem(spec.name, { fromImage: spec.topicId !== undefined })
    if (problem) return Promise.reject(problem)
    const pending = this.serialized(spec.name, () => this.doCreate(spec)).finally(() => this.creating.delete(spec.name))
    this.creating.set(spec.name, pending)
    return pending
  }

  /** The topic, created first if needed; concurrent calls for one name share one creation (auto-creation). */
  async getOrCreate(spec: NewTopic): Promise<{ topic: Topic; created: boolean }> {
    const existing = this.byName.get(spec.name)
    if (existing) return { topic: existing, created: false }
    const pending = this.creating.get(spec.name)
    if (pending) return { topic: await pending, created: false }
    return { topic: await this.create(spec), created: true }
  }

  private async doCreate(spec: NewTopic): Promise<Topic> {
    const topic: Topic = {
      name: spec.name,
      topicId: spec.topicId ?? randomUUID(),
      isInternal: INTERNAL_TOPICS.has(spec.name),
      config: spec.config,
      partitions: [],
      replicationFactor: spec.replicationFactor,
    }
    for (let p = 0; p < spec.partitions; p++) topic.partitions.push(await this.openPartition(topic, p, { create: true }))
    await this.store.putTopic(this.record(topic))
    this.index(topic)
    return topic
  }

  /** Runs `change` once every earlier change of the topic named `name` has ended (whether or not it failed). */
  private serialized<T>(name: string, change: () => Promise<T>): Promise<T> {
    const run = (this.changes.get(name) ?? Promise.resolve()).then(change)
    const ended = run.then(() => undefined, () => undefined)
    this.changes.set(name, ended)
    void ended.then(() => {
      if (this.changes.get(name) === ended) this.changes.delete(name)
    })
    return run
  }

  /** Whether `topic` is still the registered topic of its name (not deleted, maybe created again). */
  private isRegistered(topic: Topic): boolean {
    return this.byId.get(topic.topicId) === topic
  }

  /**
   * Grows a topic to `count` partitions. A topic deleted before this runs is left alone, as if it had grown just
   * before it was deleted.
   */
  addPartitions(topic: Topic, count: number): Promise<void> {
    return this.serialized(topic.name, async () => {
      if (!this.isRegistered(topic)) return
      for (let p = topic.partitions.length; p < count; p++) topic.partitions.push(await this.openPartition(topic, p, { create: true }))
      await this.store.putTopic(this.record(topic))
    })
  }

  /** Replaces a topic's configs; a topic deleted before this runs is left alone, as `addPartitions` does. */
  async setConfig(topic: Topic, config: TopicConfig): Promise<void> {
    await this.alterConfig(topic, () => config)
  }

  /**
   * Changes a topic's configs to `alter(the configs it has then)`, in turn with the topic's other changes, so that
   * changes asked for at once each apply on top of the one before (none computed from configs another replaces
   * meanwhile). Resolves to the configs stored, or null for a topic deleted before its turn (left alone); rejects with
   * what `alter` throws (a KafkaError for a bad value), changing nothing.
   */
  alterConfig(topic: Topic, alter: (current: TopicConfig) => TopicConfig): Promise<TopicConfig | null> {
    return this.serialized(topic.name, async () => {
      if (!this.isRegistered(topic)) return null
      const settings = this.settings
      let config = alter(topic.config)
      // Stored first, then applied: a write the storage refuses changes nothing.
      await this.store.putTopic({ ...this.record(topic), configs: config.overrides })
      // Dynamic broker configs that changed meanwhile are the defaults from now on.
      if (this.settings !== settings) config = this.parseConfig(config.overrides, { stored: true })
      topic.config = config
      return config
    })
  }

  /**
   * Runs `listener` for every topic deleted from now on, once the topic has left the registry and before its data
   * is deleted; the deletion waits for it. State other parts of the node keep under a topic's name (committed
   * offsets) goes this way, so that a topic created again under the name starts clean.
   */
  onDelete(listener: (topic: Topic) => Promise<void>): void {
    this.deletionListeners.push(listener)
  }

  /**
   * Deletes a topic: it leaves the registry at once (requests that look it up from now on find nothing, and parked
   * fetches wake to say so), then, once the changes of the topic in progress have ended, the deletion listeners run
   * and its record and data go. A topic of the same name created meanwhile is written only after that. A crash
   * before the record goes leaves the topic in place, to be deleted again.
   */
  delete(topic: Topic): Promise<void> {
    // A storage that refuses writes could not delete it: it stays, readable, rather than vanish until a restart.
    this.store.checkWritable()
    this.byName.delete(topic.name)
    this.byId.delete(topic.topicId)
    for (const partition of topic.partitions) partition.wake()
    return this.serialized(topic.name, async () => {
      await Promise.all(this.deletionListeners.map((listener) => listener(topic)))
      await this.store.deleteTopic(this.record(topic))
    })
  }
}
