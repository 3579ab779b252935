/**
 * A node's storage: its database, its group commit, its partition logs and its topic records.
 * Only one process may open a data directory at a time (LevelDB's lock); a second one gets a clear error.
 */
import { NodeDatabase, partitionKey } from './database.js'
import { GroupCommit } from './group-commit.js'
import { PartitionLog } from './partition-log.js'

export interface TopicRecord {
  name: string
  topicId: string
  partitions: number
  replicationFactor: number
  /** Only the configs set on the topic; defaults are the broker's. */
  configs: Record<string, string>
  createdAtMs: number
}

export interface LogStoreOptions {
  /** Sync every write to disk (LevelDB `sync: true`); off by default, as Kafka relies on replication. */
  fsync?: boolean
  tailCacheBytes?: number
}

export class StorageLockedError extends Error {
  override readonly name = 'StorageLockedError'
}

export class LogStore {
  /** Open logs by `topicId/partition`; a promise, so that concurrent callers share one log object. */
  private readonly logs = new Map<string, Promise<PartitionLog>>()
  private closing: Promise<void> | null = null

  private constructor(
    readonly db: NodeDatabase,
    readonly commit: GroupCommit,
    private readonly tailCacheBytes: number,
  ) {}

  static async open(dataDir: string, options: LogStoreOptions = {}): Promise<LogStore> {
    const db = new NodeDatabase(dataDir)
    try {
      await db.open()
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new StorageLockedError(
          `the data directory ${dataDir} is already in use (by another process or another LogStore)`,
        )
      }
      throw error
    }
    const commit = new GroupCommit(db.db, { fsync: options.fsync ?? false })
    return new LogStore(db, commit, options.tailCacheBytes ?? 4 * 1024 * 1024)
  }

  /**
   * Writes every open log's state one last time and closes the database. The high watermark and a new log start are
   * otherwise recorded only by the next write, so without this a restart would bring back older ones (Kafka, too,
   * checkpoints them on a clean shutdown). Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.checkpointAndClose()
    return this.closing
  }

  private async checkpointAndClose(): Promise<void> {
    try {
      if (!this.commit.failure) {
        const opened = await Promise.allSettled(this.logs.values())
        const logs = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
        await Promise.all(logs.map((log) => this.commit.add(log)))
      }
      await this.commit.settle()
    } finally {
      await this.db.close()
    }
  }

  async getNodeValue<T>(key: string): Promise<T | undefined> {
    return (await this.db.node.get(key)) as T | undefined
  }

  async putNodeValue(key: string, value: unknown): Promise<void> {
    await this.db.node.put(key, value)
  }

  async listTopics(): Promise<TopicRecord[]> {
    return (await this.db.topics.values().all()) as TopicRecord[]
  }

  async putTopic(topic: TopicRecord): Promise<void> {
    await this.db.topics.put(topic.name, topic)
  }

  /** Opens (recovering) or creates the log of one partition. */
  async log(topicId: string, partition: number, options: { create: boolean }): Promise<PartitionLog> {
    const name = `${topicId}/${partition}`
    let log = this.logs.get(name)
    if (!log) {
      const logOptions = { tailCacheBytes: this.tailCacheBytes }
      log = options.create
        ? PartitionLog.create(this.db, this.commit, topicId, partition, logOptions)
        : PartitionLog.open(this.db, this.commit, topicId, partition, logOptions)
      this.logs.set(name, log)
      // A log that failed to open is not kept, so the next caller tries again.
      log.catch(() => this.logs.delete(name))
    }
    return log
  }

  /**
   * Deletes a topic's record, then the state record and every batch of each of its partitions, found by topic id
   * rather than by the record's partition count (a crash while adding partitions can leave logs the record does not
   * list). The record goes first, so a crash part-way leaves only keys that nothing refers to.
   */
  async deleteTopic(topic: TopicRecord): Promise<void> {
    for (const [name, log] of this.logs) {
      if (!name.startsWith(`${topic.topicId}/`)) continue
      this.logs.delete(name)
      // A request that looked the partition up before the deletion must not write its keys back afterwards.
      await log.then((l) => l.markDeleted(), () => undefined)
    }
    await this.commit.settle()
    await this.db.topics.del(topic.name)
    const topicId = partitionKey(topic.topicId, 0).subarray(0, 16)
    await this.db.db.clear(this.db.partitionStateRange(topicId))
    const range = this.db.logRange(topicId)
    await this.db.db.clear(range)
    await this.db.compactRange(range.gte, range.lt)
  }
}
