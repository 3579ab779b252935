/**
 * The replica log and its leader epoch cache: OffsetForLeaderEpoch's answers (LeaderEpochFileCache.endOffsetFor),
 * truncation, and the persisted form a store keeps.
 */
import { describe, expect, test } from 'vitest'
import {
  applyReplicaWrites,
  EMPTY_REPLICA,
  ReplicaLog,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
  type ReplicaBatch,
} from '../../../broker/cluster/replication/log.js'

function batch(baseOffset: number, leaderEpoch: number, count: number): ReplicaBatch {
  return {
    baseOffset: BigInt(baseOffset),
    leaderEpoch,
    records: Array.from({ length: count }, (_, i) => Buffer.from(`e${leaderEpoch}-${baseOffset + i}`)),
  }
}

/** Epochs 2 (offsets 0-2), 3 (3-4), 5 (5-7). */
function sampleLog(): ReplicaLog {
  const log = new ReplicaLog([], [])
  log.append(batch(0, 2, 3))
  log.append(batch(3, 3, 2))
  log.append(batch(5, 5, 3))
  return log
}

describe('leader epoch cache', () => {
  test('appending a batch of a new epoch records where it starts', () => {
    const log = sampleLog()
    expect(log.epochs()).toEqual([
      { epoch: 2, startOffset: 0n },
      { epoch: 3, startOffset: 3n },
      { epoch: 5, startOffset: 5n },
    ])
    expect(log.latestEpoch).toBe(5)
    expect(log.logEndOffset).toBe(8n)
  })

  test('endOffsetForEpoch answers as OffsetForLeaderEpoch v0-4', () => {
    const log = sampleLog()
    // The latest epoch ends at the log end.
    expect(log.endOffsetForEpoch(5)).toEqual({ epoch: 5, endOffset: 8n })
    // A known earlier epoch ends where the next starts.
    expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 3n })
    expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 3, endOffset: 5n })
    // An unknown epoch between known ones: the largest epoch below it, and where the next starts.
    expect(log.endOffsetForEpoch(4)).toEqual({ epoch: 3, endOffset: 5n })
    // Older than every known epoch: the epoch asked for, ending where the first known one starts.
    expect(log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 0n })
    // Newer than every known epoch, or undefined: UNDEFINED.
    expect(log.endOffsetForEpoch(6)).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET })
    expect(log.endOffsetForEpoch(UNDEFINED_EPOCH)).toEqual({ epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET })
    expect(new ReplicaLog([], []).endOffsetForEpoch(0)).toEqual({
      epoch: UNDEFINED_EPOCH,
      endOffset: UNDEFINED_EPOCH_OFFSET,
    })
  })

  test('a leader caches its epoch before it appends anything in it', () => {
    const log = sampleLog()
    expect(log.assignEpoch(7, 8n)).toEqual({ epoch: 7, startOffset: 8n })
    expect(log.assignEpoch(6, 8n)).toBeNull()
    expect(log.endOffsetForEpoch(5)).toEqual({ epoch: 5, endOffset: 8n })
    expect(log.endOffsetForEpoch(7)).toEqual({ epoch: 7, endOffset: 8n })
  })

  test('truncation removes the batches and the epochs from the cut, and an epoch led without appending', () => {
    const log = sampleLog()
    log.assignEpoch(7, 8n)
    expect(log.truncateTo(8n)).toBe(true)
    expect(log.latestEpoch).toBe(5)
    expect(log.truncateTo(8n)).toBe(false)
    expect(log.truncateTo(3n)).toBe(true)
    expect(log.logEndOffset).toBe(3n)
    expect(log.epochs()).toEqual([{ epoch: 2, startOffset: 0n }])
    expect(() => log.truncateTo(1n)).toThrow(/inside the batch/)
  })

  test('an append must continue the log, in a non-decreasing epoch', () => {
    const log = sampleLog()
    expect(() => log.append(batch(9, 5, 1))).toThrow(/log end/)
    expect(() => log.append(batch(8, 4, 1))).toThrow(/epoch/)
  })

  test('a store applying the writes holds what the replica holds', () => {
    const persisted = applyReplicaWrites(EMPTY_REPLICA, [
      { type: 'assignEpoch', entry: { epoch: 1, startOffset: 0n } },
      { type: 'append', batch: batch(0, 1, 2) },
      { type: 'append', batch: batch(2, 2, 2) },
      { type: 'assignEpoch', entry: { epoch: 2, startOffset: 2n } },
      { type: 'highWatermark', offset: 2n },
      { type: 'truncate', endOffset: 2n },
      { type: 'append', batch: batch(2, 3, 1) },
    ])
    expect(persisted.batches.map((b) => [b.baseOffset, b.leaderEpoch])).toEqual([
      [0n, 1],
      [2n, 3],
    ])
    expect(persisted.epochs).toEqual([
      { epoch: 1, startOffset: 0n },
      { epoch: 3, startOffset: 2n },
    ])
    expect(persisted.highWatermark).toBe(2n)
  })
})
