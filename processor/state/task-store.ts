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
 * - Dirty entries (changed since the last commit) are never evicted; clean ones are evicted, least recently used
 *   first, once the instance's cache holds more than its byte budget (CacheBudget, shared by the instance's tasks).
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
  private readonly cache = new Map<string, CacheEntry>()
  private readonly dirty = new Set<string>()
  private readonly codecs = new Map<string, EntryCodec>()
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
  }

  private fullKey(operator: string, group: string): string {
    return `${operator}\x01${group}`
  }

  /** The entry, from the cache or (a promise) from LevelDB. */
  get(operator: string, group: string): unknown | Promise<unknown> {
    const key = this.fullKey(operator, group)
    const cached = this.cache.get(key)
    if (cached !== undefined) {
      // Least recently used first: re-inserting moves the key to the end of the Map's order.
      this.cache.delete(key)
      this.cache.set(key, cached)
      return cached.deleted ? undefined : cached.value
    }
    return this.load(operator, key)
  }

  private async load(operator: string, key: string): Promise<unknown> {
    const bytes = await this.db.get(key)
    // A put or delete may have happened while the read was in flight: the cache wins.
    const raced = this.cache.get(key)
    if (raced !== undefined) return raced.deleted ? undefined : raced.value
    if (bytes === undefined) return undefined
    const value = this.codecs.get(operator)!.decode(decodeValue(bytes))
    this.remember(key, { value, dirty: false, deleted: false, bytes: bytes.length + ENTRY_OVERHEAD_BYTES })
    return value
  }

  private remember(key: string, entry: CacheEntry): void {
    const previous = this.cache.get(key)
    if (previous) {
      this.budget.used -= previous.bytes
      this.cache.delete(key)
    }
    this.cache.set(key, entry)
    this.budget.used += entry.bytes
  }

  put(operator: string, group: string, value: unknown): void {
    const key = this.fullKey(operator, group)
    const previous = this.cache.get(key)
    this.remember(key, { value, dirty: true, deleted: false, bytes: previous?.bytes ?? UNKNOWN_ENTRY_BYTES })
    this.dirty.add(key)
  }

  delete(operator: string, group: string): void {
    const key = this.fullKey(operator, group)
    this.remember(key, { value: undefined, dirty: true, deleted: true, bytes: ENTRY_OVERHEAD_BYTES })
    this.dirty.add(key)
  }

  get dirtyCount(): number {
    return this.dirty.size
  }

  /** Encodes the changes since the last commit (without forgetting them: `commitLocal` does, once they are durable). */
  dirtyRecords(): StateRecord[] {
    const records: StateRecord[] = []
    for (const key of this.dirty) {
      const entry = this.cache.get(key)!
      if (entry.deleted) {
        records.push({ key, value: null })
        continue
      }
      const operator = key.slice(0, key.indexOf('\x01'))
      const value = encodeValue(this.codecs.get(operator)!.encode(entry.value))
      this.budget.used += value.length + ENTRY_OVERHEAD_BYTES - entry.bytes
      entry.bytes = value.length + ENTRY_OVERHEAD_BYTES
      records.push({ key, value })
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
    for (const record of records) {
      const entry = this.cache.get(record.key)
      if (entry === undefined) continue
      if (entry.deleted) {
        this.budget.used -= entry.bytes
        this.cache.delete(record.key)
      } else {
        entry.dirty = false
      }
    }
    this.dirty.clear()
    this.evict()
  }

  /** Drops clean entries, least recently used first, until the instance is within its budget. */
  private evict(): void {
    if (this.budget.used <= this.budget.limitBytes) return
    for (const [key, entry] of this.cache) {
      if (this.budget.used <= this.budget.limitBytes * 0.9) return
      if (entry.dirty) continue
      this.cache.delete(key)
      this.budget.used -= entry.bytes
    }
  }

  /** Forgets uncommitted changes and the whole cache (a task that is re-initialized reads from LevelDB again). */
  discardCache(): void {
    for (const entry of this.cache.values()) this.budget.used -= entry.bytes
    this.cache.clear()
    this.dirty.clear()
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

  /** Every stored entry of an operator, decoded (used once per task start to rebuild close-time indexes). */
  async *entries(operator: string): AsyncGenerator<[group: string, value: unknown]> {
    const prefix = `${operator}\x01`
    const codec = this.codecs.get(operator)!
    for await (const [key, bytes] of this.db.iterator({ gte: prefix, lt: `${operator}\x02`, highWaterMarkBytes: 16 * 1024 * 1024, fillCache: false })) {
      yield [key.slice(prefix.length), codec.decode(decodeValue(bytes))]
    }
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
