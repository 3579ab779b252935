/**
 * Group commit: every append of the node that arrives while a write is in flight goes into the next single LevelDB
 * write, so concurrent produce requests share one write (and, with `fsync`, one sync).
 *
 *   append -> mark the log dirty -> [next flush: one chained batch over every dirty log] -> write -> resolve all
 *
 * Invariants: flushes never overlap, and a log's entries are written in the order they were appended. Every change a
 * partition log makes to its keys (batches, removals, its state record) goes through here, so the changes to one
 * partition reach LevelDB in the order they were made. Writes go through the database's gate (NodeDatabase.write):
 * a failed write fails every append in it, and the appends queued behind it fail with the gate's refusal, never
 * written; later appends are refused before they take an offset.
 */
import type { NodeDatabase, WriteBatch } from './database.js'

export interface Flushable {
  /** Adds every change since the last flush (and the log's state) to `batch`; returns what to call once written. */
  drainInto(batch: WriteBatch): () => void
}

interface Flush {
  readonly logs: Set<Flushable>
  readonly done: Promise<void>
  resolve(): void
  reject(error: Error): void
}

function newFlush(): Flush {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const done = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  // A rejected flush that no append awaits any more must not become an unhandled rejection.
  done.catch(() => undefined)
  return { logs: new Set(), done, resolve, reject }
}

export class GroupCommit {
  private next = newFlush()
  private inFlight: Flush | null = null
  private scheduled = false
  /** Counters for the bench report. */
  readonly stats = { writes: 0, entries: 0 }

  constructor(
    private readonly db: NodeDatabase,
    private readonly options: { fsync: boolean },
  ) {}

  /** Marks `log` as having entries to write; resolves when they are written. Throws if the database refuses writes. */
  add(log: Flushable): Promise<void> {
    this.db.checkWritable()
    this.next.logs.add(log)
    if (!this.inFlight && !this.scheduled) {
      this.scheduled = true
      // setImmediate runs after the current I/O phase, so requests that arrived together are written together.
      setImmediate(() => void this.flush())
    }
    return this.next.done
  }

  /**
   * Resolves once everything added so far is written (or has failed). It does not wait for what is added later, so
   * it returns under a steady stream of appends too.
   */
  async settle(): Promise<void> {
    // `next` is written only after the flush in flight, so waiting for it covers both.
    const last = this.next.logs.size > 0 ? this.next : this.inFlight
    await last?.done.catch(() => undefined)
  }

  private async flush(): Promise<void> {
    this.scheduled = false
    if (this.inFlight || this.next.logs.size === 0) return
    const flush = this.next
    this.next = newFlush()
    this.inFlight = flush
    try {
      await this.write(flush.logs)
      flush.resolve()
    } catch (error) {
      flush.reject(error as Error)
      // Those queued behind it are never attempted: they would be written after the failed one (see NodeDatabase.write).
      const queued = this.next
      this.next = newFlush()
      queued.reject(this.db.writeRefusal() ?? (error as Error))
    } finally {
      this.inFlight = null
    }
    if (this.next.logs.size > 0) void this.flush()
  }

  private async write(logs: Set<Flushable>): Promise<void> {
    const callbacks = await this.db.write(
      (batch) => {
        const callbacks = [...logs].map((log) => log.drainInto(batch))
        this.stats.writes++
        this.stats.entries += batch.length
        return callbacks
      },
      { sync: this.options.fsync },
    )
    for (const callback of callbacks) callback()
  }
}
