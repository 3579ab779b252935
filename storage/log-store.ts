/**
 * A node's storage: its database, its group commit, its batch cache, its partition logs and its topic records.
 * Only one process may open a data directory at a time (LevelDB's lock); a second one gets a clear error, and so
 * does a database LevelDB cannot open (its cause in one line, such as "No space left on device").
 * Every write goes through the database's gate (NodeDatabase.write): after the first failed write the store refuses
 * all writes (StorageOfflineError) and keeps serving reads of what was written before it.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { NodeDatabase, StorageError, checkDatabaseDir, databaseDir, partitionKey } from './database.js'
import { GroupCommit } from './group-commit.js'
import { BatchCache } from './batch-cache.js'
import { LevelPartitionLog, type LogContext } from './level-log.js'
import type { PartitionLog } from './partition-log.js'
import { LevelRaftStore } from './raft-level-store.js'
import { ProducerSnapshotStore, producerSnapshotRange } from './producer-state-store.js'
import { TransactionIndex, transactionIndexRange } from './transaction-index.js'

export { StorageError, StorageLockedError, StorageOfflineError } from './database.js'

/**
 * Creates `dir` and its missing parents, one at a time, and returns the first one it created (undefined when `dir`
 * existed), as `mkdirSync(dir, { recursive: true })` does. Node 20's recursive mkdir spins for ever on a parent that
 * exists but takes no directories (`/proc/x`); here a failing mkdir is a StorageError at once, naming the data
 * directory and mkdir's error. A file where a directory should be (the data directory itself or one
 * of its parents) is a StorageError naming it, not ENOTDIR.
 */
function makeDirectories(dir: string, dataDir: string): string | undefined {
  const missing: string[] = []
  let path = resolve(dir)
  for (; !existsSync(path) && dirname(path) !== path; path = dirname(path)) missing.unshift(path)
  if (!statSync(path).isDirectory()) {
    throw new StorageError(
      path === resolve(dataDir)
        ? `the data directory ${dataDir} is a file, not a directory`
        : `cannot use the data directory ${dataDir}: ${path} is a file, not a directory`,
    )
  }
  for (const created of missing) {
    try {
      mkdirSync(created)
    } catch (error) {
      throw new StorageError(`cannot create the data directory ${dataDir} (${(error as Error).message})`)
    }
  }
  return missing[0]
}

export interface TopicRecord {
  name: string
  topicId: string
  partitions: number
  replicationFactor: number
  /** Only the configs set on the topic; defaults are the broker's. */
  configs: Record<string, string>
  createdAtMs: number
}

/** The node's batch cache budget unless `cacheMaxBytes` says otherwise: 256 MiB. */
export const DEFAULT_CACHE_MAX_BYTES = 256 * 1024 * 1024

/** A deleted topic whose batches take at least this much of the table files has its key range compacted at once. */
export const COMPACT_DELETED_TOPIC_BYTES = 4 * 1024 * 1024

export interface LogStoreOptions {
  /** Sync every write to disk (LevelDB `sync: true`); off by default, as Kafka relies on replication. */
  fsync?: boolean
  /** Bytes of recently appended batches kept in memory, for all partitions together (batch-cache.ts). */
  cacheMaxBytes?: number
  /** Bytes of log entries one group-commit write may carry (default MAX_WRITE_BYTES in group-commit.ts). */
  maxWriteBytes?: number
  /** Called once, with the first failed write; from then on the store refuses every write. */
  onFailure?: (error: StorageError) => void
}

export class LogStore {
  /** Open logs by `topicId/partition`; a promise, so that concurrent callers share one log object. */
  private readonly logs = new Map<string, Promise<LevelPartitionLog>>()
  private closing: Promise<void> | null = null

  private readonly context: LogContext

  private constructor(
    private readonly db: NodeDatabase,
    /** The node's group commit; its counters and `settle` are for tests and the bench. */
    readonly commit: GroupCommit,
    /** The node's batch cache; its counters are for tests and the bench. */
    readonly cache: BatchCache,
    /** The topmost directory this store created, of the data directory and its database directory (none if both existed). */
    private readonly createdDir: string | undefined,
  ) {
    this.context = { db, commit, cache }
  }

  /**
   * Opens (creating it if needed) the data directory's database. Errors are one line: StorageLockedError when
   * another process has it open, StorageError with LevelDB's cause otherwise, or naming what is missing when LevelDB
   * would delete what the directory holds (no `CURRENT`). What a failed open created is removed again.
   */
  static async open(dataDir: string, options: LogStoreOptions = {}): Promise<LogStore> {
    await checkDatabaseDir(dataDir)
    const createdDir = makeDirectories(databaseDir(dataDir), dataDir)
    const db = new NodeDatabase(dataDir, { onFailure: options.onFailure })
    try {
      await db.open()
    } catch (error) {
      if (createdDir !== undefined) rmSync(createdDir, { recursive: true, force: true })
      throw error
    }
    const commit = new GroupCommit(db, { fsync: options.fsync ?? false, maxWriteBytes: options.maxWriteBytes })
    return new LogStore(db, commit, new BatchCache(options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES), createdDir)
  }

  /** The first failed write, or null; once set, every write is refused until the process restarts. */
  get failure(): StorageError | null {
    return this.db.failure
  }

  /** Throws what a write would be refused with now (StorageOfflineError after a failure); lets it pass otherwise. */
  checkWritable(): void {
    this.db.checkWritable()
  }

  /**
   * Writes every open log's state one last time and closes the database. The high watermark and a new log start are
   * otherwise recorded only by the next write, so without this a restart would bring back older ones (Kafka, too,
   * checkpoints them on a clean shutdown). After a failed write there is no checkpoint: nothing may be written after
   * it (NodeDatabase.write). With `removeCreatedDir`, a data directory this store created is removed (a node that
   * failed to start leaves nothing behind). Calling it again returns the same promise.
   */
  close(options: { removeCreatedDir?: boolean } = {}): Promise<void> {
    this.closing ??= this.checkpointAndClose().finally(() => {
      if (options.removeCreatedDir && this.createdDir !== undefined) rmSync(this.createdDir, { recursive: true, force: true })
    })
    return this.closing
  }

  /**
   * Writes the state record of every open log whose high watermark moved since its last write (Kafka's
   * replication-offset-checkpoint, which its ReplicaManager writes every replica.high.watermark.checkpoint.interval.ms).
   * The state record otherwise carries the high watermark only with the log's next write, which a follower's, or an
   * idle partition's, may not see for a long time: a node killed then restarts from that older high watermark, which
   * as a new leader it would have to hold until its followers fetch. Nothing is written while the store refuses writes.
   */
  async checkpointHighWatermarks(): Promise<void> {
    if (this.db.writeRefusal() !== null || this.closing) return
    const opened = await Promise.allSettled(this.logs.values())
    const moved = opened.flatMap((result) => (result.status === 'fulfilled' && result.value.highWatermarkUnstored ? [result.value] : []))
    await Promise.all(moved.map((log) => this.commit.add(log).done))
  }

  private async checkpointAndClose(): Promise<void> {
    try {
      if (this.db.writeRefusal() === null) {
        const opened = await Promise.allSettled(this.logs.values())
        const logs = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
        await Promise.allSettled(logs.map((log) => this.commit.add(log).done))
      }
      await this.commit.settle()
    } finally {
      await this.db.close()
    }
  }

  /**
   * The controller quorum's store in this database (`!raft!`), synced on every write and written through the
   * database's gate, so that a failed write stops the metadata log with everything else.
   */
  raftStore(): LevelRaftStore {
    return new LevelRaftStore(this.db.raft, { write: (fill, options) => this.db.write(fill, options) })
  }

  /** Whether the controller quorum's metadata log (`!raft!`) holds anything: the directory is a cluster node's. */
  async hasMetadataLog(): Promise<boolean> {
    return (await this.db.raft.keys({ limit: 1 }).all()).length > 0
  }

  async getNodeValue<T>(key: string): Promise<T | undefined> {
    return (await this.db.node.get(key)) as T | undefined
  }

  async putNodeValue(key: string, value: unknown): Promise<void> {
    await this.db.put('node', key, value)
  }

  async listTopics(): Promise<TopicRecord[]> {
    return (await this.db.topics.values().all()) as TopicRecord[]
  }

  async putTopic(topic: TopicRecord): Promise<void> {
    await this.db.put('topics', topic.name, topic)
  }

  /** Opens (recovering) or creates the log of one partition. */
  async log(topicId: string, partition: number, options: { create: boolean }): Promise<PartitionLog> {
    const name = `${topicId}/${partition}`
    let log = this.logs.get(name)
    if (!log) {
      log = options.create ? LevelPartitionLog.create(this.context, topicId, partition) : LevelPartitionLog.open(this.context, topicId, partition)
      this.logs.set(name, log)
      // A log that failed to open is not kept, so the next caller tries again.
      log.catch(() => this.logs.delete(name))
    }
    return log
  }

  /**
   * What a partition keeps beside its log for idempotent and transactional producers: its producer-state snapshots and
   * its aborted-transaction index (producer-state-store.ts, transaction-index.ts).
   */
  transactionStores(topicId: string, partition: number): { snapshots: ProducerSnapshotStore; abortedIndex: TransactionIndex } {
    const key = partitionKey(topicId, partition)
    return { snapshots: new ProducerSnapshotStore(this.db, key), abortedIndex: new TransactionIndex(this.db, key) }
  }

  /**
   * Deletes a topic's record, then the state record, the batches, the time index, the producer-state snapshots and the
   * aborted-transaction index of each of its partitions, found by topic id rather than by the record's partition count
   * (a crash while adding partitions can leave logs the record does not list). The record goes first, so a crash
   * part-way leaves only keys that nothing refers to.
   */
  async deleteTopic(topic: TopicRecord): Promise<void> {
    // Refused before anything changes, so a refusal leaves the topic whole.
    this.db.checkWritable()
    for (const [name, log] of this.logs) {
      if (!name.startsWith(`${topic.topicId}/`)) continue
      this.logs.delete(name)
      // A request that looked the partition up before the deletion must not write its keys back afterwards.
      await log.then((l) => l.markDeleted(), () => undefined)
    }
    await this.commit.settle()
    await this.db.del('topics', topic.name)
    const topicId = partitionKey(topic.topicId, 0).subarray(0, 16)
    await this.db.clear(this.db.partitionStateRange(topicId))
    await this.db.clear(producerSnapshotRange(topicId))
    await this.db.clear(transactionIndexRange(topicId))
    const logRange = this.db.logRange(topicId)
    // Compacted at once only when its batches fill table files: then the disk space comes back now, as Kafka deletes
    // a topic's files. A small topic's keys go with LevelDB's own compactions; compacting each (a test suite deletes
    // thousands) would rewrite the neighbouring tables every time and grow LevelDB's LOG and MANIFEST, which only
    // an open trims.
    const compact = (await this.db.approximateSize(logRange.gte, logRange.lt)) >= COMPACT_DELETED_TOPIC_BYTES
    for (const range of [logRange, this.db.timeRange(topicId)]) {
      await this.db.clear(range)
      if (compact) await this.db.compactRange(range.gte, range.lt)
    }
  }
}
