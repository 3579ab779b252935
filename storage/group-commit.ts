/**
 * Group commit: every append of the node that arrives while a write is in flight goes into the next single LevelDB
 * write, so concurrent produce requests share one write (and, with `fsync`, one sync).
 *
 *   append -> mark the log dirty -> [next flush: one chained batch over every dirty log] -> write -> resolve all
 *
 * Invariants: flushes never overlap, and a log's entries are written in the order they were appended. Every change a
 * partition log makes to its keys (batches, removals, its state record) goes through here, so the changes to one
 * partition reach LevelDB in the order they were made. A failed write
 * fails every append in it and puts the store into a failed state (later appends fail with the same error) rather
 * than carrying on with offsets that are not on disk, as Kafka takes a failed log directory offline.
 */
import type { Level } from 'level'

type ChainedBatch = ReturnType<Level<Buffer, Buffer>['batch']>

export interface Flushable {
  /** Adds every change since the last flush (and the log's state) to `batch`; returns what to call once written. */
  drainInto(batch: ChainedBatch): () => void
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
  failure: Error | null = null
  /** Counters for the bench report. */
  readonly stats = { writes: 0, entries: 0 }

  constructor(
    private readonly db: Level<Buffer, Buffer>,
    private readonly options: { fsync: boolean },
  ) {}

  /** Marks `log` as having entries to write; resolves when they are written. */
  add(log: Flushable): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
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
    if (this.inFlight || this.failure || this.next.logs.size === 0) return
    const flush = this.next
    this.next = newFlush()
    this.inFlight = flush
    try {
      await this.write(flush.logs)
      flush.resolve()
    } catch (error) {
      // No further write: this one's entries are lost, and writing later ones would leave a gap in the log.
      this.failure = error instanceof Error ? error : new Error(String(error))
      flush.reject(this.failure)
      this.next.reject(this.failure)
    } finally {
      this.inFlight = null
    }
    if (this.next.logs.size > 0) void this.flush()
  }

  private async write(logs: Set<Flushable>): Promise<void> {
    const batch = this.db.batch()
    try {
      const callbacks = [...logs].map((log) => log.drainInto(batch))
      this.stats.writes++
      this.stats.entries += batch.length
      await batch.write({ sync: this.options.fsync })
      for (const callback of callbacks) callback()
    } catch (error) {
      // write() closes the batch itself; one that never got there still holds native resources.
      await batch.close().catch(() => undefined)
      throw error
    }
  }
}
