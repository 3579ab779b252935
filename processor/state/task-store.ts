/**
 * The state of one task: a LevelDB database (npm `level`) under `<stateDir>/<taskId>/`, a cache of decoded
 * entries in front of it, and the checkpoint that says how far the database reflects the task's changelog.
 *
 * State is kept per group: every stateful operator of the sub-topology that keys its state by the same group
 * (the iot pipeline's two window operators and its detectors all use deviceId + sensor) shares one record, so a
 * commit writes one changelog record and one LevelDB key per changed group, not one per operator.
 *
 *   key (utf8)        value (bytes)
 *   \x01<group>       u8 format · 8 bytes commit id · per operator holding state for the group:
 *                     string operator · u32 length · the operator's entry (codec.ts); the changelog has the same bytes
 *   \x00position      u8 format · 8 bytes commit id · msgpack { position, streamTimes, records, windows }: the commit's marker,
 *                     where the task's input resumes (runtime/changelog.ts)
 *   \x00checkpoint.2  the changelog offset the database is current up to (not in the changelog); the suffix is the
 *                     format, so a store written in another format has no checkpoint and is rebuilt from the changelog
 *   \x00changelog     the changelog topic the database reflects (not in the changelog): a task id names a sub-topology by
 *                     its place in the topology, so a stream or keyBy added, removed or moved gives the directory
 *                     `<sub>_<partition>` to another sub-topology, whose task must not take this state (or position)
 *   \x00closetimes    `<checkpoint>\n<each index's operator and spec>`: the close-time indexes below hold the state as
 *                     of that checkpoint (not in the changelog: a restore makes them stale, and `warm` rebuilds them)
 *   \x02...           the windowed operators' close-time indexes (close-times.ts)
 *
 * Invariants:
 * - The database only ever holds what the changelog already holds: a commit writes the changelog first and then the
 *   same bytes plus the new checkpoint in one LevelDB batch. So after any crash, "database + changelog from the
 *   checkpoint on" is exactly the changelog's content, and a restore replays only that tail.
 * - A group's record is always rewritten whole: a slot holds every operator's entry of its group. A write to a group
 *   that was not read first (an operator that writes blindly) is completed from LevelDB before the commit encodes it.
 * - Dirty slots (changed since the last commit) are never evicted; clean ones are evicted once the instance's cache
 *   holds more than its byte budget (CacheBudget, shared by the instance's tasks), oldest first with a second
 *   chance for slots read since the last eviction pass (CLOCK: a read sets a bit instead of reordering the Map,
 *   which keeps the per-record path free of Map churn).
 */
import { Level } from 'level'
import { rmSync } from 'node:fs'
import { ByteReader, ByteWriter, packPlain, unpackPlain, type EntryCodec } from './codec.js'
import { ProcessorErrorCode, StateEncodingError, TopologyError } from '../errors.js'
import { heapBytes } from './heap-size.js'
import { CLOSE_TIMES_PREFIX, StoredCloseTimes } from './close-times.js'
import type { CloseTimeIndex } from '../windows/timers.js'

/**
 * The format byte that opens every state record and marker. 2: a percentile's accumulator also holds the min and
 * max of its input (aggregate/aggregations.ts), so format-1 accumulators of specs without them do not decode; a task
 * whose operators all read format 1 (EntryCodec.oldestFormat) takes its records as they are. Markers and positions
 * are the same in both.
 */
export const STATE_FORMAT = 2
/** The oldest format whose markers and positions this version reads. */
const OLDEST_FORMAT = 1
export const COMMIT_ID_BYTES = 8
export const POSITION_KEY = '\x00position'
const CHECKPOINT_KEY = `\x00checkpoint.${STATE_FORMAT}`
const GROUP_PREFIX = '\x01'
const CLOSE_TIMES_KEY = '\x00closetimes'
const CHANGELOG_KEY = '\x00changelog'
/** Keys a rebuilt close-time index writes per LevelDB batch. */
const REBUILD_BATCH_KEYS = 10_000
/** Encoded size assumed for a slot that has not been encoded yet. */
const UNKNOWN_ENCODED_BYTES = 144
/** Per-slot overhead of the cache (the Map slot, the slot object, the key string). */
const SLOT_OVERHEAD_BYTES = 112
/** Heap bytes per encoded byte assumed until the first slot is weighed (the iot pipeline's is about 8). */
const INITIAL_HEAP_PER_BYTE = 4
/** One slot in this many is weighed (heap-size.ts) when it is encoded or decoded; the rest use the running ratio. */
const WEIGH_EVERY = 16

/** Access to one operator's entries by group; `get` may go to disk (then it returns a promise). */
export interface KeyedState<T> {
  get(group: string): T | undefined | Promise<T | undefined>
  put(group: string, value: T): void
  delete(group: string): void
  /** Reads the entries of these groups that are not in memory in one go, so that `get` finds them there. */
  prefetch?(groups: readonly string[]): Promise<void>
  /**
   * The operator's close-time index kept in the store with its entries (close-times.ts): `closeTimeOf` gives an entry's
   * earliest close time, `spec` what that depends on (an index written for another spec is rebuilt). A KeyedState
   * without it leaves the index in the operator's memory.
   */
  closeTimes?(closeTimeOf: (entry: T) => number | undefined, spec: string): CloseTimeIndex
}

/**
 * A commit's marker: the task's input position, its operators' stream times, and how many state records the commit
 * wrote before it.
 */
export interface Marker {
  /** The next offset of the source partition to process. */
  position: string
  streamTimes: Record<string, number>
  records: number
  /**
   * Each windowed operator's state layout (windows/spec.ts `stateLayout`), by operator name, for the operators that
   * have one; missing in markers written before it was kept.
   */
  windows?: Record<string, string>
  /**
   * What each stateful operator keeps, by operator name (its kind, windowed or running, and an aggregate's
   * `Accumulation.layout`); missing in markers written before it was kept.
   */
  operators?: Record<string, string>
}

/** The task's input position and its operators' stream times, saved with every commit, and that commit's id (hex). */
export interface TaskPosition extends Omit<Marker, 'records'> {
  commit: string
}

/** The byte budget of an instance's caches; each store evicts its own clean slots when the total is over. */
export class CacheBudget {
  used = 0
  constructor(readonly limitBytes: number) {}
}

/** One group's entries, by operator index. */
interface Slot {
  values: unknown[]
  dirty: boolean
  /** Written without being read first: the entries of other operators are still only in LevelDB. */
  blind: boolean
  bytes: number
  /** Read since the last eviction pass (CLOCK's reference bit). */
  used: boolean
}

/** One encoded state change, as written to the changelog and to LevelDB: a null value deletes the key. */
export interface StateRecord {
  key: string
  value: Buffer | null
}

/** The error for a state record or marker of another format (`what` names it). */
export function formatError(value: Buffer, what: string): Error {
  return new Error(`${what} is not in state format ${STATE_FORMAT} (first byte ${value[0]}): it was written by another version of Brook's processor; delete the application's changelog topics and state directories to rebuild its state`)
}

/** What an error about state written by another version of an operator says to do. */
export const RENAME_OR_RESET = 'Give the operator another name to start it afresh, or reset the application (stop every instance, delete its changelog and repartition topics, its group and its state directories)'

/** The id of the commit that wrote a state record or marker (hex), or null when it is not in this format. */
export function commitIdOf(value: Buffer): string | null {
  if (value.length < 1 + COMMIT_ID_BYTES || !(value[0]! >= OLDEST_FORMAT && value[0]! <= STATE_FORMAT)) return null
  return value.toString('hex', 1, 1 + COMMIT_ID_BYTES)
}

export function encodeMarker(marker: Marker, commit: Buffer): Buffer {
  return Buffer.concat([Buffer.of(STATE_FORMAT), commit, packPlain(marker)])
}

/** A marker's content (its format already checked by `commitIdOf`). */
export function decodeMarker(value: Buffer): Marker {
  return unpackPlain(value.subarray(1 + COMMIT_ID_BYTES)) as Marker
}

export class TaskStore {
  /** group -> slot: one lookup per record finds every operator's entry of its group. */
  private readonly slots = new Map<string, Slot>()
  private readonly dirty: Slot[] = []
  private readonly dirtyGroups: string[] = []
  private readonly operators: string[] = []
  private readonly codecs: EntryCodec[] = []
  /** The close-time indexes kept here, by operator index. */
  private readonly indexes: StoredCloseTimes[] = []
  /** What `\x00closetimes` holds. */
  private indexMarker: string | undefined
  /** The indexes hold what the state records hold (not after a restore until `warm` rebuilds them). */
  private indexCurrent = false
  /** One writer for every record a commit encodes. */
  private readonly writer = new ByteWriter()
  /** The last slot looked up: the operators of one record ask for the same group one after the other. */
  private lastGroup: string | null = null
  private lastSlot: Slot | undefined
  /**
   * Every stored slot is in the cache (none evicted since the store was loaded): a miss means "no entry", answered
   * without reading LevelDB. A new or restored task is in this state until the instance's cache budget forces an
   * eviction.
   */
  private complete = false
  /** The changelog offset the database is current up to, or null for an empty store. */
  checkpoint: number | null = null
  /**
   * The changelog topic the database was written from, or undefined when it does not say (an empty store, or one
   * written before stores said): one that names another changelog than the task's holds another sub-topology's state.
   */
  writtenFrom: string | undefined
  /**
   * Heap bytes of a decoded slot per byte of its encoded form: a running average over the slots weighed (one in
   * WEIGH_EVERY, by heap-size.ts), so that the budget counts the heap the cache holds, not the encoded bytes (a
   * slot's decoded entries, sketches above all, take several times those).
   */
  private heapPerByte = INITIAL_HEAP_PER_BYTE
  private weighed = 0
  private sized = 0

  private constructor(
    private db: Level<string, Buffer>,
    readonly dir: string,
    private readonly budget: CacheBudget,
    private readonly changelogTopic: string | null,
  ) {}

  /**
   * Opens (creating) the task's database; retries while another process still holds its lock. `changelogTopic`: the
   * task's changelog, which every write records (none for a task without state, or a store used on its own).
   */
  static async open(dir: string, budget: CacheBudget, options: { changelogTopic?: string } = {}): Promise<TaskStore> {
    const deadline = Date.now() + 15_000
    for (;;) {
      const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
      try {
        await db.open()
        const store = new TaskStore(db, dir, budget, options.changelogTopic ?? null)
        const checkpoint = await db.get(CHECKPOINT_KEY)
        store.checkpoint = checkpoint === undefined ? null : Number(checkpoint.toString())
        store.writtenFrom = (await db.get(CHANGELOG_KEY))?.toString()
        store.indexMarker = (await db.get(CLOSE_TIMES_KEY))?.toString()
        // An empty store has empty indexes.
        store.indexCurrent = store.checkpoint === null
        return store
      } catch (error) {
        const locked = /lock/i.test(String((error as Error & { cause?: Error }).cause?.message ?? (error as Error).message))
        if (!locked || Date.now() > deadline) throw new Error(`cannot open state store ${dir}: ${(error as Error).message}${locked ? ' (another process holds it: give each instance its own state directory)' : ''}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  /** Declares an operator (by its stable name) and returns its view of the store. */
  register<T>(operator: string, codec: EntryCodec<T>): KeyedState<T> {
    let index = this.operators.indexOf(operator)
    if (index < 0) index = this.operators.push(operator) - 1
    this.codecs[index] = codec as EntryCodec
    return {
      get: (group) => this.get(index, group) as T | undefined | Promise<T | undefined>,
      put: (group, value) => this.put(index, group, value),
      delete: (group) => this.put(index, group, undefined),
      prefetch: (groups) => this.prefetch(groups),
      closeTimes: (closeTimeOf, spec) => {
        const existing = this.indexes[index]
        if (existing !== undefined && existing.spec === spec) return existing
        return (this.indexes[index] = new StoredCloseTimes(this.db, operator, closeTimeOf as (entry: unknown) => number | undefined, spec))
      },
    }
  }

  /** What `\x00closetimes` says when the indexes hold the state at `checkpoint`. */
  private indexMarkerAt(checkpoint: number | null): string {
    return [String(checkpoint), ...this.indexes.filter((index) => index !== undefined).map((index) => `${JSON.stringify(index.operator)} ${index.spec}`)].join('\n')
  }

  /** Caches the groups of `groups` that are not cached (or only written blindly), read with one LevelDB getMany. */
  private async prefetch(groups: readonly string[]): Promise<void> {
    if (this.complete) return
    const missing = groups.filter((group) => {
      const slot = this.slots.get(group)
      return slot === undefined || slot.blind
    })
    if (missing.length === 0) return
    const stored = await this.db.getMany(missing.map((group) => GROUP_PREFIX + group))
    missing.forEach((group, i) => this.loaded(group, stored[i]))
  }

  private slot(group: string): Slot | undefined {
    if (group === this.lastGroup) return this.lastSlot
    const slot = this.slots.get(group)
    this.lastGroup = group
    this.lastSlot = slot
    return slot
  }

  /** The entry, from the cache or (a promise) from LevelDB. */
  private get(operator: number, group: string): unknown | Promise<unknown> {
    const slot = this.slot(group)
    if (slot !== undefined && !slot.blind) {
      slot.used = true
      return slot.values[operator]
    }
    if (slot === undefined && this.complete) return undefined
    return this.loadEntry(operator, group)
  }

  /** `get` from LevelDB: a method rather than an arrow inside `get`, which would allocate a context at every call. */
  private async loadEntry(operator: number, group: string): Promise<unknown> {
    return (await this.load(group)).values[operator]
  }

  private async load(group: string): Promise<Slot> {
    return this.loaded(group, await this.db.get(GROUP_PREFIX + group))
  }

  /** Caches a group read from LevelDB, or completes its blind slot with what was stored. */
  private loaded(group: string, bytes: Buffer | undefined): Slot {
    // A read or write of the group may have happened while this read was in flight: what the cache holds wins.
    let slot = this.slots.get(group)
    if (slot !== undefined && !slot.blind) return slot
    const stored = bytes === undefined ? [] : this.decode(bytes, group)
    if (slot === undefined) {
      slot = { values: stored, dirty: false, blind: false, bytes: this.slotBytes(stored, bytes?.length ?? 0), used: true }
      this.remember(group, slot)
    } else {
      for (let i = 0; i < stored.length; i++) if (!(i in slot.values)) slot.values[i] = stored[i]
      slot.blind = false
    }
    return slot
  }

  private remember(group: string, slot: Slot): void {
    const previous = this.slots.get(group)
    if (previous) this.budget.used -= previous.bytes
    this.slots.set(group, slot)
    this.budget.used += slot.bytes
    if (group === this.lastGroup) this.lastSlot = slot
  }

  /** Sets (or, with undefined, deletes) an operator's entry of a group. */
  private put(operator: number, group: string, value: unknown): void {
    this.dirtySlot(group).values[operator] = value
  }

  /** The group's slot, marked changed since the last commit (a new one when the group is not cached). */
  private dirtySlot(group: string): Slot {
    let slot = this.slot(group)
    if (slot === undefined) {
      // Not read first: unless the store is complete, other operators' entries of the group may be in LevelDB.
      slot = { values: [], dirty: false, blind: !this.complete, bytes: Math.round(UNKNOWN_ENCODED_BYTES * this.heapPerByte) + SLOT_OVERHEAD_BYTES, used: true }
      this.remember(group, slot)
    }
    slot.used = true
    if (!slot.dirty) {
      slot.dirty = true
      this.dirty.push(slot)
      this.dirtyGroups.push(group)
    }
    return slot
  }

  /**
   * Has the next commit write these changelog keys again, each with what the store holds for its group (a tombstone
   * for a group it holds nothing of), as if they had changed: the records of a commit cut short by a crash must be
   * superseded before the next marker (runtime/changelog.ts, R4).
   */
  rewrite(keys: readonly string[]): void {
    for (const key of keys) if (key.startsWith(GROUP_PREFIX)) this.dirtySlot(key.slice(GROUP_PREFIX.length))
  }

  /**
   * Has the next commit write every group the store holds to the changelog, as `rewrite` does for some: a changelog
   * deleted (and created again empty) while the local state was kept must back that state again. Resolves with how
   * many groups it marked.
   */
  async rewriteAll(): Promise<number> {
    let groups = 0
    for await (const key of this.db.keys({ gte: GROUP_PREFIX, lt: '\x02', fillCache: false })) {
      this.dirtySlot(key.slice(GROUP_PREFIX.length))
      groups++
    }
    return groups
  }

  /** How many groups changed since the last commit. */
  get dirtyCount(): number {
    return this.dirty.length
  }

  /**
   * Encodes the groups changed since the last commit, each value tagged with the commit's id (without forgetting
   * them: `commitLocal` does, once they are durable). A group left with no entry is a tombstone (null value).
   */
  async dirtyRecords(commit: Buffer): Promise<StateRecord[]> {
    await this.prefetch(this.dirtyGroups.filter((_, i) => this.dirty[i]!.blind))
    const records: StateRecord[] = []
    const out = this.writer
    for (let i = 0; i < this.dirty.length; i++) {
      const slot = this.dirty[i]!
      const group = this.dirtyGroups[i]!
      out.reset()
      out.u8(STATE_FORMAT)
      out.raw(commit)
      const empty = out.length
      for (let op = 0; op < slot.values.length; op++) {
        const value = slot.values[op]
        if (value === undefined) continue
        out.string(this.operators[op]!)
        const mark = out.beginLength()
        try {
          this.codecs[op]!.write(out, value)
        } catch (error) {
          throw new StateEncodingError(`the state of operator ${this.operators[op]} for group ${JSON.stringify(group)} cannot be stored: ${(error as Error)?.message ?? String(error)}`, { cause: error })
        }
        out.endLength(mark)
      }
      if (out.length === empty) {
        records.push({ key: GROUP_PREFIX + group, value: null })
        continue
      }
      const value = out.finish()
      const bytes = this.slotBytes(slot.values, value.length)
      this.budget.used += bytes - slot.bytes
      slot.bytes = bytes
      records.push({ key: GROUP_PREFIX + group, value })
    }
    return records
  }

  /**
   * The bytes the budget counts for a slot holding `values`, `encoded` bytes long once encoded: its heap by the
   * running ratio, which one slot in WEIGH_EVERY updates by weighing its values.
   */
  private slotBytes(values: unknown[], encoded: number): number {
    if (encoded > 0 && this.sized++ % WEIGH_EVERY === 0) {
      // The mean of the slots weighed, then a moving one over about the last 64.
      this.weighed = Math.min(this.weighed + 1, 64)
      this.heapPerByte += (heapBytes(values) / encoded - this.heapPerByte) / this.weighed
    }
    return Math.round(encoded * this.heapPerByte) + SLOT_OVERHEAD_BYTES
  }

  /** A state record's entries by operator index (entries of operators this task does not have are dropped). */
  private decode(bytes: Buffer, group: string): unknown[] {
    if (commitIdOf(bytes) === null || this.codecs.some((codec) => bytes[0]! < (codec.oldestFormat ?? OLDEST_FORMAT))) {
      throw formatError(bytes, `the state record of group ${JSON.stringify(group)} in ${this.dir}`)
    }
    const from = new ByteReader(bytes, 1 + COMMIT_ID_BYTES)
    const values: unknown[] = []
    while (!from.done) {
      const name = from.string()!
      const operator = this.operators.indexOf(name)
      const length = from.u32()
      const end = from.pos + length
      if (operator >= 0) values[operator] = this.readEntry(operator, name, from, group)
      from.pos = end
    }
    return values
  }

  /**
   * One operator's entry of a group's record. Errors: a TopologyError (BAD_STATE) when its codec cannot read it: the
   * entry was written by another kind of operator of the same name, by a version that did not yet say so in its
   * markers (task.ts checkLayouts). Retrying would meet the same bytes; as a plain error it re-initialized the
   * task for good, saying it was waiting for the cluster.
   */
  private readEntry(operator: number, name: string, from: ByteReader, group: string): unknown {
    try {
      return this.codecs[operator]!.read(from)
    } catch (error) {
      throw new TopologyError(
        `the state of operator ${name} for group ${JSON.stringify(group)} in ${this.dir} cannot be read (${(error as Error).message}): was it written by another kind of operator of that name? ` +
          RENAME_OR_RESET,
        ProcessorErrorCode.badState,
      )
    }
  }

  /**
   * Writes a committed changelog's records (the ones the changelog now holds, its marker last, up to
   * `checkpoint`) to LevelDB in one batch, marks the changed slots clean and evicts clean slots while the
   * instance is over budget.
   */
  async commitLocal(records: readonly StateRecord[], checkpoint: number): Promise<void> {
    await this.write(records, checkpoint, true)
    for (const index of this.indexes) index?.committed()
    for (let i = 0; i < this.dirty.length; i++) {
      const slot = this.dirty[i]!
      slot.dirty = false
      if (slot.values.every((value) => value === undefined)) {
        this.budget.used -= slot.bytes
        this.slots.delete(this.dirtyGroups[i]!)
      }
    }
    this.dirty.length = 0
    this.dirtyGroups.length = 0
    this.lastGroup = null
    this.lastSlot = undefined
    this.evict()
  }

  /**
   * Writes records and the checkpoint in one batch; `withIndexes`: with the close-time indexes' changes, which keep them
   * current if they were; without (a restore's raw records), the indexes are stale until `warm` rebuilds them.
   */
  private async write(records: readonly StateRecord[], checkpoint: number, withIndexes: boolean): Promise<void> {
    const batch = this.db.batch()
    for (const record of records) {
      if (record.value === null) batch.del(record.key)
      else batch.put(record.key, record.value)
    }
    batch.put(CHECKPOINT_KEY, Buffer.from(String(checkpoint)))
    if (this.changelogTopic !== null && this.writtenFrom !== this.changelogTopic) batch.put(CHANGELOG_KEY, Buffer.from(this.changelogTopic))
    if (withIndexes) for (const index of this.indexes) index?.changes(batch)
    if (!withIndexes) this.indexCurrent = false
    const marker = this.indexCurrent ? this.indexMarkerAt(checkpoint) : undefined
    if (marker === undefined) batch.del(CLOSE_TIMES_KEY)
    else batch.put(CLOSE_TIMES_KEY, Buffer.from(marker))
    await batch.write()
    this.indexMarker = marker
    this.checkpoint = checkpoint
    if (this.changelogTopic !== null) this.writtenFrom = this.changelogTopic
  }

  /** Drops clean slots, oldest first, skipping (once) those read since the last pass, until within budget. */
  private evict(): void {
    if (this.budget.used <= this.budget.limitBytes) return
    for (let pass = 0; pass < 2; pass++) {
      for (const [group, slot] of this.slots) {
        if (this.budget.used <= this.budget.limitBytes * 0.9) return
        if (slot.dirty) continue
        if (slot.used && pass === 0) {
          slot.used = false
          continue
        }
        this.slots.delete(group)
        this.budget.used -= slot.bytes
        this.complete = false
      }
    }
  }

  /** Forgets uncommitted changes and the whole cache (a task that is re-initialized reads from LevelDB again). */
  discardCache(): void {
    this.complete = false
    for (const index of this.indexes) index?.discard()
    for (const slot of this.slots.values()) this.budget.used -= slot.bytes
    this.slots.clear()
    this.dirty.length = 0
    this.dirtyGroups.length = 0
    this.lastGroup = null
    this.lastSlot = undefined
  }

  /** Applies changelog records during a restore (raw bytes, no decoding) and moves the checkpoint past them. */
  async applyRestored(records: readonly StateRecord[], checkpoint: number): Promise<void> {
    await this.write(records, checkpoint, false)
  }

  /** The saved task position, if any. */
  async position(): Promise<TaskPosition | undefined> {
    const bytes = await this.db.get(POSITION_KEY)
    if (bytes === undefined) return undefined
    const commit = commitIdOf(bytes)
    if (commit === null) throw formatError(bytes, `the position in ${this.dir}`)
    const { position, streamTimes, windows, operators } = decodeMarker(bytes)
    return { position, streamTimes, windows, operators, commit }
  }

  /**
   * Reads stored groups into the cache while the budget allows (once per task start, after the operators registered);
   * when all of them fit, the cache is complete: misses no longer read LevelDB. Rebuilds the close-time indexes when
   * they do not hold what the state records hold (after a restore, or for other window specs), reading every group;
   * with `visit`, hands it every operator's entry of every group.
   */
  async warm(visit?: (operator: string, group: string, value: unknown) => void): Promise<void> {
    if (!this.indexCurrent && this.indexMarker === this.indexMarkerAt(this.checkpoint)) this.indexCurrent = true
    const rebuild = !this.indexCurrent
    if (rebuild) await this.db.clear({ gte: CLOSE_TIMES_PREFIX, lt: '\x03' })
    let batch = this.db.batch()
    let cached = true
    for await (const [key, bytes] of this.db.iterator({ gte: GROUP_PREFIX, lt: '\x02', highWaterMarkBytes: 16 * 1024 * 1024, fillCache: false })) {
      const group = key.slice(GROUP_PREFIX.length)
      const values = this.decode(bytes, group)
      const slotBytes = this.slotBytes(values, bytes.length)
      if (cached && this.budget.used + slotBytes <= this.budget.limitBytes) {
        this.remember(group, { values, dirty: false, blind: false, bytes: slotBytes, used: false })
      } else {
        cached = false
        if (!rebuild && visit === undefined) break
      }
      for (let op = 0; op < values.length; op++) {
        if (values[op] === undefined) continue
        visit?.(this.operators[op]!, group, values[op])
        if (rebuild) this.indexes[op]?.rebuilt(batch, group, values[op])
      }
      if (batch.length >= REBUILD_BATCH_KEYS) {
        await batch.write()
        batch = this.db.batch()
      }
    }
    if (rebuild) {
      this.indexCurrent = true
      this.indexMarker = this.indexMarkerAt(this.checkpoint)
      batch.put(CLOSE_TIMES_KEY, Buffer.from(this.indexMarker))
    }
    if (batch.length > 0) await batch.write()
    else await batch.close()
    this.complete = cached
    for (const index of this.indexes) await index?.reload()
  }

  /** Empties the database (its checkpoint no longer matches the changelog). */
  async wipe(): Promise<void> {
    this.discardCache()
    await this.db.clear()
    this.checkpoint = null
    this.writtenFrom = undefined
    this.indexMarker = undefined
    this.indexCurrent = true
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
