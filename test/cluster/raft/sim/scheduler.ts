/**
 * Simulated time: events run in (time, insertion) order, and `nowMs` jumps from one event to the next, so a run
 * of simulated seconds takes milliseconds and two runs of one seed interleave identically. An event may return a
 * promise (a store that writes for real); the scheduler awaits it before the next event, keeping the order.
 */
interface ScheduledEvent {
  readonly atMs: number
  readonly seq: number
  readonly run: () => void | Promise<void>
}

export class Scheduler {
  nowMs = 0
  private readonly heap: ScheduledEvent[] = []
  private seq = 0

  at(atMs: number, run: () => void | Promise<void>): void {
    this.push({ atMs: Math.max(atMs, this.nowMs), seq: this.seq++, run })
  }

  after(delayMs: number, run: () => void | Promise<void>): void {
    this.at(this.nowMs + delayMs, run)
  }

  /** Runs events up to `endMs` (inclusive), or until `stop()` holds after one; time ends at `endMs` or the stop. */
  async runUntil(endMs: number, stop: () => boolean = () => false): Promise<void> {
    while (this.heap.length > 0 && this.heap[0]!.atMs <= endMs) {
      const event = this.pop()
      this.nowMs = event.atMs
      const result = event.run()
      if (result) await result
      if (stop()) return
    }
    this.nowMs = Math.max(this.nowMs, endMs)
  }

  private push(event: ScheduledEvent): void {
    const heap = this.heap
    heap.push(event)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  private pop(): ScheduledEvent {
    const heap = this.heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right
        if (smallest === i) break
        ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
        i = smallest
      }
    }
    return top
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq)
}
