/**
 * Producer-state snapshots in the node's database (Kafka's `<offset>.snapshot` files), beside the log they describe:
 *
 *   !producer-snapshot!  partitionKey(20) | offset(int64 BE)  ->  msgpack ProducerSnapshot (the producers as of offset)
 *
 * `offset` is the offset after the last batch the snapshot covers, so a partition's producer state is the latest
 * snapshot at or below its log end plus the batches from that offset on (loadProducerState). Snapshots are written
 * through the database's write gate like everything else, but not in the same write as the batches below their
 * offset: a snapshot can land before those batches do, and a crash in between leaves a snapshot above the recovered
 * log end. Such a snapshot is deleted at load (as Kafka's truncateAndReload removes snapshots past the log end) and an
 * older one used, which is why the newest RETAINED_SNAPSHOTS are kept. A log truncated to an offset loses the
 * snapshots above it the same way.
 */
import { NodeDatabase, packr, prefixRange } from './database.js'
import type { PartitionLog } from './partition-log.js'
import { producerBatchOfStored, type ProducerSnapshot, type ProducerStateManager } from './producer-state.js'

const PREFIX = Buffer.from('!producer-snapshot!', 'utf8')
/** Snapshots kept per partition: the newest, and one before it for when the newest is past a recovered log end. */
export const RETAINED_SNAPSHOTS = 2

const SNAPSHOT_VERSION = 1

function keyOf(partitionKey: Buffer, offset: bigint): Buffer {
  const key = Buffer.allocUnsafe(PREFIX.length + partitionKey.length + 8)
  PREFIX.copy(key, 0)
  partitionKey.copy(key, PREFIX.length)
  key.writeBigInt64BE(offset, PREFIX.length + partitionKey.length)
  return key
}

function offsetOf(key: Buffer): bigint {
  return key.readBigInt64BE(key.length - 8)
}

/** Every snapshot key of a partition, or (given the 16-byte topic id) of a topic: for deleting a topic. */
export function producerSnapshotRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  return prefixRange(Buffer.concat([PREFIX, prefix]))
}

/** The snapshots of one partition. */
export class ProducerSnapshotStore {
  constructor(
    private readonly db: NodeDatabase,
    private readonly partitionKey: Buffer,
  ) {}

  /** Offsets of the stored snapshots, oldest first. */
  async offsets(): Promise<bigint[]> {
    const range = producerSnapshotRange(this.partitionKey)
    const keys = await this.db.db.keys({ ...range, fillCache: false }).all()
    return keys.map(offsetOf)
  }

  /** The newest snapshot at or below `offset`, or null. */
  async latestAtOrBelow(offset: bigint): Promise<ProducerSnapshot | null> {
    const range = producerSnapshotRange(this.partitionKey)
    const [value] = await this.db.db.values({ gte: range.gte, lte: keyOf(this.partitionKey, offset), reverse: true, limit: 1 }).all()
    if (value === undefined) return null
    const stored = packr.unpack(value) as { version: number } & ProducerSnapshot
    if (stored.version !== SNAPSHOT_VERSION) throw new Error(`producer snapshot version ${stored.version} is not one this node reads`)
    return { offset: stored.offset, producers: stored.producers }
  }

  /**
   * Stores `snapshot` and deletes all but the newest RETAINED_SNAPSHOTS, in one write. The caller packs the state at
   * the moment it takes the snapshot, so appends after that cannot leak into it.
   */
  async write(snapshot: ProducerSnapshot): Promise<void> {
    const offsets = await this.offsets()
    const older = offsets.filter((offset) => offset < snapshot.offset)
    const obsolete = older.slice(0, Math.max(0, older.length - (RETAINED_SNAPSHOTS - 1)))
    const value = packr.pack({ version: SNAPSHOT_VERSION, ...snapshot })
    await this.db.write((batch) => {
      for (const offset of obsolete) batch.del(keyOf(this.partitionKey, offset))
      batch.put(keyOf(this.partitionKey, snapshot.offset), value)
    })
  }

  /** Deletes the snapshots above `offset` (a truncated log, or one recovered shorter than a snapshot). */
  async deleteAbove(offset: bigint): Promise<void> {
    const above = (await this.offsets()).filter((o) => o > offset)
    if (above.length === 0) return
    await this.db.write((batch) => {
      for (const o of above) batch.del(keyOf(this.partitionKey, o))
    })
  }
}

/**
 * Rebuilds a partition's producer state (Kafka's LogLoader and truncateAndReload): snapshots above the log end are
 * deleted, the newest one left is restored, and the batches from its offset (or from the log start) to the log end are
 * replayed from their header facts (PartitionLog.batches; a control batch's one record is read for its marker); the
 * data records are never decoded.
 * Transactions decided below the high watermark are stable at once; the caller sets the high watermark first.
 * Returns how many batches were replayed.
 */
export async function loadProducerState(
  producers: ProducerStateManager,
  snapshots: ProducerSnapshotStore,
  log: Pick<PartitionLog, 'logStartOffset' | 'logEndOffset' | 'highWatermark' | 'batches'>,
  nowMs: number,
): Promise<number> {
  const end = log.logEndOffset
  await snapshots.deleteAbove(end)
  const snapshot = await snapshots.latestAtOrBelow(end)
  producers.restore(snapshot, log.logStartOffset, nowMs)
  const from = snapshot && snapshot.offset > log.logStartOffset ? snapshot.offset : log.logStartOffset
  let replayed = 0
  for await (const batch of log.batches(from, end)) {
    const fields = producerBatchOfStored(batch)
    if (fields) producers.replay(fields)
    replayed++
  }
  producers.onLogStartOffsetIncremented(log.logStartOffset)
  producers.onHighWatermarkUpdated(log.highWatermark)
  if (end > producers.mapEndOffset) producers.mapEndOffset = end
  return replayed
}
