/**
 * A replica's log of one partition in memory, with its leader epoch cache (Kafka's UnifiedLog and
 * LeaderEpochFileCache): batches of records, each stamped with the leader epoch that appended it, and the offset at
 * which each epoch starts.
 *
 *   offsets   0   1   2 | 3   4 | 5   6   7          logEndOffset = 8
 *   epochs    [   e1    ][  e2  ][     e4    ]        epoch cache: e1 -> 0, e2 -> 3, e4 -> 5 (and e5 -> 8 once this
 *                                                     replica leads epoch 5, before it appends anything)
 *
 * Invariants
 * - Batches are contiguous from offset 0 and their epochs never decrease; the epoch cache's epochs and start offsets
 *   both strictly increase, and an entry's start offset is at most the log end offset.
 * - Two replicas' logs that hold the same epoch at the same offset are identical up to that offset (each epoch has
 *   one leader, which assigns each offset once, and a replica truncates before it appends from another epoch's
 *   leader): the fetch and truncation rules rest on this.
 * - Truncation cuts at a batch boundary and removes the cache entries that start at or after the cut (even when it
 *   cuts no batch: an epoch led without appending is dropped, so the next fetch names an epoch the leader knows).
 * - `endOffsetForEpoch` answers as OffsetForLeaderEpoch v0-4 does (LeaderEpochFileCache.endOffsetFor).
 *
 * Brook keeps no log start offset here: retention and DeleteRecords are the storage layer's, and a replica that
 * must fetch below a leader's log start is not modelled.
 */

/** Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET (OffsetForLeaderEpoch's "nothing known"). */
export const UNDEFINED_EPOCH = -1
export const UNDEFINED_EPOCH_OFFSET = -1n

/** A record batch as replication sees it: the records are opaque, one offset each. */
export interface ReplicaBatch {
  readonly baseOffset: bigint
  /** The partitionLeaderEpoch stamped by the leader that appended it. */
  readonly leaderEpoch: number
  readonly records: readonly Buffer[]
}

export interface EpochEntry {
  readonly epoch: number
  readonly startOffset: bigint
}

/** OffsetForLeaderEpoch's answer (and KIP-320's divergingEpoch): an epoch and the offset where the log leaves it. */
export interface EpochEndOffset {
  readonly epoch: number
  readonly endOffset: bigint
}

/**
 * What a replica persists, in order, before it sends anything that follows from it. A store applies them with
 * `applyReplicaWrites`.
 */
export type ReplicaWrite =
  /** Appends at the log end; a batch of an epoch newer than the cache's latest also records where it starts. */
  | { readonly type: 'append'; readonly batch: ReplicaBatch }
  /** A new leader's epoch, cached at its log end before it appends anything (maybeAssignEpochStartOffset). */
  | { readonly type: 'assignEpoch'; readonly entry: EpochEntry }
  /** Drops every batch and epoch entry at or after `endOffset`. */
  | { readonly type: 'truncate'; readonly endOffset: bigint }
  /** Kafka's replication-offset-checkpoint: a restart starts from it (never above the log end). */
  | { readonly type: 'highWatermark'; readonly offset: bigint }

/** What a replica restarts from. */
export interface PersistedReplica {
  readonly batches: readonly ReplicaBatch[]
  readonly epochs: readonly EpochEntry[]
  readonly highWatermark: bigint
}

export const EMPTY_REPLICA: PersistedReplica = { batches: [], epochs: [], highWatermark: 0n }

/** The persisted state after `writes`, as a store must keep it. */
export function applyReplicaWrites(state: PersistedReplica, writes: readonly ReplicaWrite[]): PersistedReplica {
  const log = new ReplicaLog(state.batches, state.epochs)
  let highWatermark = state.highWatermark
  for (const write of writes) {
    switch (write.type) {
      case 'append':
        log.append(write.batch)
        break
      case 'assignEpoch':
        log.assignEpoch(write.entry.epoch, write.entry.startOffset)
        break
      case 'truncate':
        log.truncateTo(write.endOffset)
        break
      case 'highWatermark':
        highWatermark = write.offset
        break
    }
  }
  return { batches: [...log.batches()], epochs: [...log.epochs()], highWatermark }
}

/**
 * The largest epoch <= `requestedEpoch` of a log whose epoch cache is `epochs` and whose end is `logEndOffset`, and
 * the offset where the log leaves it (Kafka's LeaderEpochFileCache.endOffsetFor, OffsetForLeaderEpoch v0-4): the log
 * end offset for the latest epoch; the start of the next known epoch otherwise; the requested epoch with the first
 * known start when it is older than every known epoch; UNDEFINED for UNDEFINED_EPOCH or an epoch newer than every
 * known one. A node's logs (storage's epoch cache) and the in-memory ReplicaLog both answer with it.
 */
export function endOffsetForEpoch(epochs: readonly EpochEntry[], logEndOffset: bigint, requestedEpoch: number): EpochEndOffset {
  const undefinedAnswer = { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET }
  if (requestedEpoch === UNDEFINED_EPOCH) return undefinedAnswer
  if ((epochs.at(-1)?.epoch ?? UNDEFINED_EPOCH) === requestedEpoch) return { epoch: requestedEpoch, endOffset: logEndOffset }
  const higher = epochs.findIndex((entry) => entry.epoch > requestedEpoch)
  if (higher < 0) return undefinedAnswer
  const higherStart = epochs[higher]!.startOffset
  if (higher === 0) return { epoch: requestedEpoch, endOffset: higherStart }
  return { epoch: epochs[higher - 1]!.epoch, endOffset: higherStart }
}

/**
 * Where a follower truncates given its leader's end offset for an epoch (Kafka's
 * AbstractFetcherThread.getOffsetTruncationState): `ownEnd` answers the follower's own epoch cache for an epoch,
 * `logEndOffset` and `highWatermark` are the follower's. `complete` is false when the leader named an epoch the
 * follower does not have: it cut to the end of its own largest earlier epoch and must ask again.
 */
export function truncationTarget(
  leaderEnd: EpochEndOffset,
  follower: { readonly logEndOffset: bigint; readonly highWatermark: bigint; readonly ownEnd: (epoch: number) => EpochEndOffset },
): { readonly offset: bigint; readonly complete: boolean } {
  const end = follower.logEndOffset
  const min = (a: bigint, b: bigint): bigint => (a < b ? a : b)
  // The leader knows no epoch at or below ours: Kafka falls back to the high watermark.
  if (leaderEnd.endOffset === UNDEFINED_EPOCH_OFFSET) return { offset: follower.highWatermark, complete: true }
  const own = follower.ownEnd(leaderEnd.epoch)
  if (own.endOffset === UNDEFINED_EPOCH_OFFSET) return { offset: min(leaderEnd.endOffset, end), complete: true }
  if (own.epoch !== leaderEnd.epoch) return { offset: min(own.endOffset, end), complete: false }
  return { offset: min(min(own.endOffset, leaderEnd.endOffset), end), complete: true }
}

export function batchEndOffset(batch: ReplicaBatch): bigint {
  return batch.baseOffset + BigInt(batch.records.length)
}

export class ReplicaLog {
  private readonly entries: ReplicaBatch[]
  private readonly epochEntries: EpochEntry[]

  constructor(batches: readonly ReplicaBatch[], epochs: readonly EpochEntry[]) {
    this.entries = [...batches]
    this.epochEntries = [...epochs]
  }

  get logEndOffset(): bigint {
    const last = this.entries.at(-1)
    return last ? batchEndOffset(last) : 0n
  }

  /**
   * The latest epoch of the cache, or UNDEFINED_EPOCH: what a follower sends as lastFetchedEpoch and asks
   * OffsetForLeaderEpoch about (Kafka's log.latestEpoch). It may be an epoch this replica led without appending.
   */
  get latestEpoch(): number {
    return this.epochEntries.at(-1)?.epoch ?? UNDEFINED_EPOCH
  }

  batches(): readonly ReplicaBatch[] {
    return this.entries
  }

  epochs(): readonly EpochEntry[] {
    return this.epochEntries
  }

  /** Appends a batch at the log end; records its epoch's start when the epoch is new. */
  append(batch: ReplicaBatch): void {
    if (batch.baseOffset !== this.logEndOffset)
      throw new Error(`batch at ${batch.baseOffset} does not start at the log end ${this.logEndOffset}`)
    if (batch.records.length === 0) throw new Error('an empty batch')
    const lastEpoch = this.entries.at(-1)?.leaderEpoch ?? UNDEFINED_EPOCH
    if (batch.leaderEpoch < lastEpoch) throw new Error(`batch of epoch ${batch.leaderEpoch} after epoch ${lastEpoch}`)
    this.entries.push(batch)
    this.assignEpoch(batch.leaderEpoch, batch.baseOffset)
  }

  /**
   * Records that `epoch` starts at `startOffset` if it is newer than the latest cached epoch (Kafka's
   * maybeAssignEpochStartOffset; an older or equal epoch changes nothing). Returns the new entry, or null.
   */
  assignEpoch(epoch: number, startOffset: bigint): EpochEntry | null {
    const latest = this.epochEntries.at(-1)
    if (latest && latest.epoch >= epoch) return null
    if (latest && latest.startOffset > startOffset)
      throw new Error(`epoch ${epoch} at ${startOffset} starts before epoch ${latest.epoch} at ${latest.startOffset}`)
    const entry = { epoch, startOffset }
    this.epochEntries.push(entry)
    return entry
  }

  /**
   * Removes every batch and epoch entry at or after `endOffset` (a batch boundary; at or past the log end it removes
   * only epoch entries that start at the log end: an epoch this replica led without appending, which its new
   * leader may not know, as UnifiedLog.truncateTo does). Returns whether anything was removed.
   */
  truncateTo(endOffset: bigint): boolean {
    const end = endOffset < this.logEndOffset ? endOffset : this.logEndOffset
    let removed = false
    if (end < this.logEndOffset) {
      const keep = this.entries.findIndex((batch) => batchEndOffset(batch) > end)
      const cut = this.entries[keep]!
      if (cut.baseOffset !== end) throw new Error(`truncation at ${end} inside the batch at ${cut.baseOffset}`)
      this.entries.length = keep
      removed = true
    }
    while ((this.epochEntries.at(-1)?.startOffset ?? -1n) >= end) {
      this.epochEntries.pop()
      removed = true
    }
    return removed
  }

  /**
   * The largest epoch <= `requestedEpoch` and the offset where the log leaves it (Kafka's
   * LeaderEpochFileCache.endOffsetFor): the log end offset for the latest epoch; the start of the next known
   * epoch otherwise; the requested epoch with the first known start when it is older than every known epoch;
   * UNDEFINED for UNDEFINED_EPOCH or an epoch newer than every known one.
   */
  endOffsetForEpoch(requestedEpoch: number): EpochEndOffset {
    return endOffsetForEpoch(this.epochEntries, this.logEndOffset, requestedEpoch)
  }

  /**
   * Batches from the one holding `fetchOffset`, with at most `maxRecords` records but at least one batch (a
   * follower's fetch offset, its log end, is always a batch boundary; a consumer's may fall inside a batch, which it
   * gets whole, as from Kafka).
   */
  read(fetchOffset: bigint, maxRecords: number): ReplicaBatch[] {
    const start = this.entries.findIndex((batch) => batchEndOffset(batch) > fetchOffset)
    if (start < 0) return []
    const out: ReplicaBatch[] = []
    let records = 0
    for (let i = start; i < this.entries.length; i++) {
      const batch = this.entries[i]!
      if (out.length > 0 && records + batch.records.length > maxRecords) break
      out.push(batch)
      records += batch.records.length
    }
    return out
  }

  /** Batches holding records below `endOffset` from `fetchOffset` (consumer reads up to the high watermark). */
  readBelow(fetchOffset: bigint, endOffset: bigint, maxRecords: number): ReplicaBatch[] {
    return this.read(fetchOffset, maxRecords).filter((batch) => batch.baseOffset < endOffset)
  }
}
