/**
 * A windowed operator's close-time index kept in its task's LevelDB, beside the state it indexes, so that the memory
 * it takes does not grow with the number of groups (the index in memory took about 60 bytes per group and operator,
 * outside the cache's budget). As Kafka Streams' time-ordered window stores, the keys sort by time:
 *
 *   key (utf8)                                                          value
 *   \x02 <operator, as JSON> \x00 <close time: 16 hex digits> \x00 <group>    empty
 *
 * where the 16 digits are the close time's IEEE 754 bits with the sign bit flipped (all bits for a negative number),
 * so that byte order is numeric order. Groups due at one close time follow in byte order (UTF-8: code-point order).
 *
 *   committed: LevelDB keys ──┐
 *                             ├─ merged by (close time, group) ─▶ popDue
 *   since the commit: overlay ┘    (a LevelDB key of a group in `pending` is stale: skipped)
 *
 * In memory there is only what changed since the last commit: `pending` maps each group moved since then to the close
 * time LevelDB holds for it (`base`, undefined when none), and a TimerQueue (`overlay`) holds their close times now.
 * A commit puts the overlay's keys and deletes the bases in the task's commit batch (TaskStore.commitLocal), with the
 * state records they index; a task that discards its uncommitted work discards these too. Both are bounded by the
 * groups a commit changes (the task commits early at 20,000: runtime/task.ts).
 *
 * Invariants:
 * - After every commit, LevelDB holds one key per group with open windows: nextCloseAt of its entry in the same batch.
 * - `lowerBound` is at most the smallest close time LevelDB holds for a group not in `pending`; `popDue` raises it to
 *   the real one when it finds nothing due.
 * - Every LevelDB key before `cursor` belongs to a group in `pending` (taken, or moved): a chunk of a window boundary
 *   goes on where the last one stopped instead of skipping them again. A commit or a discard forgets it.
 */
import type { Level } from 'level'
import { TimerQueue, type CloseTimeIndex } from '../windows/timers.js'

const NO_VALUE = Buffer.alloc(0)
const TIME_DIGITS = 16

/** The LevelDB keys of every close-time index of a store start with this; the next prefix is '\x03'. */
export const CLOSE_TIMES_PREFIX = '\x02'

/** The part of a LevelDB batch an index writes to. */
export interface IndexBatch {
  put(key: string, value: Buffer): unknown
  del(key: string): unknown
}

const bits = new DataView(new ArrayBuffer(8))

/** A close time as 16 hex digits whose string order is the numbers' order. */
export function sortableTime(at: number): string {
  bits.setFloat64(0, at)
  let high = bits.getUint32(0)
  let low = bits.getUint32(4)
  if (high >= 0x8000_0000) {
    high = ~high >>> 0
    low = ~low >>> 0
  } else {
    high = (high | 0x8000_0000) >>> 0
  }
  return high.toString(16).padStart(8, '0') + low.toString(16).padStart(8, '0')
}

/** The close time of `sortableTime`'s digits at `from` in `key`. */
export function timeFromSortable(key: string, from: number): number {
  let high = Number.parseInt(key.slice(from, from + 8), 16)
  let low = Number.parseInt(key.slice(from + 8, from + TIME_DIGITS), 16)
  if (high >= 0x8000_0000) {
    high = (high & 0x7fff_ffff) >>> 0
  } else {
    high = ~high >>> 0
    low = ~low >>> 0
  }
  bits.setUint32(0, high)
  bits.setUint32(4, low)
  return bits.getFloat64(0)
}

export class StoredCloseTimes implements CloseTimeIndex {
  /** Groups moved since the last commit -> the close time LevelDB holds for each (undefined: none). */
  private readonly pending = new Map<string, number | undefined>()
  /** The close times now of the groups in `pending`. */
  private readonly overlay = new TimerQueue()
  private lowerBound = Number.NEGATIVE_INFINITY
  private cursor: string | undefined
  private readonly prefix: string
  private readonly end: string
  private lastAt = Number.NaN
  private lastTimePrefix = ''

  /**
   * `operator` names the index in its keys; `closeTimeOf` gives an entry's nextCloseAt (for a rebuild), and `spec` says
   * what it depends on (the window): an index written for another spec is rebuilt (TaskStore.warm).
   */
  constructor(
    private readonly db: Level<string, Buffer>,
    readonly operator: string,
    readonly closeTimeOf: (entry: unknown) => number | undefined,
    readonly spec: string,
  ) {
    const name = JSON.stringify(operator)
    this.prefix = `${CLOSE_TIMES_PREFIX}${name}\x00`
    this.end = `${CLOSE_TIMES_PREFIX}${name}\x01`
  }

  /** The LevelDB key of `group` due at `at`. */
  key(at: number, group: string): string {
    // Epoch-aligned windows give most groups the same few close times: their digits are made once.
    if (at !== this.lastAt) {
      this.lastAt = at
      this.lastTimePrefix = `${this.prefix}${sortableTime(at)}\x00`
    }
    return this.lastTimePrefix + group
  }

  move(group: string, from: number | undefined, to: number | undefined): void {
    if (!this.pending.has(group)) this.pending.set(group, from)
    this.overlay.set(group, to)
  }

  /** A group moved since the last commit has its LevelDB close time in `pending` already. */
  needsFrom(group: string): boolean {
    return !this.pending.has(group)
  }

  peek(): number {
    return Math.min(this.overlay.peek(), this.lowerBound)
  }

  async popDue(time: number, max: number): Promise<string[]> {
    const fromOverlay: [number, string][] = []
    while (fromOverlay.length < max) {
      const at = this.overlay.peek()
      const group = this.overlay.popDue(time)
      if (group === undefined) break
      fromOverlay.push([at, group])
    }
    const fromStore = this.lowerBound <= time ? await this.scan(time, max) : { due: [], lastKey: this.cursor }
    const taken: string[] = []
    let o = 0
    let s = 0
    while (taken.length < max && (o < fromOverlay.length || s < fromStore.due.length)) {
      const a = fromOverlay[o]
      const b = fromStore.due[s]
      if (b === undefined || (a !== undefined && (a[0] < b.at || (a[0] === b.at && a[1] < b.group)))) {
        taken.push(a![1])
        o++
      } else {
        taken.push(b.group)
        this.pending.set(b.group, b.at)
        s++
      }
    }
    for (; o < fromOverlay.length; o++) this.overlay.set(fromOverlay[o]![1], fromOverlay[o]![0])
    const untaken = fromStore.due[s]
    if (untaken !== undefined) {
      this.cursor = untaken.before
      this.lowerBound = untaken.at
    } else {
      this.cursor = fromStore.lastKey
    }
    return taken
  }

  /**
   * Up to `max` LevelDB keys due at `time` of groups not in `pending`, from the cursor on, each with the last key read
   * before it; sets `lowerBound` to the first close time after them (+Infinity when the index ends).
   */
  private async scan(time: number, max: number): Promise<{ due: { at: number; group: string; before: string | undefined }[]; lastKey: string | undefined }> {
    const due: { at: number; group: string; before: string | undefined }[] = []
    let lastKey = this.cursor
    let next = Number.POSITIVE_INFINITY
    const range = this.cursor === undefined ? { gte: this.prefix, lt: this.end } : { gt: this.cursor, lt: this.end }
    for await (const key of this.db.keys({ ...range, fillCache: false })) {
      const at = timeFromSortable(key, this.prefix.length)
      if (at > time) {
        next = at
        break
      }
      const group = key.slice(this.prefix.length + TIME_DIGITS + 1)
      if (!this.pending.has(group)) due.push({ at, group, before: lastKey })
      lastKey = key
      if (due.length === max) {
        // Some may be due after these: look again from here.
        next = at
        break
      }
    }
    this.lowerBound = next
    return { due, lastKey }
  }

  /** Adds the index's changes since the last commit to the commit's batch (TaskStore.commitLocal). */
  changes(batch: IndexBatch): void {
    for (const [group, base] of this.pending) {
      const now = this.overlay.timeOf(group)
      if (base === now) continue
      if (base !== undefined) batch.del(this.key(base, group))
      if (now !== Number.POSITIVE_INFINITY) batch.put(this.key(now, group), NO_VALUE)
    }
  }

  /** The changes are in LevelDB. */
  committed(): void {
    this.lowerBound = Math.min(this.lowerBound, this.overlay.peek())
    this.pending.clear()
    this.overlay.clear()
    this.cursor = undefined
  }

  discard(): void {
    this.pending.clear()
    this.overlay.clear()
    this.cursor = undefined
    // The groups that were pending are back at their LevelDB keys, which may be earlier: `reload` or the next
    // `popDue` finds the smallest.
    this.lowerBound = Number.NEGATIVE_INFINITY
  }

  /** Reads the smallest close time LevelDB holds (after a discard or a rebuild). */
  async reload(): Promise<void> {
    this.discard()
    const [first] = await this.db.keys({ gte: this.prefix, lt: this.end, limit: 1 }).all()
    this.lowerBound = first === undefined ? Number.POSITIVE_INFINITY : timeFromSortable(first, this.prefix.length)
  }

  /** Adds the key of an entry found by a rebuild (TaskStore.warm) to `batch`, if the entry has an open window. */
  rebuilt(batch: IndexBatch, group: string, entry: unknown): void {
    const at = this.closeTimeOf(entry)
    if (at !== undefined) batch.put(this.key(at, group), NO_VALUE)
  }
}
