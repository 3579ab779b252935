/**
 * One LevelDB database per node (`<dataDir>/db`), with a sublevel per concern:
 *
 *   !log!        partitionKey(20) | lastOffset(int64 BE)  -> record batch bytes, as served
 *   !partition!  partitionKey(20)                         -> msgpack PartitionState
 *   !time!       partitionKey(20) | offset(int64 BE)      -> time index entry (time-index.ts)
 *   !topic!      topic name (utf8)                        -> msgpack TopicRecord
 *   !node!       'identity'                               -> msgpack { clusterId, nodeId }
 *   !raft!       the controller quorum's metadata log     (raft-level-store.ts)
 *
 * partitionKey = topicId (16 bytes) | partition (uint32 BE). Keys are fixed-width big-endian, so LevelDB's byte
 * order is offset order within a partition, and `gte(logKey(p, offset))` lands on the batch that holds `offset`
 * (the first batch whose last offset is >= it). Keying by topic id, not name, means a recreated topic never sees
 * the old one's batches.
 *
 * Hot-path writes go through the root database with keys that already carry the sublevel prefix (`logKey`), which
 * is about 20% faster than the chained batch's `{ sublevel }` option and stores the same bytes.
 *
 * Every write passes one gate, `NodeDatabase.write`: writes run one at a time, and the first one that fails stops
 * all writing until the process restarts (fail-stop; `write` explains why). Reads go on: what was written before the
 * failure stays readable, and a restart recovers exactly that.
 */
import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { Packr } from 'msgpackr'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { dataDirectoryHolder, databaseDir, lockFileOf } from './lock-holder.js'

export { dataDirectoryHolder, dataDirectoryLockHolder, databaseDir } from './lock-holder.js'

export type Sublevel<K, V> = AbstractSublevel<Level<Buffer, Buffer>, string | Buffer | Uint8Array, K, V>

/** What may be done with the database outside a gated write: read. */
type Reads<T> = Pick<T, Extract<keyof T, 'get' | 'values' | 'keys' | 'iterator'>>

type ChainedBatch = ReturnType<Level<Buffer, Buffer>['batch']>
/** What a write fills: puts and deletes, root-level or (with the `sublevel` option) in a sublevel. */
export type WriteBatch = Pick<ChainedBatch, 'put' | 'del' | 'length'>

/** msgpack with int64 round-tripping as bigint. */
export const packr = new Packr({ int64AsType: 'bigint', mapsAsObjects: true })
const msgpack = {
  encode: (value: unknown): Buffer => packr.pack(value),
  decode: (buffer: Buffer): unknown => packr.unpack(buffer),
  name: 'msgpack',
  format: 'buffer' as const,
}

/**
 * LevelDB options of a node's database. A 64 MiB write buffer (4 MiB by default) means far fewer level-0 files when
 * many partitions are written at once: their interleaved keys make every level-0 file span every partition, so each
 * compaction rewrites much more. Measured with the bench harness on 8 partitions: device writes 3.4 GB -> 1.5 GB per
 * GiB written, raw write 44-48 -> 146-215 MB/s. It costs up to two memtables of memory under heavy writes, and a
 * longer write-ahead-log replay on restart. The bench's raw scenario opens its database with the same options.
 */
export const LEVEL_OPTIONS = { writeBufferSize: 64 * 1024 * 1024 } as const

export const PARTITION_KEY_SIZE = 20
export const LOG_KEY_SIZE = PARTITION_KEY_SIZE + 8

export function partitionKey(topicId: string, partition: number): Buffer {
  const key = Buffer.allocUnsafe(PARTITION_KEY_SIZE)
  key.write(topicId.replaceAll('-', ''), 0, 16, 'hex')
  key.writeUInt32BE(partition, 16)
  return key
}

/** A write to the node's database failed (the message carries LevelDB's cause, such as "No space left on device"). */
export class StorageError extends Error {
  override readonly name: string = 'StorageError'
}

/**
 * A write refused because an earlier one failed: "storage failed earlier: <cause>; restart the node". Distinct from
 * the failure itself, so that a node whose disk has space again does not report a full disk for every refusal.
 */
export class StorageOfflineError extends StorageError {
  override readonly name = 'StorageOfflineError'
}

/** Another process holds the data directory's LevelDB lock. */
export class StorageLockedError extends StorageError {
  override readonly name = 'StorageLockedError'
}

/** Who holds the directory's lock, for the message; nothing when it is this process. */
function lockedBy(dataDir: string, cause: { message?: string }): string {
  // LevelDB's own answer when this process has the directory open already (env_posix.cc: "already held by process").
  // Its failed open has closed a descriptor of the LOCK file, which drops this process's fcntl lock: /proc/locks no
  // longer lists it.
  if (cause.message?.includes('already held by process')) return ''
  const holder = dataDirectoryHolder(dataDir)
  return holder === null ? ` (\`lsof ${lockFileOf(dataDir)}\` names it)` : `: ${holder}`
}

export interface NodeDatabaseOptions {
  /** Called once, with the first failed write (the node logs it: from then on it refuses every write). */
  onFailure?: (error: StorageError) => void
}

/** Keys deleted per write by `clear`, so that other writes wait behind one chunk rather than a whole range. */
const CLEAR_CHUNK_KEYS = 1024

export class NodeDatabase {
  /** Reads go straight to LevelDB; every write goes through `write` (the gate below). */
  readonly db: Reads<Level<Buffer, Buffer>>
  readonly logs: Reads<Sublevel<Buffer, Buffer>>
  readonly partitions: Reads<Sublevel<Buffer, unknown>>
  readonly topics: Reads<Sublevel<string, unknown>>
  readonly node: Reads<Sublevel<string, unknown>>
  /**
   * The controller quorum's metadata log (raft-level-store.ts). Its store needs the sublevel itself, to name it in
   * the batches it fills, but writes it only through `write` like everything else.
   */
  readonly raft: Sublevel<Buffer, Buffer>
  /** The first failed write; from then on every write is refused with `refusal`. */
  failure: StorageError | null = null
  private refusal: StorageOfflineError | null = null
  private closed = false
  /** The tail of the queue of writes: each starts when the one before it has finished. */
  private lastWrite: Promise<unknown> = Promise.resolve()
  private readonly level: Level<Buffer, Buffer>
  private readonly sublevels: { topics: Sublevel<string, unknown>; node: Sublevel<string, unknown> }
  private readonly logPrefix: Buffer
  private readonly statePrefix: Buffer
  private readonly timePrefix: Buffer

  constructor(
    readonly dataDir: string,
    private readonly options: NodeDatabaseOptions = {},
  ) {
    this.level = new Level<Buffer, Buffer>(databaseDir(dataDir), { ...LEVEL_OPTIONS, keyEncoding: 'buffer', valueEncoding: 'buffer' })
    const logs = this.level.sublevel<Buffer, Buffer>('log', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    const partitions = this.level.sublevel<Buffer, unknown>('partition', { keyEncoding: 'buffer', valueEncoding: msgpack })
    const topics = this.level.sublevel<string, unknown>('topic', { keyEncoding: 'utf8', valueEncoding: msgpack })
    const node = this.level.sublevel<string, unknown>('node', { keyEncoding: 'utf8', valueEncoding: msgpack })
    const time = this.level.sublevel<Buffer, Buffer>('time', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    this.db = this.level
    this.logs = logs
    this.partitions = partitions
    this.topics = topics
    this.node = node
    this.raft = this.level.sublevel<Buffer, Buffer>('raft', { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    this.sublevels = { topics, node }
    this.logPrefix = Buffer.from(logs.prefix, 'utf8')
    this.statePrefix = Buffer.from(partitions.prefix, 'utf8')
    this.timePrefix = Buffer.from(time.prefix, 'utf8')
  }

  /**
   * Opens LevelDB; a failure is a StorageError with LevelDB's cause (the lock, "No space left on device"...). The
   * constructor has started the open already (abstract-level opens a database in the microtask after its
   * construction), so a directory must pass `checkDatabaseDir` before one is constructed on it.
   */
  async open(): Promise<void> {
    try {
      await this.level.open()
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new StorageLockedError(`the data directory ${this.dataDir} is already in use by another Brook process${lockedBy(this.dataDir, cause)}`, { cause })
      }
      throw new StorageError(`cannot open the database in ${this.dataDir}: ${cause?.message ?? (error as Error).message}`, { cause })
    }
  }

  /** Refuses writes from now on, lets the ones already queued finish, and closes LevelDB (which writes nothing). */
  async close(): Promise<void> {
    this.closed = true
    await this.lastWrite
    await this.level.close()
  }

  /**
   * The write gate. Every change to the database is one call: `fill` adds puts and deletes to a batch, which is then
   * written atomically. Writes run one at a time, in call order, and after the first one fails none is attempted
   * again (StorageOfflineError) until the process restarts:
   *
   *   write -> [queue: one at a time] -> refused? -> fill -> LevelDB write -> ok | failed: fail-stop, refuse the rest
   *
   * Why fail-stop: a LevelDB write that fails part-way (a full disk) can leave a torn record in the write-ahead log.
   * LevelDB carries on writing after it, and those later writes are readable in this process, but when the database
   * is reopened the log reader drops the torn record and every record after it ("dropping ... Corruption: checksum
   * mismatch" in db/LOG): acknowledged data vanishes on restart. So nothing is written after a failure, not even the
   * checkpoint at close; what was written before it is intact, and a restart (with space again) recovers exactly that.
   * One write at a time makes "after" exact: no write can already be on its way to LevelDB when one fails.
   *
   * `options.batch` is a batch filled ahead (`stagedBatch`): `fill` adds to it, and it is written (or, refused, freed)
   * here like a fresh one.
   */
  write<T>(fill: (batch: WriteBatch) => T, options: { sync?: boolean; batch?: WriteBatch } = {}): Promise<T> {
    const run = this.lastWrite.then(async () => {
      let batch = options.batch as ChainedBatch | undefined
      const refusal = this.writeRefusal()
      if (refusal) {
        await batch?.close().catch(() => undefined)
        throw refusal
      }
      try {
        batch ??= this.level.batch()
        const result = fill(batch)
        await batch.write({ sync: options.sync ?? false })
        return result
      } catch (error) {
        // write() closes the batch itself; one that never got there still holds native resources.
        await batch?.close().catch(() => undefined)
        throw this.fail(error)
      }
    })
    this.lastWrite = run.catch(() => undefined)
    return run
  }

  /**
   * A batch to fill ahead of its write, then hand to `write` (`options.batch`), which adds `fill`'s changes after
   * what it holds and writes it through the gate like any other; one never written must be `discard`ed. The group
   * commit stages each appended batch in the next write's batch this way (group-commit.ts, "Staging").
   */
  stagedBatch(): WriteBatch {
    return this.level.batch()
  }

  /** Frees a staged batch that will not be written (its write was refused). */
  discard(batch: WriteBatch): void {
    ;(batch as ChainedBatch).close().catch(() => undefined)
  }

  /** Throws if writes are refused: StorageOfflineError after a failed write, an Error once the database is closing. */
  checkWritable(): void {
    const refusal = this.writeRefusal()
    if (refusal) throw refusal
  }

  /** What a write would be refused with now, or null if writes are accepted. */
  writeRefusal(): Error | null {
    if (this.refusal) return this.refusal
    if (this.closed) return new Error(`the database in ${this.dataDir} is closed`)
    return null
  }

  private fail(error: unknown): StorageError {
    if (error instanceof StorageError) return error
    const cause = error instanceof Error ? error.message : String(error)
    const failure = new StorageError(`writing to the database in ${this.dataDir} failed: ${cause}`, { cause: error })
    if (this.failure) return failure
    this.failure = failure
    this.refusal = new StorageOfflineError(`storage failed earlier: ${cause}; restart the node`, { cause: error })
    this.options.onFailure?.(failure)
    return failure
  }

  /** Puts a msgpack value under `key` of the topic records (`'topics'`) or the node's own records (`'node'`). */
  put(sublevel: 'topics' | 'node', key: string, value: unknown): Promise<void> {
    return this.write((batch) => void batch.put<string, unknown>(key, value, { sublevel: this.sublevels[sublevel] }))
  }

  /** Deletes `key` of the topic records or the node's own records. */
  del(sublevel: 'topics' | 'node', key: string): Promise<void> {
    return this.write((batch) => void batch.del<string>(key, { sublevel: this.sublevels[sublevel] }))
  }

  /**
   * Deletes every key in [gte, lt), a chunk of keys per write, so that appends waiting behind it wait for one chunk.
   * A failure part-way leaves the rest of the range, which the caller's layout must tolerate (nothing refers to it).
   */
  async clear(range: { gte: Buffer; lt: Buffer }): Promise<void> {
    const iterator = this.level.keys({ ...range, fillCache: false })
    try {
      for (;;) {
        const keys = await iterator.nextv(CLEAR_CHUNK_KEYS)
        if (keys.length === 0) return
        await this.write((batch) => {
          for (const key of keys) batch.del(key)
        })
      }
    } finally {
      await iterator.close()
    }
  }

  /**
   * Compacts a key range so deleted keys stop costing seeks. It runs beside writes rather than in the write queue (it
   * can take seconds, and it never touches the write-ahead log's records: a compaction that fails leaves them, and
   * LevelDB then refuses writes itself), but it is refused after a failure and a failure of its own is one too. In
   * Node, `level` is classic-level, which has this method; the universal `Level` type does not declare it.
   */
  async compactRange(gte: Buffer, lt: Buffer): Promise<void> {
    this.checkWritable()
    try {
      await (this.level as unknown as { compactRange(start: Buffer, end: Buffer): Promise<void> }).compactRange(gte, lt)
    } catch (error) {
      throw this.fail(error)
    }
  }

  /**
   * LevelDB's estimate of the bytes the key range takes in its table files (not what is still only in the memtable):
   * classic-level's approximateSize.
   */
  async approximateSize(gte: Buffer, lt: Buffer): Promise<number> {
    try {
      return await (this.level as unknown as { approximateSize(start: Buffer, end: Buffer): Promise<number> }).approximateSize(gte, lt)
    } catch (error) {
      throw this.fail(error)
    }
  }

  /** A root-level key for a log entry: the sublevel prefix, the partition key, the batch's last offset. */
  logKey(partition: Buffer, lastOffset: bigint): Buffer {
    const key = Buffer.allocUnsafe(this.logPrefix.length + LOG_KEY_SIZE)
    this.logPrefix.copy(key, 0)
    partition.copy(key, this.logPrefix.length)
    key.writeBigInt64BE(lastOffset, this.logPrefix.length + PARTITION_KEY_SIZE)
    return key
  }

  /** The root-level key range [start, end) that holds every log entry of a partition (or, given 16 bytes, a topic). */
  logRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
    return prefixRange(Buffer.concat([this.logPrefix, prefix]))
  }

  /** A root-level key of a time index entry: the sublevel prefix, the partition key, the offset its block ends at. */
  timeKey(partition: Buffer, offset: bigint): Buffer {
    const key = Buffer.allocUnsafe(this.timePrefix.length + LOG_KEY_SIZE)
    this.timePrefix.copy(key, 0)
    partition.copy(key, this.timePrefix.length)
    key.writeBigInt64BE(offset, this.timePrefix.length + PARTITION_KEY_SIZE)
    return key
  }

  /** The root-level key range of a partition's time index (or, given 16 bytes, a topic's). */
  timeRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
    return prefixRange(Buffer.concat([this.timePrefix, prefix]))
  }

  /** The root-level key range of a partition's state record (or, given 16 bytes, of every partition of a topic). */
  partitionStateRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
    return prefixRange(this.partitionStateKey(prefix))
  }

  /** The root-level key of a partition's state record (prefixed like `logKey`). */
  partitionStateKey(partition: Buffer): Buffer {
    return Buffer.concat([this.statePrefix, partition])
  }
}

/** Every key that starts with `gte`: [gte, the next byte string of the same length). */
export function prefixRange(gte: Buffer): { gte: Buffer; lt: Buffer } {
  const lt = Buffer.from(gte)
  for (let i = lt.length - 1; i >= 0; i--) {
    if (lt[i]! < 0xff) {
      lt[i] = lt[i]! + 1
      break
    }
    lt[i] = 0
  }
  return { gte, lt }
}

/**
 * Why a database directory cannot be opened as it is, or null: LevelDB's `CURRENT` names the MANIFEST that lists
 * the table files, and LevelDB opened without it (createIfMissing) starts an empty database and deletes every table
 * and MANIFEST it finds as obsolete, so a node started on it comes up with no topics, under a new cluster id, its
 * data gone for good. Kafka refuses a log directory whose metadata is missing rather than format it again. The
 * answer names the newest MANIFEST and how to put `CURRENT` back (its content is that name and a newline).
 */
async function missingCurrent(dir: string): Promise<string | null> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return null
  }
  if (names.includes('CURRENT')) return null
  const manifests = names.filter((name) => /^MANIFEST-\d+$/.test(name)).sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)))
  const tables = names.filter((name) => /^\d+\.(ldb|sst)$/.test(name)).length
  const logs = names.filter((name) => /^\d+\.log$/.test(name)).length
  if (manifests.length === 0 && tables === 0 && logs === 0) return null
  const current = join(dir, 'CURRENT')
  const newest = manifests.at(-1)
  const held = [
    newest,
    tables > 0 ? `${tables} table file${tables === 1 ? '' : 's'}` : null,
    logs > 0 ? `${logs} write-ahead log${logs === 1 ? '' : 's'}` : null,
  ]
    .filter(Boolean)
    .join(', ')
  const remedy = newest
    ? `put it back (echo ${newest} > ${current}) and start again`
    : `restore the directory from a copy, or move ${dir} aside to start with no data`
  return `${current} is missing while the directory holds LevelDB's files (${held}): opened as it is, LevelDB would start an empty database and delete them; ${remedy}`
}

/**
 * Throws a StorageError ("cannot open the database in <dataDir>: ...") when the data directory's database cannot be
 * opened as it is without losing data (a missing `CURRENT`, `missingCurrent`). Call it before constructing a
 * NodeDatabase: construction starts LevelDB's open.
 */
export async function checkDatabaseDir(dataDir: string): Promise<void> {
  const why = await missingCurrent(databaseDir(dataDir))
  if (why) throw new StorageError(`cannot open the database in ${dataDir}: ${why}`)
}

/**
 * Whether `error` comes from the database: a StorageError, or LevelDB's own (abstract-level's codes start with
 * `LEVEL_`: LEVEL_CORRUPTION for a damaged table file, LEVEL_IO_ERROR...), which names no directory or partition.
 */
export function isStorageFailure(error: unknown): boolean {
  if (error instanceof StorageError) return true
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('LEVEL_')
}
