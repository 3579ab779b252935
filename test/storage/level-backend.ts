/**
 * The LevelDB LogStore as a contract backend: a LogStore on a fresh temporary directory, one test topic, real
 * LevelDB on disk. The LevelDB-specific suites use it too, for its store and its raw key layout.
 */
import { afterEach } from 'vitest'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { LogStore, type LogStoreOptions } from '../../storage/log-store.js'
import type { PartitionLog } from '../../storage/partition-log.js'
import type { BackendOptions, LogBackend } from './contract/index.js'

export interface LevelBackendOptions extends BackendOptions, Pick<LogStoreOptions, 'maxWriteBytes' | 'onFailure'> {
  /** Where the data directory goes (a fresh one under it); the system's temporary directory by default. */
  parentDir?: string
}

export class LevelBackend implements LogBackend {
  readonly topicId = randomUUID()

  private constructor(
    readonly dataDir: string,
    public store: LogStore,
    private readonly options: LevelBackendOptions,
  ) {}

  static async open(options: LevelBackendOptions = {}): Promise<LevelBackend> {
    const dataDir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'brook-storage-'))
    return new LevelBackend(dataDir, await LogStore.open(dataDir, options), options)
  }

  log(partition: number): Promise<PartitionLog> {
    return this.store.log(this.topicId, partition, { create: true })
  }

  writes(): number {
    return this.store.commit.stats.writes
  }

  /**
   * Closes the LevelDB handle under the store, bypassing the store's own close: its next write fails as a write to a
   * broken disk would reach it (LEVEL_DATABASE_NOT_OPEN), with no stub in between. A write already in flight finishes.
   */
  closeUnderneath(): Promise<void> {
    return this.store['db']['level'].close()
  }

  async restart(): Promise<void> {
    await this.store.close()
    this.store = await LogStore.open(this.dataDir, this.options)
  }

  async destroy(): Promise<void> {
    await this.store.close().catch(() => undefined)
    await rm(this.dataDir, { recursive: true, force: true })
  }

  /**
   * A log entry's key as the layout in storage/database.ts documents it, built here rather than by the code under
   * test: the `!log!` sublevel prefix, topic id (16 bytes), partition (uint32 BE), the batch's last offset (int64 BE).
   */
  rawLogKey(partition: number, lastOffset: bigint): Buffer {
    const tail = Buffer.alloc(12)
    tail.writeUInt32BE(partition, 0)
    tail.writeBigInt64BE(lastOffset, 4)
    return Buffer.concat([Buffer.from('!log!'), this.topicIdBytes(), tail])
  }

  /** A partition's state-record key, laid out like `rawLogKey` under the `!partition!` prefix. */
  rawStateKey(partition: number): Buffer {
    const tail = Buffer.alloc(4)
    tail.writeUInt32BE(partition, 0)
    return Buffer.concat([Buffer.from('!partition!'), this.topicIdBytes(), tail])
  }

  /** A time index entry's key, laid out like `rawLogKey` under the `!time!` prefix, for the block ending at `offset`. */
  rawTimeKey(partition: number, offset: bigint): Buffer {
    const tail = Buffer.alloc(12)
    tail.writeUInt32BE(partition, 0)
    tail.writeBigInt64BE(offset, 4)
    return Buffer.concat([Buffer.from('!time!'), this.topicIdBytes(), tail])
  }

  /** Where the blocks of `partition`'s time index end, from its raw keys. */
  async timeIndexOffsets(partition: number): Promise<bigint[]> {
    const prefix = this.rawTimeKey(partition, 0n).subarray(0, -8)
    return (await this.allKeys()).filter((key) => key.subarray(0, prefix.length).equals(prefix)).map((key) => key.readBigInt64BE(prefix.length))
  }

  /**
   * Stops the store, hands the bare LevelDB database to `edit` (as a crash or a disk could leave it), and starts the
   * store again on the result.
   */
  async whileStopped(edit: (db: Level<Buffer, Buffer>) => Promise<void>): Promise<void> {
    await this.store.close()
    const db = new Level<Buffer, Buffer>(join(this.dataDir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    try {
      await edit(db)
    } finally {
      await db.close()
    }
    this.store = await LogStore.open(this.dataDir, this.options)
  }

  topicIdBytes(): Buffer {
    return Buffer.from(this.topicId.replaceAll('-', ''), 'hex')
  }

  /** Every key in the database, raw (read through the store's private handle: only a test looks at raw keys). */
  async allKeys(): Promise<Buffer[]> {
    return this.store['db'].db.keys().all()
  }
}

export const openLevelBackend = (options: BackendOptions): Promise<LevelBackend> => LevelBackend.open(options)

/** A read limit no test reaches: whole logs come back. */
export const NO_LIMIT = 1 << 30

/**
 * For a suite's tests that open backends of their own: `open()` gives a fresh backend, and every one opened in a
 * test is destroyed after it.
 */
export function backendsPerTest(): { open(options?: LevelBackendOptions): Promise<LevelBackend> } {
  const opened: LevelBackend[] = []
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.destroy()))
  })
  return {
    async open(options: LevelBackendOptions = {}) {
      const backend = await LevelBackend.open(options)
      opened.push(backend)
      return backend
    },
  }
}
