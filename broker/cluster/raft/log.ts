/**
 * A member's replicated log in memory (Kafka's ReplicatedLog): the latest snapshot, then whole batches.
 *
 *   [ snapshot: every record below endOffset ][b0][b1 ][b2  ] ...
 *                                  logStartOffset              logEndOffset
 *
 * The metadata log stays small because the member snapshots its state machine and drops the batches below the
 * snapshot (`compactTo`), so it is held whole in memory; the store keeps the durable copy.
 *
 * Invariants:
 * - batches are contiguous from logStartOffset, epochs never decrease, and an (offset, epoch) pair names one entry
 *   in every log of the quorum (the leader of an epoch assigns its offsets once);
 * - truncation and compaction cut at batch boundaries only;
 * - `endOffsetForEpoch` answers as Kafka's OffsetsForLeaderEpoch does: the largest epoch <= the one asked for, and
 *   the offset where the log leaves it.
 */
import { batchEndOffset, type RaftBatch, type RaftSnapshot, type RaftSnapshotId } from '../../../storage/raft-store.js'

/** Kafka's `ValidOffsetAndEpoch`: what a leader makes of a follower's (fetchOffset, lastFetchedEpoch). */
export type FetchPosition =
  | { readonly kind: 'valid' }
  | { readonly kind: 'diverging'; readonly epoch: number; readonly endOffset: bigint }
  | { readonly kind: 'snapshot'; readonly snapshotId: RaftSnapshotId }

/** Bytes a batch is counted for against a fetch's maxBytes: Kafka's 61-byte batch header and ~8 per record. */
export function batchSizeBytes(batch: RaftBatch): number {
  if (batch.type === 'leaderChange')
    return 61 + 8 + 16 + 4 * (batch.leaderChange.voters.length + batch.leaderChange.grantingVoters.length)
  let size = 61
  for (const record of batch.records) size += 8 + record.length
  return size
}

export class RaftLog {
  private batches: RaftBatch[]
  private start: bigint
  private latestSnapshot: RaftSnapshot | null

  constructor(snapshot: RaftSnapshot | null, batches: readonly RaftBatch[]) {
    this.latestSnapshot = snapshot
    this.start = snapshot?.endOffset ?? 0n
    this.batches = [...batches]
  }

  get logStartOffset(): bigint {
    return this.start
  }

  get endOffset(): bigint {
    const last = this.batches.at(-1)
    return last ? batchEndOffset(last) : this.start
  }

  get snapshot(): RaftSnapshot | null {
    return this.latestSnapshot
  }

  /** Epoch of the last entry, or of the snapshot when there are no entries, or -1 (Kafka's lastFetchedEpoch). */
  get lastFetchedEpoch(): number {
    return this.batches.at(-1)?.epoch ?? this.latestSnapshot?.epoch ?? -1
  }

  entries(): readonly RaftBatch[] {
    return this.batches
  }

  /** The batch that starts at `offset`, or undefined. */
  batchAt(offset: bigint): RaftBatch | undefined {
    const index = this.indexOf(offset)
    return index < 0 ? undefined : this.batches[index]
  }

  /** Epoch of the entry at `offset` (logStartOffset - 1 answers the snapshot's epoch). */
  epochAt(offset: bigint): number {
    if (offset === this.start - 1n && this.latestSnapshot) return this.latestSnapshot.epoch
    const index = this.indexContaining(offset)
    if (index < 0) throw new Error(`raft log has no entry at offset ${offset}`)
    return this.batches[index]!.epoch
  }

  /**
   * The largest epoch <= `epoch` in the log (the snapshot's counts) and the offset where the log leaves it;
   * { epoch: -1, endOffset: logStartOffset } when every entry is of a later epoch.
   */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: bigint } {
    let low = 0
    let high = this.batches.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.batches[mid]!.epoch <= epoch) low = mid + 1
      else high = mid
    }
    // `low` is the first batch of a later epoch.
    const endOffset = low < this.batches.length ? this.batches[low]!.baseOffset : this.endOffset
    if (low > 0) return { epoch: this.batches[low - 1]!.epoch, endOffset }
    if (this.latestSnapshot && this.latestSnapshot.epoch <= epoch)
      return { epoch: this.latestSnapshot.epoch, endOffset }
    return { epoch: -1, endOffset: this.start }
  }

  /** A leader's check of a fetcher's position, as Kafka's `validateOffsetAndEpoch`. */
  validateFetch(fetchOffset: bigint, lastFetchedEpoch: number): FetchPosition {
    const snapshot = this.latestSnapshot
    if (fetchOffset === 0n && this.start === 0n) return { kind: 'valid' }
    if (
      snapshot &&
      (fetchOffset < this.start ||
        (fetchOffset === this.start && lastFetchedEpoch !== snapshot.epoch) ||
        lastFetchedEpoch < snapshot.epoch)
    ) {
      return { kind: 'snapshot', snapshotId: { endOffset: snapshot.endOffset, epoch: snapshot.epoch } }
    }
    const end = this.endOffsetForEpoch(lastFetchedEpoch)
    if (end.epoch !== lastFetchedEpoch || fetchOffset > end.endOffset) return { kind: 'diverging', ...end }
    return { kind: 'valid' }
  }

  /** Whole batches from `offset` (a batch boundary), at least one if there is one, then up to `maxBytes`. */
  read(offset: bigint, maxBytes: number): RaftBatch[] {
    const index = this.indexOf(offset)
    if (index < 0) return []
    const out: RaftBatch[] = []
    let bytes = 0
    for (let i = index; i < this.batches.length; i++) {
      const batch = this.batches[i]!
      bytes += batchSizeBytes(batch)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(batch)
    }
    return out
  }

  /** Appends batches that continue the log; throws on a gap, an overlap or an epoch going back. */
  append(batches: readonly RaftBatch[]): void {
    let end = this.endOffset
    let epoch = this.lastFetchedEpoch
    for (const batch of batches) {
      if (batch.baseOffset !== end)
        throw new Error(`raft append at ${batch.baseOffset} does not continue the log at ${end}`)
      if (batch.epoch < epoch) throw new Error(`raft append of epoch ${batch.epoch} after epoch ${epoch}`)
      end = batchEndOffset(batch)
      epoch = batch.epoch
    }
    this.batches.push(...batches)
  }

  /** Removes every batch at or after `offset`, which must be a batch boundary at or after logStartOffset. */
  truncateTo(offset: bigint): void {
    if (offset < this.start) throw new Error(`raft truncation to ${offset} is below the log start ${this.start}`)
    if (offset >= this.endOffset) return
    const index = this.indexOf(offset)
    if (index < 0) throw new Error(`raft truncation to ${offset} is not at a batch boundary`)
    this.batches.length = index
  }

  /** Keeps `snapshot` as the latest and drops the batches below its end offset (a batch boundary of this log). */
  compactTo(snapshot: RaftSnapshot): void {
    const end = snapshot.endOffset
    if (end < this.start || end > this.endOffset)
      throw new Error(`raft snapshot at ${end} is outside the log [${this.start}, ${this.endOffset}]`)
    const index = end === this.endOffset ? this.batches.length : this.indexOf(end)
    if (index < 0) throw new Error(`raft snapshot at ${end} is not at a batch boundary`)
    this.batches = this.batches.slice(index)
    this.latestSnapshot = snapshot
    this.start = end
  }

  /** Replaces the whole log with a snapshot fetched from the leader. */
  installSnapshot(snapshot: RaftSnapshot): void {
    this.batches = []
    this.latestSnapshot = snapshot
    this.start = snapshot.endOffset
  }

  private indexOf(offset: bigint): number {
    const index = this.indexContaining(offset)
    return index >= 0 && this.batches[index]!.baseOffset === offset ? index : -1
  }

  private indexContaining(offset: bigint): number {
    let low = 0
    let high = this.batches.length - 1
    while (low <= high) {
      const mid = (low + high) >>> 1
      const batch = this.batches[mid]!
      if (offset < batch.baseOffset) high = mid - 1
      else if (offset >= batchEndOffset(batch)) low = mid + 1
      else return mid
    }
    return -1
  }
}
