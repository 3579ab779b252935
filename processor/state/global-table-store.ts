/**
 * The global tables' rows on disk (Kafka Streams keeps a GlobalKTable in a RocksDB store): one LevelDB database
 * under `<stateDir>/global-tables/` holds the latest raw value of every key of every table, and a cache of raw
 * values in front of it stays within a byte budget (CacheBudget: half of the instance's cacheMaxBytes, the task
 * stores having the other half, runtime/runner.ts). So a table of millions of rows costs the heap only what the budget
 * allows, where a Map of every decoded row grew with the table. The table's deserializer decodes the row at each
 * lookup, so each lookup gets an object of its own, as a Kafka Streams store hands out a freshly deserialized value
 * at every get: a joiner or a later operator that changes the row it got changes nothing in the table.
 *
 *   key (utf8)            value (bytes)
 *   <table index>:<key>   the row's value as read from the table topic (a tombstone deletes the key)
 *
 * - A lookup (`GlobalTable.get`) is synchronous, as enrichment is on the per-record path: a cached value, or a read of
 *   LevelDB on the event loop (classic-level's `getSync`: LevelDB's block cache, then the OS page cache) and the
 *   table's deserializer. Keys a lookup found missing are cached too, so a stream of keys absent from the table does
 *   not read LevelDB at every record.
 * - Only rows the table's deserializer could read are written (global-tables.ts sends the others to the dead-letter
 *   topic), and a lookup decodes the same bytes with the same deserializer.
 * - `write` lands a batch of rows in one LevelDB batch and only then drops their keys from the cache, so a lookup
 *   that read a key's old value while the batch was being written does not keep it.
 * - The database holds nothing worth keeping: the tables are read from the start whenever their consumer starts
 *   (global-tables.ts). `open` removes what an instance that was killed left, and `close` removes the directory.
 * - Entries are dropped, oldest first with a second chance for those read since the last pass (CLOCK, as the task
 *   store's slots), once the cache holds more than its budget.
 */
import { Level } from 'level'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { CacheBudget } from './task-store.js'

/** The directory under the state directory that holds the global tables' database. */
export const GLOBAL_TABLES_DIRECTORY = 'global-tables'

/** Per-entry overhead of the cache (the Map entry, the entry object, the key string's header). */
const ENTRY_OVERHEAD_BYTES = 112
/** The heap a row's bytes take beside their length: the Buffer (a typed array and its ArrayBuffer, each an object). */
const RAW_VALUE_OVERHEAD_BYTES = 160

/** What enrichment needs from a table: the value of a key, or undefined when the table has none. */
export interface TableLookup {
  get(key: string): unknown
}

/** One row of a table topic to store: a null value deletes the key. */
export interface TableRow {
  table: GlobalTable
  key: string
  value: Buffer | null
}

interface CacheEntry {
  /** The row's value as stored; undefined: the table has no row for the key. */
  raw: Buffer | undefined
  bytes: number
  /** Read since the last eviction pass (CLOCK's reference bit). */
  used: boolean
}

export class GlobalTableStore {
  private readonly cache = new Map<string, CacheEntry>()
  private tables = 0

  private constructor(
    private readonly db: Level<string, Buffer>,
    private readonly dir: string,
    private readonly budget: CacheBudget,
  ) {}

  /**
   * Opens an empty store in `<stateDir>/global-tables/`, removing what an earlier instance left there. Errors: the
   * LevelDB open error (for example a directory that cannot be written).
   */
  static async open(stateDir: string, budget: CacheBudget): Promise<GlobalTableStore> {
    const dir = join(stateDir, GLOBAL_TABLES_DIRECTORY)
    rmSync(dir, { recursive: true, force: true })
    const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    return new GlobalTableStore(db, dir, budget)
  }

  /** A table in this store, whose stored values `deserialize` decodes (the table's value deserializer). */
  table(deserialize: (value: Buffer) => unknown): GlobalTable {
    return new GlobalTable(this, `${this.tables++}:`, deserialize)
  }

  /** The value of `key` (a prefixed key), decoded from the cache's or LevelDB's bytes: a new object at each call. */
  lookup(key: string, deserialize: (value: Buffer) => unknown): unknown {
    const cached = this.cache.get(key)
    if (cached !== undefined) {
      cached.used = true
      return cached.raw === undefined ? undefined : deserialize(cached.raw)
    }
    const raw = this.db.getSync(key)
    const bytes = ENTRY_OVERHEAD_BYTES + key.length * 2 + (raw === undefined ? 0 : RAW_VALUE_OVERHEAD_BYTES + raw.length)
    this.cache.set(key, { raw, bytes, used: false })
    this.budget.used += bytes
    this.evict()
    return raw === undefined ? undefined : deserialize(raw)
  }

  /** Writes `rows` in one LevelDB batch, then drops their keys from the cache. Errors: LevelDB's write error. */
  async write(rows: readonly TableRow[]): Promise<void> {
    if (rows.length === 0) return
    const batch = this.db.batch()
    for (const row of rows) {
      const key = row.table.prefix + row.key
      if (row.value === null) batch.del(key)
      else batch.put(key, row.value)
    }
    await batch.write()
    for (const row of rows) this.forget(row.table.prefix + row.key)
  }

  /** Closes the database and removes its directory, and gives the cache's bytes back to the budget. */
  async close(): Promise<void> {
    for (const entry of this.cache.values()) this.budget.used -= entry.bytes
    this.cache.clear()
    await this.db.close()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** How many entries the cache holds (for tests and the bench). */
  get cachedEntries(): number {
    return this.cache.size
  }

  private forget(key: string): void {
    const entry = this.cache.get(key)
    if (entry === undefined) return
    this.cache.delete(key)
    this.budget.used -= entry.bytes
  }

  /** Drops entries, oldest first, skipping (once) those read since the last pass, until within the budget. */
  private evict(): void {
    if (this.budget.used <= this.budget.limitBytes) return
    // Each entry is passed over at most once (its bit cleared, moved to the end) before it can be dropped.
    let steps = this.cache.size * 2
    for (const [key, entry] of this.cache) {
      if (this.budget.used <= this.budget.limitBytes * 0.9 || steps-- <= 0) return
      this.cache.delete(key)
      if (entry.used) {
        entry.used = false
        this.cache.set(key, entry)
      } else {
        this.budget.used -= entry.bytes
      }
    }
  }
}

/** One table of a GlobalTableStore: its keys are the store's under the table's prefix. */
export class GlobalTable implements TableLookup {
  constructor(
    private readonly store: GlobalTableStore,
    readonly prefix: string,
    private readonly deserialize: (value: Buffer) => unknown,
  ) {}

  /**
   * The table's value for `key` (what its deserializer made of the latest row), or undefined when it has none. Table
   * keys are strings: a lookup key of another type (an enrich `key` function returning a number) finds nothing, as
   * in a Map, rather than the row of its string form. Errors: what the deserializer throws, should it refuse bytes it
   * read before.
   */
  get(key: string): unknown {
    if (typeof key !== 'string') return undefined
    return this.store.lookup(this.prefix + key, this.deserialize)
  }
}
