/**
 * The state of one task: a LevelDB database (npm `level`) under `<stateDir>/<taskId>/`, a cache of decoded
 * entries in front of it, and the checkpoint that says how far the database reflects the task's changelog.
 *
 *   key (utf8)                                value (bytes)
 *   <operator>\x01<group>                      msgpack of the operator's entry (the changelog carries the same bytes)
 *   \x00position                               msgpack { position, streamTimes }: where the task's input resumes
 *   \x00checkpoint                             the changelog offset the database is current up to (not in the changelog)
 *
 * Invariants:
 * - The database only ever holds what the changelog already holds: a commit writes the changelog first and then the
 *   same bytes plus the new checkpoint in one LevelDB batch. So after any crash, "database + changelog from the
 *   checkpoint on" is exactly the changelog's content, and a restore replays only that tail.
 * - Dirty entries (changed since the last commit) are never evicted; clean ones are evicted once the instance's cache
 *   holds more than its byte budget (CacheBudget, shared by the instance's tasks), oldest first with a second
 *   chance for entries read since the last eviction pass (CLOCK: a read sets a bit instead of reordering the Map,
 *   which keeps the per-record path free of Map churn).
 */
import { Level } from 'level'
import { Packr } from 'msgpackr'
import { rmSync } from 'node:fs'

const packr = new Packr({ useRecords: false, moreTypes: false })

export const POSITION_KEY = '\x00position'
const CHECKPOINT_KEY = '\x00checkpoint'
/** Size assumed for an entry that has not been encoded yet. */
const UNKNOWN_ENTRY_BYTES = 256
/** Per-entry overhead of the cache (the Map slot, the entry object, the key string). */
const ENTRY_OVERHEAD_BYTES = 96

/** The task's input position and its operators' stream times, saved with every commit. */
export interface TaskPosition {
  /** The next offset of the source partition to process. */
  position: string
  streamTimes: Record<string, number>
}

/** How one operator's entries become plain data and back (entries may hold sketches). */
export interface EntryCodec {
  encode(entry: unknown): unknown
  decode(plain: unknown): unknown
}

/** The byte budget of an instance's caches; each store evicts its own clean entries when the total is over. */
export class CacheBudget {
  used = 0
  constructor(readonly limitBytes: number) {}
}

interface CacheEntry {
  value: unknown
  dirty: boolean
  deleted: boolean
  bytes: number
  /** Read since the last eviction pass (CLOCK's reference bit). */
  used: boolean
}

/** One encoded state change, as written to the changelog and to LevelDB: a null value deletes the key. */
export interface StateRecord {
  key: string
  value: Buffer | null
}

export function encodeValue(value: unknown): Buffer {
  return packr.pack(value)
}

export function decodeValue(bytes: Buffer): unknown {
  return packr.unpack(bytes)
}

export class TaskStore {
  /** operator -> group -> entry: no key is built per lookup, and the group string's hash is computed once. */
  private readonly cache = new Map<string, Map<string, CacheEntry>>()
  private readonly dirty = new Map<string, Set<string>>()
  private readonly codecs = new Map<string, EntryCodec>()
  /**
   * Operators whose every stored entry is in the cache (none evicted since the store was loaded): a cache miss for
   * them means "no entry", answered without reading LevelDB. A new or restored task is in this state until the
   * instance's cache budget forces an eviction.
   */
  private readonly complete = new Set<string>()
  /** The changelog offset the database is current up to, or null for an empty store. */
  checkpoint: number | null = null

  private constructor(
    private db: Level<string, Buffer>,
    readonly dir: string,
    private readonly budget: CacheBudget,
  ) {}

  /** Opens (creating) the task's database; retries while another process still holds its lock. */
  static async open(dir: string, budget: CacheBudget): Promise<TaskStore> {
    const deadline = Date.now() + 15_000
    for (;;) {
      const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
      try {
        await db.open()
        const store = new TaskStore(db, dir, budget)
        const checkpoint = await db.get(CHECKPOINT_KEY)
        store.checkpoint = checkpoint === undefined ? null : Number(checkpoint.toString())
        return store
      } catch (error) {
        const locked = /lock/i.test(String((error as Error & { cause?: Error }).cause?.message ?? (error as Error).message))
        if (!locked || Date.now() > deadline) throw new Error(`cannot open state store ${dir}: ${(error as Error).message}${locked ? ' (another process holds it: give each instance its own state directory)' : ''}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  register(operator: string, codec: EntryCodec): void {
    this.codecs.set(operator, codec)
    if (!this.cache.has(operator)) this.cache.set(operator, new Map())
    if (!this.dirty.has(operator)) this.dirty.set(operator, new Set())
  }

  /** The entry, from the cache or (a promise) from LevelDB. */
  get(operator: string, group: string): unknown | Promise<unknown> {
    const cached = this.cache.get(operator)!.get(group)
    if (cached !== undefined) {
      cached.used = true
      return cached.deleted ? undefined : cached.value
    }
    if (this.complete.has(operator)) return undefined
    return this.load(operator, group)
  }

  private async load(operator: string, group: string): Promise<unknown> {
    const bytes = await this.db.get(`${operator}\x01${group}`)
    // A put or delete may have happened while the read was in flight: the cache wins.
    const raced = this.cache.get(operator)!.get(group)
    if (raced !== undefined) return raced.deleted ? undefined : raced.value
    if (bytes === undefined) return undefined
    const value = this.codecs.get(operator)!.decode(decodeValue(bytes))
    this.remember(operator, group, { value, dirty: false, deleted: false, bytes: bytes.length + ENTRY_OVERHEAD_BYTES, used: true })
    return value
  }

  private remember(operator: string, group: string, entry: CacheEntry): void {
    const entries = this.cache.get(operator)!
    const previous = entries.get(group)
    if (previous) this.budget.used -= previous.bytes
    entries.set(group, entry)
    this.budget.used += entry.bytes
  }

  put(operator: string, group: string, value: unknown): void {
    const entry = this.cache.get(operator)!.get(group)
    if (entry === undefined) {
      this.remember(operator, group, { value, dirty: true, deleted: false, bytes: UNKNOWN_ENTRY_BYTES, used: true })
      this.dirty.get(operator)!.add(group)
      return
    }
    entry.value = value
    entry.deleted = false
    entry.used = true
    if (!entry.dirty) {
      entry.dirty = true
      this.dirty.get(operator)!.add(group)
    }
  }

  delete(operator: string, group: string): void {
    const entry = this.cache.get(operator)!.get(group)
    if (entry === undefined) {
      this.remember(operator, group, { value: undefined, dirty: true, deleted: true, bytes: ENTRY_OVERHEAD_BYTES, used: true })
    } else {
      entry.value = undefined
      entry.deleted = true
      entry.dirty = true
    }
    this.dirty.get(operator)!.add(group)
  }

  /** How many entries changed since the last commit. */
  get dirtyCount(): number {
    let count = 0
    for (const groups of this.dirty.values()) count += groups.size
    return count
  }

  /** Encodes the changes since the last commit (without forgetting them: `commitLocal` does, once they are durable). */
  dirtyRecords(): StateRecord[] {
    const records: StateRecord[] = []
    for (const [operator, groups] of this.dirty) {
      const entries = this.cache.get(operator)!
      const codec = this.codecs.get(operator)!
      for (const group of groups) {
        const entry = entries.get(group)!
        const key = `${operator}\x01${group}`
        if (entry.deleted) {
          records.push({ key, value: null })
          continue
        }
        const value = encodeValue(codec.encode(entry.value))
        this.budget.used += value.length + ENTRY_OVERHEAD_BYTES - entry.bytes
        entry.bytes = value.length + ENTRY_OVERHEAD_BYTES
        records.push({ key, value })
      }
    }
    return records
  }

  /**
   * Writes committed changes (the ones the changelog now holds, up to `checkpoint`) and the task position to
   * LevelDB in one batch, marks them clean and evicts clean entries while the instance is over budget.
   */
  async commitLocal(records: readonly StateRecord[], position: TaskPosition, checkpoint: number): Promise<void> {
    const batch = this.db.batch()
    for (const record of records) {
      if (record.value === null) batch.del(record.key)
      else batch.put(record.key, record.value)
    }
    batch.put(POSITION_KEY, encodeValue(position))
    batch.put(CHECKPOINT_KEY, Buffer.from(String(checkpoint)))
    await batch.write()
    this.checkpoint = checkpoint
    for (const [operator, groups] of this.dirty) {
      const entries = this.cache.get(operator)!
      for (const group of groups) {
        const entry = entries.get(group)!
        if (entry.deleted) {
          this.budget.used -= entry.bytes
          entries.delete(group)
        } else {
          entry.dirty = false
        }
      }
      groups.clear()
    }
    this.evict()
  }

  /** Drops clean entries, oldest first, skipping (once) those read since the last pass, until within budget. */
  private evict(): void {
    if (this.budget.used <= this.budget.limitBytes) return
    for (let pass = 0; pass < 2; pass++) {
      for (const [operator, entries] of this.cache) {
        for (const [group, entry] of entries) {
          if (this.budget.used <= this.budget.limitBytes * 0.9) return
          if (entry.dirty) continue
          if (entry.used && pass === 0) {
            entry.used = false
            continue
          }
          entries.delete(group)
          this.budget.used -= entry.bytes
          this.complete.delete(operator)
        }
      }
    }
  }

  /** Forgets uncommitted changes and the whole cache (a task that is re-initialized reads from LevelDB again). */
  discardCache(): void {
    this.complete.clear()
    for (const entries of this.cache.values()) {
      for (const entry of entries.values()) this.budget.used -= entry.bytes
      entries.clear()
    }
    for (const groups of this.dirty.values()) groups.clear()
  }

  /** Applies changelog records during a restore (raw bytes, no decoding) and moves the checkpoint past them. */
  async applyRestored(records: readonly StateRecord[], checkpoint: number): Promise<void> {
    const batch = this.db.batch()
    for (const record of records) {
      if (record.value === null) batch.del(record.key)
      else batch.put(record.key, record.value)
    }
    batch.put(CHECKPOINT_KEY, Buffer.from(String(checkpoint)))
    await batch.write()
    this.checkpoint = checkpoint
  }

  /** The saved task position, if any. */
  async position(): Promise<TaskPosition | undefined> {
    const bytes = await this.db.get(POSITION_KEY)
    return bytes === undefined ? undefined : (decodeValue(bytes) as TaskPosition)
  }

  /**
   * Reads every stored entry of an operator into the cache while the budget allows (once per task start), and
   * hands each to `visit` (windowed operators rebuild their close-time index from them). When all of them fit, the
   * operator's cache is complete: misses no longer read LevelDB.
   */
  async warm(operator: string, visit: (group: string, value: unknown) => void): Promise<void> {
    const prefix = `${operator}\x01`
    const codec = this.codecs.get(operator)!
    let cached = true
    for await (const [key, bytes] of this.db.iterator({ gte: prefix, lt: `${operator}\x02`, highWaterMarkBytes: 16 * 1024 * 1024, fillCache: false })) {
      const group = key.slice(prefix.length)
      const value = codec.decode(decodeValue(bytes))
      if (cached && this.budget.used + bytes.length + ENTRY_OVERHEAD_BYTES <= this.budget.limitBytes) {
        this.remember(operator, group, { value, dirty: false, deleted: false, bytes: bytes.length + ENTRY_OVERHEAD_BYTES, used: false })
      } else {
        cached = false
      }
      visit(group, value)
    }
    if (cached) this.complete.add(operator)
    else this.complete.delete(operator)
  }

  /** Empties the database (its checkpoint no longer matches the changelog). */
  async wipe(): Promise<void> {
    this.discardCache()
    await this.db.clear()
    this.checkpoint = null
  }

  async close(): Promise<void> {
    this.discardCache()
    await this.db.close()
  }

  /** Closes and deletes the task's directory. */
  async destroy(): Promise<void> {
    await this.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
