/**
 * A partition's time index (Kafka's .timeindex): sparse entries in LevelDB beside its batches, written in the same
 * write as the batch that completes them, so ListOffsets by timestamp seeks instead of scanning the log.
 *
 *   !time! partitionKey(20) | offset(int64 BE)  ->  maxTimestampSoFar(int64 BE) | blockMaxTimestamp(int64 BE)
 *
 *   batches:   [ 0-3 | 4-9 | 10-12 ][ 13-40 | 41-41 ][ 42-50 | 51-60 ]( 61-70 | 71-75 )
 *   entries:            @13                  @42                @61       the open block: no entry yet
 *
 * An entry at `offset` closes a block: the batches between the previous entry and `offset`, about
 * TIME_INDEX_INTERVAL_BYTES of them (Kafka's index.interval.bytes). Its value holds
 * - maxTimestampSoFar: the largest timestamp of every record ever appended below `offset`. It never decreases from
 *   one entry to the next, so a binary search over entries finds the last one below a target timestamp: every record
 *   before it is older than the target, and the first record at or after the target comes after it.
 * - blockMaxTimestamp: the largest timestamp of the block's records, so a search skips blocks without reading them,
 *   and MAX_TIMESTAMP finds its block without reading the log.
 *
 * Both are upper bounds, exact as appended: deleting or compacting records never makes them wrong, only looser, and
 * a search reads the batches of a block before it answers from it. Compaction recomputes blockMaxTimestamp of the
 * blocks it rewrites (an emptied block loses its entry); truncation deletes the entries past the new log end;
 * a new log start deletes the entries of blocks wholly below it; recovery deletes the entries past what it kept and
 * rebuilds the index of a log stored without one.
 */
import type { NodeDatabase } from './database.js'

/** Bytes of batches between two entries, at least (Kafka's index.interval.bytes default). */
export const TIME_INDEX_INTERVAL_BYTES = 4096

/** The largest offset a key can hold (Long.MAX_VALUE). */
export const MAX_OFFSET = (1n << 63n) - 1n

/** "No record yet": Kafka's Long.MIN_VALUE; every real timestamp is larger. */
export const NO_TIMESTAMP = -(2n ** 63n)

/** What the index needs to continue at the log end, kept in the log's state record. */
export interface TimeIndexState {
  /** The largest timestamp appended so far (records since deleted included), or NO_TIMESTAMP. */
  maxTimestamp: bigint
  /** The largest timestamp in the open block (the batches after the last entry), or NO_TIMESTAMP. */
  openMaxTimestamp: bigint
  /** Bytes appended to the open block. */
  openBytes: number
}

export const EMPTY_TIME_INDEX: TimeIndexState = { maxTimestamp: NO_TIMESTAMP, openMaxTimestamp: NO_TIMESTAMP, openBytes: 0 }

export interface TimeIndexEntry {
  /** The block ends here (exclusive). */
  offset: bigint
  maxTimestampSoFar: bigint
  blockMaxTimestamp: bigint
}

/** A batch as the index sees it. */
export interface IndexedBatch {
  lastOffset: bigint
  maxTimestamp: bigint
  sizeBytes: number
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b)

/** The index after appending `batch`: the new state, and the entry the batch completes, if it completes one. */
export function indexAppend(state: TimeIndexState, batch: IndexedBatch): { state: TimeIndexState; entry: TimeIndexEntry | null } {
  const maxTimestamp = max(state.maxTimestamp, batch.maxTimestamp)
  const openMaxTimestamp = max(state.openMaxTimestamp, batch.maxTimestamp)
  const openBytes = state.openBytes + batch.sizeBytes
  if (openBytes < TIME_INDEX_INTERVAL_BYTES) return { state: { maxTimestamp, openMaxTimestamp, openBytes }, entry: null }
  return {
    state: { maxTimestamp, openMaxTimestamp: NO_TIMESTAMP, openBytes: 0 },
    entry: { offset: batch.lastOffset + 1n, maxTimestampSoFar: maxTimestamp, blockMaxTimestamp: openMaxTimestamp },
  }
}

/** The index state of a log whose last entry is `last` (or none) and whose open block holds `open`. */
export function indexStateAfter(last: TimeIndexEntry | null, open: readonly IndexedBatch[]): TimeIndexState {
  let state: TimeIndexState = { ...EMPTY_TIME_INDEX, maxTimestamp: last?.maxTimestampSoFar ?? NO_TIMESTAMP }
  for (const batch of open) {
    state = { maxTimestamp: max(state.maxTimestamp, batch.maxTimestamp), openMaxTimestamp: max(state.openMaxTimestamp, batch.maxTimestamp), openBytes: state.openBytes + batch.sizeBytes }
  }
  return state
}

export function encodeEntry(entry: TimeIndexEntry): Buffer {
  const value = Buffer.allocUnsafe(16)
  value.writeBigInt64BE(entry.maxTimestampSoFar, 0)
  value.writeBigInt64BE(entry.blockMaxTimestamp, 8)
  return value
}

/** One partition's entries, read from the database. */
export class TimeIndexReader {
  constructor(
    private readonly db: NodeDatabase,
    private readonly partition: Buffer,
  ) {}

  key(offset: bigint): Buffer {
    return this.db.timeKey(this.partition, offset)
  }

  private decode(key: Buffer, value: Buffer): TimeIndexEntry {
    return {
      offset: key.readBigInt64BE(key.length - 8),
      maxTimestampSoFar: value.readBigInt64BE(0),
      blockMaxTimestamp: value.readBigInt64BE(8),
    }
  }

  /**
   * The last entry whose maxTimestampSoFar is below `timestamp`, or null: a search over the offsets in [from, to),
   * one seek per step, where `maxTimestamp` bounds every entry's maxTimestampSoFar. Every record below the entry's
   * offset is older than `timestamp`.
   *
   * Timestamps usually grow about evenly with offsets, so after reading the first entry each step guesses where the
   * target lies by interpolating between what is known on either side (a handful of seeks on a log of millions of
   * records); a step that did not halve the range is followed by a plain halving one, so a log of uneven timestamps
   * costs at most about twice a binary search. Each seek is a round trip to LevelDB's thread pool, which is what a
   * lookup's time is made of.
   */
  async lastBefore(timestamp: bigint, from: bigint, to: bigint, maxTimestamp: bigint): Promise<TimeIndexEntry | null> {
    const iterator = this.db.db.iterator({ gte: this.key(from), lt: this.key(to) })
    try {
      const first = await iterator.next()
      if (!first) return null
      let best = this.decode(first[0], first[1])
      if (best.maxTimestampSoFar >= timestamp) return null
      let low = best.offset + 1n
      let high = to
      /** An upper bound of maxTimestampSoFar at `high`. */
      let highTimestamp = maxTimestamp
      let halve = false
      while (low < high) {
        const width = high - low
        let mid = low + width / 2n
        if (!halve && highTimestamp > best.maxTimestampSoFar) {
          const share = Number(timestamp - best.maxTimestampSoFar) / Number(highTimestamp - best.maxTimestampSoFar)
          const guess = low + BigInt(Math.floor(share * Number(width)))
          mid = guess < low ? low : guess >= high ? high - 1n : guess
        }
        iterator.seek(this.key(mid))
        const found = await iterator.next()
        const entry = found ? this.decode(found[0], found[1]) : null
        if (entry && entry.maxTimestampSoFar < timestamp) {
          best = entry
          low = entry.offset + 1n
        } else {
          // No entry in [mid, to), or the first one there is already too late: so is every later one.
          high = mid
          if (entry) highTimestamp = entry.maxTimestampSoFar
        }
        halve = !halve && (high - low) * 2n > width
      }
      return best
    } finally {
      await iterator.close()
    }
  }

  /**
   * The entries whose offset is in (after, before], in offset order, a run at a time: a few at first and more as the
   * caller keeps asking (a search usually needs the next one or two; MAX_TIMESTAMP reads them all).
   */
  async *entries(after: bigint, before: bigint = MAX_OFFSET): AsyncGenerator<TimeIndexEntry[]> {
    const iterator = this.db.db.iterator({ gt: this.key(after), lte: this.key(before), highWaterMarkBytes: 256 * 1024 })
    try {
      for (let size = 4; ; size = Math.min(size * 8, 4096)) {
        const found = await iterator.nextv(size)
        if (found.length === 0) return
        yield found.map(([key, value]) => this.decode(key, value))
      }
    } finally {
      await iterator.close()
    }
  }

  /** The last entry at or below `offset`, or null. */
  async lastAtOrBelow(offset: bigint): Promise<TimeIndexEntry | null> {
    const [found] = await this.db.db.iterator({ gte: this.key(0n), lte: this.key(offset), reverse: true, limit: 1 }).all()
    return found ? this.decode(found[0], found[1]) : null
  }

  /** The first entry above `offset` (the one closing the block that holds `offset`), or null. */
  async firstAbove(offset: bigint): Promise<TimeIndexEntry | null> {
    const [found] = await this.db.db.iterator({ gt: this.key(offset), lt: this.db.timeRange(this.partition).lt, limit: 1 }).all()
    return found ? this.decode(found[0], found[1]) : null
  }
}
