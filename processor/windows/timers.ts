/**
 * Close-time indexes: the interface a windowed operator uses (CloseTimeIndex), and TimerQueue, the index in memory
 * (behind MemoryCloseTimes, and the part of the store's index that changed since its last commit).
 *
 * TimerQueue: for each group with open windows, the stream time at which its earliest open window closes. Windows
 * are epoch-aligned, so a great many groups share each close time: the queue keeps one bucket per close time (the
 * groups due then, in an array) in a binary min-heap by close time, and a Map from each group to its bucket.
 *
 *   current: Map group -> bucket          times (min-heap): [t1, t2, t3]
 *                                          bucket t1 { at: t1, groups: [g7, g2, g9, g2], live: 3 }
 *
 * Rescheduling a group moves it in `current` and appends it to its new bucket; the old bucket keeps a stale copy
 * (its `live` count drops), skipped when the bucket is popped and dropped with it. A bucket with no live group left
 * leaves the heap when it surfaces. A group costs a Map entry pointing at a shared bucket (no boxed number) and a
 * slot in a bucket's array: about 60 bytes, where an entry object per schedule in one heap took about 250.
 *
 * Invariant: `peek()` is the smallest close time of a live group, and groups with equal close times pop in string
 * order (a bucket is sorted when its first group pops), so the order of emitted windows does not depend on arrival
 * order or on a restart.
 */
/**
 * The close-time index a windowed operator keeps beside its state: for every group the state holds an entry of, the
 * close time of that entry's earliest open window (`nextCloseAt`). Two implementations: `MemoryCloseTimes` (this file,
 * for operators over a plain KeyedState) and the task store's, kept in LevelDB with the state it indexes
 * (state/close-times.ts), so that the memory it takes does not grow with the number of groups.
 */
export interface CloseTimeIndex {
  /**
   * Moves `group` from close time `from` (what the index holds for it: undefined when it holds nothing) to `to`
   * (undefined: the group has no open window left).
   */
  move(group: string, from: number | undefined, to: number | undefined): void
  /**
   * Whether `move` needs `from` for this group (the index does not know where it is): the operator computes it only
   * then, since it costs a pass over the entry (sliding windows: over every point).
   */
  needsFrom(group: string): boolean
  /**
   * At most the earliest close time (+Infinity when nothing is scheduled): exact in memory; the store's may be lower
   * until `popDue` has looked, so that `peek() <= t` means "maybe due" and `peek() > t` means "nothing due".
   */
  peek(): number
  /**
   * Removes and returns up to `max` groups whose close time is at or before `time`, by (close time, group); empty only
   * when none is due, and then `peek()` is above `time`. Each group taken is unscheduled: its operator moves it
   * (`from` undefined) once it has closed its windows.
   */
  popDue(time: number, max: number): string[] | Promise<string[]>
  /** Schedules a group found in the store when the task starts (only an index kept in memory needs it). */
  restore?(group: string, at: number | undefined): void
  /** Forgets what is not in the store (a task that reloads; in memory, everything). */
  discard(): void
}

/** The close-time index in memory: a TimerQueue. */
export class MemoryCloseTimes implements CloseTimeIndex {
  private readonly queue = new TimerQueue()

  move(group: string, _from: number | undefined, to: number | undefined): void {
    this.queue.set(group, to)
  }

  needsFrom(): boolean {
    return false
  }

  peek(): number {
    return this.queue.peek()
  }

  popDue(time: number, max: number): string[] {
    const groups: string[] = []
    for (let group = this.queue.popDue(time); group !== undefined; group = groups.length < max ? this.queue.popDue(time) : undefined) groups.push(group)
    return groups
  }

  restore(group: string, at: number | undefined): void {
    this.queue.set(group, at)
  }

  discard(): void {
    this.queue.clear()
  }
}

interface Bucket {
  at: number
  groups: string[]
  /** Groups of `groups` whose current bucket this is. */
  live: number
  /** Sorted, and popped up to `next`. */
  sorted: boolean
  next: number
}

export class TimerQueue {
  /** Buckets by close time, a binary min-heap. */
  private readonly times: Bucket[] = []
  private readonly buckets = new Map<number, Bucket>()
  private readonly current = new Map<string, Bucket>()

  get size(): number {
    return this.current.size
  }

  /** Schedules (or reschedules) `group` at `at`; undefined unschedules it. */
  set(group: string, at: number | undefined): void {
    const previous = this.current.get(group)
    if (previous !== undefined) {
      if (previous.at === at) return
      previous.live--
    }
    if (at === undefined) {
      this.current.delete(group)
      return
    }
    let bucket = this.buckets.get(at)
    if (bucket === undefined) {
      bucket = { at, groups: [], live: 0, sorted: false, next: 0 }
      this.buckets.set(at, bucket)
      this.push(bucket)
    }
    bucket.live++
    this.current.set(group, bucket)
    if (bucket.sorted) insertSorted(bucket.groups, group, bucket.next)
    else bucket.groups.push(group)
  }

  /** The close time `group` is scheduled at, or +Infinity when it is not scheduled. */
  timeOf(group: string): number {
    return this.current.get(group)?.at ?? Number.POSITIVE_INFINITY
  }

  /** The earliest close time, or +Infinity when nothing is scheduled. */
  peek(): number {
    this.dropEmpty()
    return this.times.length === 0 ? Number.POSITIVE_INFINITY : this.times[0]!.at
  }

  /** Removes and returns the earliest group due at or before `time`, or undefined. */
  popDue(time: number): string | undefined {
    this.dropEmpty()
    const bucket = this.times[0]
    if (bucket === undefined || bucket.at > time) return undefined
    if (!bucket.sorted) {
      // Code-unit order, as `<` compares strings.
      bucket.groups.sort()
      bucket.sorted = true
    }
    while (bucket.next < bucket.groups.length) {
      const group = bucket.groups[bucket.next++]!
      if (this.current.get(group) !== bucket) continue
      this.current.delete(group)
      bucket.live--
      return group
    }
    throw new Error(`close-time index out of step: the bucket of ${bucket.at} counts ${bucket.live} groups but holds none`)
  }

  clear(): void {
    this.times.length = 0
    this.buckets.clear()
    this.current.clear()
  }

  /** Drops buckets without a live group from the top of the heap. */
  private dropEmpty(): void {
    while (this.times.length > 0) {
      const top = this.times[0]!
      if (top.live > 0) return
      this.buckets.delete(top.at)
      this.pop()
    }
  }

  private push(bucket: Bucket): void {
    const heap = this.times
    heap.push(bucket)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= bucket.at) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = bucket
  }

  private pop(): void {
    const heap = this.times
    const last = heap.pop()!
    if (heap.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left
      if (heap[child]!.at >= last.at) break
      heap[i] = heap[child]!
      i = child
    }
    heap[i] = last
  }
}

/** Inserts `group` into `groups`, sorted from `from` on, after any equal one. */
function insertSorted(groups: string[], group: string, from: number): void {
  let low = from
  let high = groups.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (groups[mid]! <= group) low = mid + 1
    else high = mid
  }
  groups.splice(low, 0, group)
}
