/**
 * Reads as a property, with a cache budget of a few batches for several partitions, so batches keep leaving the cache
 * while they are read: random reads (fetch offset, maxBytes, upTo, minOneMessage) must return exactly what a reference
 * computes from the bytes each batch was stored as, whichever part comes from the cache and whichever from the store,
 * across appends, new log starts, truncation and restarts. Seeded like lookup-property.ts (`SEED=<n>`).
 */
import { describe, it } from 'vitest'
import type { PartitionLog } from '../../../storage/partition-log.js'
import { expectBatches, expectedStored, producerBatch, readLog } from '../batches.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { integers, seeded, seeds } from './random.js'

interface StoredRef {
  baseOffset: bigint
  lastOffset: bigint
  bytes: Buffer
}

/** What a read must return, from the reference's batches. */
function expectedRead(batches: StoredRef[], fetchOffset: bigint, maxBytes: number, upTo: bigint, minOneMessage: boolean): Buffer[] {
  const out: Buffer[] = []
  let bytes = 0
  for (const batch of batches) {
    if (batch.lastOffset < fetchOffset) continue
    if (batch.lastOffset >= upTo) break
    if (!((out.length === 0 && minOneMessage) || bytes + batch.bytes.length <= maxBytes)) break
    out.push(batch.bytes)
    bytes += batch.bytes.length
  }
  return out
}

const PARTITIONS = 3

export function readPropertyScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('reads with a cache of a few batches, against a reference', () => {
    it.each(seeds([5, 17, 29]))('seed %i', async (seed) => {
      const next = seeded(seed)
      const int = integers(next)
      // About three average batches for all partitions together.
      const backend = await open({ cacheMaxBytes: 3 * 1500 })
      const logs: PartitionLog[] = []
      for (let p = 0; p < PARTITIONS; p++) logs.push(await backend.log(p))
      const reference: StoredRef[][] = Array.from({ length: PARTITIONS }, () => [])
      const starts = new Array<bigint>(PARTITIONS).fill(0n)
      let label = 0

      for (let step = 0; step < 300; step++) {
        const p = int(0, PARTITIONS - 1)
        const log = logs[p]!
        const roll = next()
        if (roll < 0.4) {
          // A few appends at once, to this and other partitions, as produce requests arrive together.
          const pending = []
          for (let i = int(1, 4); i > 0; i--) {
            const q = int(0, PARTITIONS - 1)
            const input = producerBatch(`p${q}-${label++}`, int(1, 6), { valueBytes: int(50, 300) })
            const baseOffset = logs[q]!.logEndOffset
            reference[q]!.push({ baseOffset, lastOffset: baseOffset + BigInt(input.readInt32BE(23)), bytes: expectedStored(input, { baseOffset, leaderEpoch: 0 }) })
            pending.push(logs[q]!.append(input, { leaderEpoch: 0 }))
          }
          await Promise.all(pending)
        } else if (roll < 0.45 && reference[p]!.length > 2) {
          const batch = reference[p]![int(0, 1)]!
          const offset = batch.baseOffset + BigInt(int(0, Number(batch.lastOffset - batch.baseOffset) + 1))
          await log.deleteBefore(offset)
          starts[p] = log.logStartOffset
          reference[p] = reference[p]!.filter((b) => b.lastOffset >= log.logStartOffset)
        } else if (roll < 0.48 && reference[p]!.length > 2) {
          const batch = reference[p]!.at(-int(1, 2))!
          await log.truncateTo(batch.baseOffset)
          reference[p] = reference[p]!.filter((b) => b.lastOffset < batch.baseOffset)
          starts[p] = log.logStartOffset
        } else if (roll < 0.5) {
          await backend.restart()
          for (let q = 0; q < PARTITIONS; q++) logs[q] = await backend.log(q)
        }
        for (const each of logs) each.setHighWatermark(each.durableEndOffset)
        const current = logs[p]!
        const end = current.highWatermark
        if (end <= starts[p]!) continue
        for (let i = 0; i < 3; i++) {
          const fetchOffset = starts[p]! + BigInt(int(0, Number(end - starts[p]!)))
          const upTo = next() < 0.7 ? end : fetchOffset + BigInt(int(0, Number(end - fetchOffset)))
          const maxBytes = int(0, 4000)
          const minOneMessage = next() < 0.7
          expectBatches(
            await readLog(current, fetchOffset, maxBytes, upTo, minOneMessage),
            expectedRead(reference[p]!, fetchOffset, maxBytes, upTo, minOneMessage),
            `seed ${seed}, step ${step}: partition ${p} from ${fetchOffset}, ${maxBytes} bytes, below ${upTo}, minOne ${minOneMessage}`,
          )
        }
      }
    })
  })
}
