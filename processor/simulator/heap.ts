/**
 * A binary min-heap: the fleet's held-back readings ordered by when they go out, and the replay's files ordered by
 * their next event time. `before(a, b)` is a strict order; ties must be broken by the caller (a sequence number, a
 * file index) so that what comes out first never depends on the heap's shape.
 */
export class MinHeap<T> {
  private readonly items: T[] = []

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const items = this.items
    let at = items.push(item) - 1
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!this.before(items[at]!, items[parent]!)) break
      ;[items[at], items[parent]] = [items[parent]!, items[at]!]
      at = parent
    }
  }

  pop(): T | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    items[0] = last
    let at = 0
    for (;;) {
      const left = 2 * at + 1
      const right = left + 1
      let smallest = at
      if (left < items.length && this.before(items[left]!, items[smallest]!)) smallest = left
      if (right < items.length && this.before(items[right]!, items[smallest]!)) smallest = right
      if (smallest === at) return top
      ;[items[at], items[smallest]] = [items[smallest]!, items[at]!]
      at = smallest
    }
  }
}
