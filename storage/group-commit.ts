/**
 * Group commit: every append of the node that arrives while a write is in flight goes into the next single LevelDB
 * write, so concurrent produce requests share one write (and, with `fsync`, one sync).
 *
 *   append -> the open flush (seq n) -> [its turn: one chained batch over its logs' entries up to seq n] -> resolve
 *
 *   pending:  [ flush 7: sealed, 1 MiB ] [ flush 8: sealed, 1 MiB ] [ flush 9: open, 300 KiB ]   in flight: flush 6
 *
 * A flush is open until its entries reach `maxWriteBytes`; the next append then opens a new one, so one write
 * carries at most about that many bytes (one batch larger than the bound is a write of its own). Each log entry is
 * tagged with the seq of the flush it joined, and a flush writes only the entries tagged up to its seq, so the rest
 * waits for the next write and an append is acknowledged only by the write that carried it.
 *
 * Why 1 MiB: LevelDB writes no faster past it, synced or not, while the time of one write (which every append in it
 * waits for) and the memory it takes (the chained batch copies every value into one native buffer) keep growing with
 * its size. Measured with `node dist/bench/write-size.js` (and `--sync`): the bench's ~16 KiB batches under
 * Brook-shaped keys over 8 partitions, Brook's LEVEL_OPTIONS, 512 MB per size (256 MB synced), each size in a fresh
 * process, median [min..max] of 3 runs interleaved; peak RSS includes a 64 MiB pool and LevelDB's memtables:
 *
 *   write size   MB/s          MB/s synced   ms per write, p50   peak RSS, MB
 *   256 KiB      45 [15..95]   22 [15..23]      1.4              381
 *   1 MiB        44 [22..89]   28 [19..30]     10                394
 *   4 MiB        35 [31..40]   26 [21..26]     66                408
 *   8 MiB        36 [24..40]   27 [20..29]    143                421
 *   16 MiB       29 [13..33]   26 [23..26]    233                463
 *   32 MiB       14 [10..21]   25 [15..35]    631                663
 *   64 MiB        9 [7..25]    28 [17..29]   1770                876
 *   256 MiB      20 [15..30]   -             4309                967
 *
 * The machine was shared while this ran (load average 10-20 on 2 cores), so the rates are low and spread wide; the
 * shape held in every run. The bench's produce writes stay under the bound (2 connections x 16 requests x 16 KiB).
 *
 * Staging: a log puts each batch appended to the next flush into that flush's LevelDB batch at once (`staging`), while
 * the write before it is in flight, rather than all of them when the flush's turn comes. Putting is LevelDB copying the
 * bytes into the batch's own buffer, 0.3-0.4 ms for a write of 16 batches on this machine, and done at the turn it held
 * the writer idle between two writes. Only the next flush stages (the ones behind it, sealed at the bound, fill at
 * their turn as before), so staging holds at most one write's bytes in native memory beside the one in flight, however
 * many appends queue up. A flush's batch holds only appends of its own entries (keys of batches and of the time index);
 * `drainInto` adds the rest at the turn (a log's key changes, then its entries not staged there, then its state
 * record), and puts the staged entries again after key changes when the log has any, so a write applies changes before
 * entries as it always did (the later put of a key wins in a LevelDB batch).
 *
 * Invariants: flushes never overlap, and a log's entries are written in the order they were appended. Every change a
 * partition log makes to its keys (batches, removals, its state record) goes through here, so the changes to one
 * partition reach LevelDB in the order they were made. Writes go through the database's gate (NodeDatabase.write):
 * a failed write fails every append in it, and the appends queued behind it fail with the gate's refusal, never
 * written; later appends are refused before they take an offset.
 */
import type { NodeDatabase, WriteBatch } from './database.js'

/** One LevelDB write's worth of log entries, at most (see the measurement above). */
export const MAX_WRITE_BYTES = 1024 * 1024

export interface Flushable {
  /**
   * Adds to `batch` the log's changes up to flush `seq` (entries that joined a later flush stay queued) and its state
   * as of those changes; returns what to call once they are written. Entries the log staged in `batch` are there
   * already (see "Staging").
   */
  drainInto(batch: WriteBatch, seq: number): () => void
}

/** A place in a flush: the flush's seq (to tag entries with) and a promise of its write. */
export interface Ticket {
  readonly seq: number
  readonly done: Promise<void>
}

interface Flush extends Ticket {
  readonly logs: Set<Flushable>
  bytes: number
  /** The batch its logs stage their appends in while it is the next in `pending` (see `staging`); made at the first. */
  staged: WriteBatch | null
  resolve(): void
  reject(error: Error): void
}

function newFlush(seq: number): Flush {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const done = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  // A rejected flush that no append awaits any more must not become an unhandled rejection.
  done.catch(() => undefined)
  return { seq, logs: new Set(), bytes: 0, staged: null, done, resolve, reject }
}

export interface GroupCommitOptions {
  /** Sync each write to disk (LevelDB `sync: true`). */
  fsync: boolean
  /** Bytes of log entries one write may carry (default MAX_WRITE_BYTES). */
  maxWriteBytes?: number
}

export class GroupCommit {
  /** Flushes not yet started, oldest first; the last one is open to new appends. */
  private readonly pending: Flush[] = []
  private inFlight: Flush | null = null
  private scheduled = false
  private seq = 0
  private readonly maxWriteBytes: number
  /** Counters for the bench report and the tests. */
  readonly stats = { writes: 0, entries: 0, maxWriteBytes: 0, staged: 0 }

  constructor(
    private readonly db: NodeDatabase,
    private readonly options: GroupCommitOptions,
  ) {
    this.maxWriteBytes = options.maxWriteBytes ?? MAX_WRITE_BYTES
  }

  /**
   * Joins `log` to the open flush with `bytes` more of entries (0 for a change of state alone), opening a new flush
   * when they would take the open one past the bound. Throws if the database refuses writes.
   */
  add(log: Flushable, bytes = 0): Ticket {
    this.db.checkWritable()
    let flush = this.pending.at(-1)
    if (!flush || (flush.bytes > 0 && flush.bytes + bytes > this.maxWriteBytes)) {
      flush = newFlush(++this.seq)
      this.pending.push(flush)
    }
    flush.logs.add(log)
    flush.bytes += bytes
    if (!this.inFlight && !this.scheduled) {
      this.scheduled = true
      // setImmediate runs after the current I/O phase, so requests that arrived together are written together.
      setImmediate(() => void this.flush())
    }
    return flush
  }

  /**
   * The batch of the flush `ticket` names, for the log that just joined it to put its appended batch in at once
   * (LevelDB copies it into the batch's own buffer then), if that flush is the next to be written; null otherwise.
   * The flush's write then starts with those appends already in its batch, and `drainInto` adds the rest (see
   * "Staging" above).
   */
  staging(ticket: Ticket): WriteBatch | null {
    // A flush whose write has begun (or was refused) is no longer in `pending`.
    const flush = ticket as Flush
    if (flush !== this.pending[0]) return null
    this.stats.staged++
    return (flush.staged ??= this.db.stagedBatch())
  }

  /**
   * Resolves once everything added so far is written (or has failed). It does not wait for what is added later, so
   * it returns under a steady stream of appends too.
   */
  async settle(): Promise<void> {
    // Flushes are written in order, so waiting for the last one covers all.
    const last = this.pending.at(-1) ?? this.inFlight
    await last?.done.catch(() => undefined)
  }

  private async flush(): Promise<void> {
    this.scheduled = false
    if (this.inFlight) return
    const flush = this.pending.shift()
    if (!flush) return
    this.inFlight = flush
    try {
      await this.write(flush)
      flush.resolve()
    } catch (error) {
      flush.reject(error as Error)
      // Those queued behind it are never attempted: they would be written after the failed one (see NodeDatabase.write).
      const refusal = this.db.writeRefusal() ?? (error as Error)
      for (const queued of this.pending.splice(0)) {
        if (queued.staged) this.db.discard(queued.staged)
        queued.reject(refusal)
      }
    } finally {
      this.inFlight = null
    }
    if (this.pending.length > 0) void this.flush()
  }

  private async write(flush: Flush): Promise<void> {
    const callbacks = await this.db.write(
      (batch) => {
        const callbacks = [...flush.logs].map((log) => log.drainInto(batch, flush.seq))
        this.stats.writes++
        this.stats.entries += batch.length
        return callbacks
      },
      { sync: this.options.fsync, batch: flush.staged ?? undefined },
    )
    if (flush.bytes > this.stats.maxWriteBytes) this.stats.maxWriteBytes = flush.bytes
    for (const callback of callbacks) callback()
  }
}
