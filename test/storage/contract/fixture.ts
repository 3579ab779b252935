/**
 * The log most contract scenarios start from: six batches of different record counts, sizes and leader epochs.
 *
 *   batch   0    1      2      3       4     5
 *   offsets 0    1-3    4-5    6-10    11    12-15      logEndOffset 16
 *   epoch   0    0      1      1       3     3          epoch cache [0 @ 0, 1 @ 4, 3 @ 11]
 *   time    1000 2000+  3000+  4000+   5000  6000+      (record i of batch b at (b + 1) * 1000 + i)
 */
import { expectedStored, producerBatch } from '../batches.js'
import type { PartitionLog } from '../../../storage/partition-log.js'
import type { LogBackend } from './backend.js'

export const FIXTURE = [
  { records: 1, leaderEpoch: 0 },
  { records: 3, leaderEpoch: 0 },
  { records: 2, leaderEpoch: 1 },
  { records: 5, leaderEpoch: 1 },
  { records: 1, leaderEpoch: 3 },
  { records: 4, leaderEpoch: 3 },
] as const

export const FIXTURE_END = 16n
export const FIXTURE_EPOCHS = [
  { epoch: 0, startOffset: 0n },
  { epoch: 1, startOffset: 4n },
  { epoch: 3, startOffset: 11n },
]

export interface Fixture {
  log: PartitionLog
  /** The bytes each batch should be stored as, in offset order. */
  stored: Buffer[]
  /** Index of the batch that holds `offset`. */
  batchAt(offset: bigint): number
}

/** Appends the fixture batches to `partition` of `backend` (one at a time) and exposes everything up to the end. */
export async function appendFixture(backend: LogBackend, partition = 0): Promise<Fixture> {
  const log = await backend.log(partition)
  const stored: Buffer[] = []
  const bases: bigint[] = []
  for (const [b, spec] of FIXTURE.entries()) {
    const input = producerBatch(`p${partition}-b${b}`, spec.records, {
      firstTimestamp: BigInt((b + 1) * 1000),
      valueBytes: 40 + 30 * b,
    })
    const baseOffset = log.logEndOffset
    stored.push(expectedStored(input, { baseOffset, leaderEpoch: spec.leaderEpoch }))
    bases.push(baseOffset)
    await log.append(input, { leaderEpoch: spec.leaderEpoch })
  }
  log.setHighWatermark(log.durableEndOffset)
  const batchAt = (offset: bigint): number => bases.filter((base) => base <= offset).length - 1
  return { log, stored, batchAt }
}
