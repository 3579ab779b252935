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
  private readonly logs = new Map<string, PartitionLog>()

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
        throw new StorageLockedError(`the data directory ${dataDir} is in use by another process`)
      }
      throw error
    }
    const commit = new GroupCommit(db.db, { fsync: options.fsync ?? false })
    return new LogStore(db, commit, options.tailCacheBytes ?? 4 * 1024 * 1024)
  }

  async close(): Promise<void> {
    await this.commit.settle()
    await this.db.close()
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
        ? await PartitionLog.create(this.db, this.commit, topicId, partition, logOptions)
        : await PartitionLog.open(this.db, this.commit, topicId, partition, logOptions)
      this.logs.set(name, log)
    }
    return log
  }

  /** Deletes a topic's record, state records and every batch. */
  async deleteTopic(topic: TopicRecord): Promise<void> {
    await this.commit.settle()
    await this.db.topics.del(topic.name)
    const batch = this.db.partitions.batch()
    for (let p = 0; p < topic.partitions; p++) {
      batch.del(partitionKey(topic.topicId, p))
      this.logs.delete(`${topic.topicId}/${p}`)
    }
    await batch.write()
    const range = this.db.logRange(Buffer.from(topic.topicId.replaceAll('-', ''), 'hex'))
    await this.db.db.clear(range)
    await this.db.compactRange(range.gte, range.lt)
  }
}
