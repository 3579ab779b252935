/** Contract scenarios for ListOffsets' paths: `findBatchByTimestamp` and `scan`. */
import { describe, expect, it } from 'vitest'
import { expectBatches, offsetsOf, producerBatch } from '../batches.js'
import type { BackendOptions, ContractLog, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END } from './fixture.js'

async function scanned(log: ContractLog, from: bigint, upTo: bigint): Promise<Buffer[]> {
  const batches: Buffer[] = []
  for await (const batch of log.scan(from, upTo)) batches.push(batch)
  return batches
}

export function lookupScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('findBatchByTimestamp', () => {
    it('finds the first batch whose max timestamp reaches the target', async () => {
      const { log, stored } = await appendFixture(await open())
      // Batch b holds timestamps (b + 1) * 1000 + i, so batch 1's max is 2002 and batch 5's is 6003.
      const cases: [bigint, number][] = [
        [0n, 0],
        [1000n, 0],
        [1001n, 1],
        [2002n, 1],
        [2003n, 2],
        [5000n, 4],
        [6003n, 5],
      ]
      for (const [timestamp, batch] of cases) {
        expect(await log.findBatchByTimestamp(timestamp, FIXTURE_END), `timestamp ${timestamp}`).toEqual(stored[batch])
      }
      expect(await log.findBatchByTimestamp(6004n, FIXTURE_END)).toBeNull()
    })

    it('looks only below upTo and at or above the log start', async () => {
      const { log, stored } = await appendFixture(await open())

      expect(await log.findBatchByTimestamp(5000n, 12n)).toEqual(stored[4])
      expect(await log.findBatchByTimestamp(6000n, 12n)).toBeNull()

      await log.deleteBefore(6n)
      expect(await log.findBatchByTimestamp(0n, FIXTURE_END)).toEqual(stored[3])
    })

    it('finds LogAppendTime batches by the time the broker stamped', async () => {
      const log = await (await open()).log(0)
      await log.append(producerBatch('a', 2, { firstTimestamp: 9_000n }), { leaderEpoch: 0, logAppendTime: 100n })
      await log.append(producerBatch('b', 2, { firstTimestamp: 1_000n }), { leaderEpoch: 0, logAppendTime: 200n })

      expect(offsetsOf([(await log.findBatchByTimestamp(150n, log.durableEndOffset))!])).toEqual(['2-3'])
    })
  })

  describe('scan', () => {
    it('yields every batch in [from, upTo) in offset order, starting with the one that holds `from`', async () => {
      const { log, stored } = await appendFixture(await open())

      expectBatches(await scanned(log, 0n, FIXTURE_END), stored)
      expectBatches(await scanned(log, 7n, FIXTURE_END), stored.slice(3))
      expectBatches(await scanned(log, 0n, 11n), stored.slice(0, 4))
      expectBatches(await scanned(log, FIXTURE_END, FIXTURE_END), [])
    })

    it('yields long logs whole', async () => {
      const log = await (await open()).log(0)
      const pending = []
      for (let i = 0; i < 600; i++) pending.push(log.append(producerBatch(`r${i}`, 1), { leaderEpoch: 0 }))
      await Promise.all(pending)

      expect(offsetsOf(await scanned(log, 0n, 600n))).toEqual(Array.from({ length: 600 }, (_, i) => `${i}-${i}`))
    })
  })
}
