/**
 * The close-time index of a windowed operator: for each group with open windows, the stream time at which its
 * earliest open window closes. A binary min-heap ordered by (close time, group) with lazy deletion: `set` pushes a
 * new entry and the map says which entry is current, so stale heap entries are dropped when they surface.
 *
 * Invariant: `peek()` is the smallest current close time, and groups with equal close times pop in string order, so
 * the order of emitted windows does not depend on arrival order or on a restart.
 */
interface Timer {
  at: number
  group: string
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.group < b.group)
}

export class TimerQueue {
  private readonly heap: Timer[] = []
  private readonly current = new Map<string, number>()

  get size(): number {
    return this.current.size
  }

  /** Schedules (or reschedules) `group` at `at`; undefined unschedules it. */
  set(group: string, at: number | undefined): void {
    if (at === undefined) {
      this.current.delete(group)
      return
    }
    if (this.current.get(group) === at) return
    this.current.set(group, at)
    this.push({ at, group })
  }

  /** The earliest close time, or +Infinity when nothing is scheduled. */
  peek(): number {
    this.dropStale()
    return this.heap.length === 0 ? Number.POSITIVE_INFINITY : this.heap[0]!.at
  }

  /** Removes and returns the earliest group due at or before `time`, or undefined. */
  popDue(time: number): string | undefined {
    this.dropStale()
    const top = this.heap[0]
    if (top === undefined || top.at > time) return undefined
    this.pop()
    this.current.delete(top.group)
    return top.group
  }

  clear(): void {
    this.heap.length = 0
    this.current.clear()
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.current.get(this.heap[0]!.group) !== this.heap[0]!.at) this.pop()
  }

  private push(timer: Timer): void {
    const heap = this.heap
    heap.push(timer)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  private pop(): void {
    const heap = this.heap
    const last = heap.pop()!
    if (heap.length === 0) return
    heap[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left
      if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right
      if (smallest === i) return
      ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
      i = smallest
    }
  }
}
