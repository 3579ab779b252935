/**
 * A log's leader-epoch cache (Kafka's LeaderEpochFileCache, kept in the log's state record): each leader epoch that
 * appended to the log, with the first offset it appended.
 *
 *   [ 0 @ 0 | 1 @ 4 | 3 @ 11 ]     epochs strictly increase, and so do their start offsets
 *
 * An epoch is added when a batch of a newer epoch is appended, and epochs that start at or after a new log end are
 * dropped when the log is truncated. Replication's OffsetForLeaderEpoch lookup (the end offset of an epoch: the start
 * of the next one, or the log end) belongs here.
 */
export interface EpochEntry {
  readonly epoch: number
  readonly startOffset: bigint
}

/** `epochs` with `epoch` starting at `startOffset` added, when it is newer than the latest; the same array otherwise. */
export function assignEpoch(epochs: readonly EpochEntry[], epoch: number, startOffset: bigint): readonly EpochEntry[] {
  const latest = epochs.at(-1)?.epoch ?? -1
  return epoch >= 0 && epoch > latest ? [...epochs, { epoch, startOffset }] : epochs
}

/** The epochs that started below `endOffset`: what a log cut at `endOffset` keeps. */
export function epochsBelow(epochs: readonly EpochEntry[], endOffset: bigint): readonly EpochEntry[] {
  return epochs.every((e) => e.startOffset < endOffset) ? epochs : epochs.filter((e) => e.startOffset < endOffset)
}

/**
 * The epoch that appended `offset` (Kafka's LeaderEpochFileCache.epochForOffset): the latest one starting at or below
 * it, or -1 when none does (an offset below every epoch, a log without epochs).
 */
export function epochOfOffset(epochs: readonly EpochEntry[], offset: bigint): number {
  let epoch = -1
  for (const entry of epochs) {
    if (entry.startOffset > offset) break
    epoch = entry.epoch
  }
  return epoch
}
