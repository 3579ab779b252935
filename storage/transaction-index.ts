/**
 * The aborted-transaction index of a partition (Kafka's `.txnindex`, AbortedTxn): one entry per aborted transaction
 * that wrote data to the partition, keyed by the offset of its ABORT marker.
 *
 *   !txn-index!  partitionKey(20) | lastOffset(int64 BE)  ->  msgpack { producerId, firstOffset, lastStableOffset }
 *
 *   lastOffset        the ABORT marker's offset
 *   firstOffset       the transaction's first data offset in this partition
 *   lastStableOffset  the partition's last stable offset once the abort was decided (ProducerStateManager
 *                     .lastStableOffset): no transaction still open then started below it
 *
 * A read_committed Fetch of [fetchOffset, upperBound) is answered with the entries that overlap it: lastOffset >=
 * fetchOffset and firstOffset < upperBound. Entries are in marker order, and the first whose lastStableOffset is at or
 * past upperBound ends the search (Kafka's TransactionIndex.collectAbortedTxns): every transaction aborted after it
 * started at or above that offset.
 *
 * The entry is written before its marker is queued (both go through the write gate in call order, see database.ts),
 * so a marker in the log has its entry (until the log cleaner, below); a crash between the two leaves an entry at or above the recovered log
 * end, which `truncateFrom` removes at load. Truncation removes the entries of the markers it removes; a new log start
 * removes those wholly below it; the log cleaner removes an entry in a write of its own just before the one that
 * removes its marker (broker/log-cleaner.ts), once the transaction's batches are gone.
 *
 * Why an entry never outlives its marker: read_committed clients (Java's CompletedFetch, librdkafka, kafkajs) skip
 * a producer's transactional batches from the entry's firstOffset until they read that producer's ABORT marker (the
 * answer carries no last offset), so an entry whose marker is gone would hide every later committed batch of the
 * producer in that answer. The reverse is harmless: a marker without its entry (a crash between the cleaner's two
 * writes) ends nothing a client skips, and clients never hand control batches to the application.
 */
import { NodeDatabase, packr, prefixRange } from './database.js'

const PREFIX = Buffer.from('!txn-index!', 'utf8')

export interface AbortedTxn {
  readonly producerId: bigint
  readonly firstOffset: bigint
  /** The ABORT marker's offset. */
  readonly lastOffset: bigint
  readonly lastStableOffset: bigint
}

/** Every index key of a partition, or (given the 16-byte topic id) of a topic: for deleting a topic. */
export function transactionIndexRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  return prefixRange(Buffer.concat([PREFIX, prefix]))
}

export class TransactionIndex {
  /** Whether the index may hold entries; false lets read_committed fetches of partitions without aborts skip it. */
  private maybeNonEmpty = true

  constructor(
    private readonly db: NodeDatabase,
    private readonly partitionKey: Buffer,
  ) {}

  private keyOf(lastOffset: bigint): Buffer {
    const key = Buffer.allocUnsafe(PREFIX.length + this.partitionKey.length + 8)
    PREFIX.copy(key, 0)
    this.partitionKey.copy(key, PREFIX.length)
    key.writeBigInt64BE(lastOffset, PREFIX.length + this.partitionKey.length)
    return key
  }

  /** Finds out whether the index is empty, so that fetches can skip it until the first abort. */
  async open(): Promise<void> {
    const range = transactionIndexRange(this.partitionKey)
    const [first] = await this.db.db.keys({ ...range, limit: 1 }).all()
    this.maybeNonEmpty = first !== undefined
  }

  /** Writes an entry; call it before the marker it describes is appended (see the module comment). */
  append(entry: AbortedTxn): Promise<void> {
    this.maybeNonEmpty = true
    const value = packr.pack({ producerId: entry.producerId, firstOffset: entry.firstOffset, lastStableOffset: entry.lastStableOffset })
    return this.db.write((batch) => void batch.put(this.keyOf(entry.lastOffset), value))
  }

  /** The aborted transactions that overlap [fetchOffset, upperBound), in marker order. */
  async collect(fetchOffset: bigint, upperBound: bigint): Promise<AbortedTxn[]> {
    if (!this.maybeNonEmpty || fetchOffset >= upperBound) return []
    const range = transactionIndexRange(this.partitionKey)
    const found: AbortedTxn[] = []
    const iterator = this.db.db.iterator({ gte: this.keyOf(fetchOffset), lt: range.lt, fillCache: false })
    try {
      for await (const [key, value] of iterator) {
        const stored = packr.unpack(value) as { producerId: bigint; firstOffset: bigint; lastStableOffset: bigint }
        const entry = { ...stored, lastOffset: key.readBigInt64BE(key.length - 8) }
        if (entry.firstOffset < upperBound) found.push(entry)
        if (entry.lastStableOffset >= upperBound) break
      }
    } finally {
      await iterator.close()
    }
    return found
  }

  /** Every entry, in marker order (tests and tools). */
  async entries(): Promise<AbortedTxn[]> {
    const range = transactionIndexRange(this.partitionKey)
    const all = await this.db.db.iterator({ ...range, fillCache: false }).all()
    return all.map(([key, value]) => ({ ...(packr.unpack(value) as Omit<AbortedTxn, 'lastOffset'>), lastOffset: key.readBigInt64BE(key.length - 8) }))
  }

  /** Removes the entries of the ABORT markers at `lastOffsets` (the log cleaner, before it removes the markers). */
  remove(lastOffsets: readonly bigint[]): Promise<void> {
    return this.db.write((batch) => {
      for (const lastOffset of lastOffsets) batch.del(this.keyOf(lastOffset))
    })
  }

  /** Removes the entries whose marker is at or above `offset` (truncation, and a recovered log end). */
  truncateFrom(offset: bigint): Promise<void> {
    return this.db.clear({ gte: this.keyOf(offset < 0n ? 0n : offset), lt: transactionIndexRange(this.partitionKey).lt })
  }

  /** Removes the entries whose marker is below `logStartOffset` (retention, DeleteRecords). */
  deleteBefore(logStartOffset: bigint): Promise<void> {
    return this.db.clear({ gte: transactionIndexRange(this.partitionKey).gte, lt: this.keyOf(logStartOffset) })
  }
}
