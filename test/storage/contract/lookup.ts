/**
 * Contract scenarios for ListOffsets' paths, `offsetForTimestamp` and `offsetOfMaxTimestamp` (Kafka's
 * UnifiedLog.fetchOffsetByTimestamp and KIP-734), and for `batches`, the iterator the cleaner and the group
 * coordinator read a log with. Records are read with protocol/record-batch.ts `searchRecords`, as the broker's batch
 * inflater does for small batches. lookup-property.ts checks the same answers on random logs.
 */
import { describe, expect, it } from 'vitest'
import { searchRecords } from '../../../protocol/record-batch.js'
import type { RecordSearch, TimestampSearch } from '../../../storage/partition-log.js'
import { batchBytes, expectBatches, offsetsOf, producerBatch } from '../batches.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END } from './fixture.js'

export const searchInline: RecordSearch = async (batch, query) => searchRecords(batch, { ...query, maxInflatedBytes: 64 * 1024 * 1024 })

/** A search below `upTo` that reads records on the calling thread. */
export function below(upTo: bigint): TimestampSearch {
  return { upTo, search: searchInline }
}

/** A batch whose records carry `timestamps`, in that order (out of order if they are). */
export function encodeTimed(label: string, timestamps: number[]): Buffer {
  return producerBatch(label, timestamps.length, { timestamps: timestamps.map(BigInt) })
}

export function lookupScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('offsetForTimestamp', () => {
    it('finds the first record whose timestamp reaches the target, inside its batch', async () => {
      const { log } = await appendFixture(await open())
      // Record i of batch b is stamped (b + 1) * 1000 + i; batches hold offsets 0, 1-3, 4-5, 6-10, 11, 12-15.
      const cases: [bigint, bigint, bigint, number][] = [
        [0n, 0n, 1000n, 0],
        [1000n, 0n, 1000n, 0],
        [1001n, 1n, 2000n, 0],
        [2001n, 2n, 2001n, 0],
        [2003n, 4n, 3000n, 1],
        [4002n, 8n, 4002n, 1],
        [5000n, 11n, 5000n, 3],
        [6003n, 15n, 6003n, 3],
      ]
      for (const [timestamp, offset, found, leaderEpoch] of cases) {
        expect(await log.offsetForTimestamp(timestamp, below(FIXTURE_END)), `timestamp ${timestamp}`).toEqual({ offset, timestamp: found, leaderEpoch })
      }
      expect(await log.offsetForTimestamp(6004n, below(FIXTURE_END))).toBeNull()
    })

    it('answers nothing when the first match is at or above upTo', async () => {
      const { log } = await appendFixture(await open())

      expect(await log.offsetForTimestamp(5000n, below(12n))).toMatchObject({ offset: 11n })
      expect(await log.offsetForTimestamp(6000n, below(12n))).toBeNull()
      expect(await log.offsetForTimestamp(0n, below(0n))).toBeNull()
    })

    it('answers at or above the log start, also when it falls inside a batch', async () => {
      const { log } = await appendFixture(await open())

      await log.deleteBefore(8n)

      expect(await log.offsetForTimestamp(0n, below(FIXTURE_END))).toEqual({ offset: 8n, timestamp: 4002n, leaderEpoch: 1 })
      expect(await log.offsetForTimestamp(4001n, below(FIXTURE_END))).toMatchObject({ offset: 8n })
      expect(await log.offsetForTimestamp(4003n, below(FIXTURE_END))).toMatchObject({ offset: 9n })
    })

    it('finds out-of-order timestamps by record, not by batch', async () => {
      const log = await (await open()).log(0)
      await log.append(encodeTimed('a', [500, 900, 100]), { leaderEpoch: 0 })
      await log.append(encodeTimed('b', [300, 950, 200]), { leaderEpoch: 0 })
      log.setHighWatermark(log.durableEndOffset)

      expect(await log.offsetForTimestamp(150n, below(6n))).toMatchObject({ offset: 0n, timestamp: 500n })
      expect(await log.offsetForTimestamp(600n, below(6n))).toMatchObject({ offset: 1n, timestamp: 900n })
      expect(await log.offsetForTimestamp(920n, below(6n))).toMatchObject({ offset: 4n, timestamp: 950n })
      expect(await log.offsetForTimestamp(951n, below(6n))).toBeNull()
    })

    it('finds LogAppendTime batches by the time the broker stamped', async () => {
      const log = await (await open()).log(0)
      await log.append(producerBatch('a', 2, { firstTimestamp: 9_000n }), { leaderEpoch: 0, logAppendTime: 100n })
      await log.append(producerBatch('b', 2, { firstTimestamp: 1_000n }), { leaderEpoch: 0, logAppendTime: 200n })
      log.setHighWatermark(log.durableEndOffset)

      expect(await log.offsetForTimestamp(150n, below(4n))).toEqual({ offset: 2n, timestamp: 200n, leaderEpoch: 0 })
    })

    it('answers the same after a restart', async () => {
      const backend = await open()
      await appendFixture(backend)
      await backend.restart()
      const log = await backend.log(0)

      expect(await log.offsetForTimestamp(2003n, below(FIXTURE_END))).toEqual({ offset: 4n, timestamp: 3000n, leaderEpoch: 1 })
    })
  })

  describe('offsetOfMaxTimestamp', () => {
    it('is the first record with the largest timestamp (KIP-734)', async () => {
      const log = await (await open()).log(0)
      await log.append(encodeTimed('a', [500, 900, 100]), { leaderEpoch: 0 })
      await log.append(encodeTimed('b', [300, 950, 200, 950]), { leaderEpoch: 2 })
      await log.append(encodeTimed('c', [950, 10]), { leaderEpoch: 2 })
      log.setHighWatermark(log.durableEndOffset)

      expect(await log.offsetOfMaxTimestamp(below(9n))).toEqual({ offset: 4n, timestamp: 950n, leaderEpoch: 2 })
    })

    it('is nothing for an empty log, and nothing when that record is at or above upTo', async () => {
      const log = await (await open()).log(0)
      expect(await log.offsetOfMaxTimestamp(below(0n))).toBeNull()

      await log.append(encodeTimed('a', [5, 9, 7]), { leaderEpoch: 0 })
      log.setHighWatermark(log.durableEndOffset)
      expect(await log.offsetOfMaxTimestamp(below(3n))).toMatchObject({ offset: 1n, timestamp: 9n })
      expect(await log.offsetOfMaxTimestamp(below(1n))).toBeNull()
    })

    it('follows truncation, a new log start inside the batch that held it, and restarts', async () => {
      const backend = await open()
      const log = await backend.log(0)
      await log.append(encodeTimed('a', [10, 99, 20, 30]), { leaderEpoch: 0 })
      await log.append(encodeTimed('b', [40, 98]), { leaderEpoch: 0 })
      await log.append(encodeTimed('c', [50, 100]), { leaderEpoch: 1 })
      log.setHighWatermark(log.durableEndOffset)
      expect(await log.offsetOfMaxTimestamp(below(8n))).toMatchObject({ offset: 7n, timestamp: 100n })

      await log.truncateTo(6n)
      expect(await log.offsetOfMaxTimestamp(below(6n))).toMatchObject({ offset: 1n, timestamp: 99n })

      await log.deleteBefore(2n)
      expect(await log.offsetOfMaxTimestamp(below(6n))).toMatchObject({ offset: 5n, timestamp: 98n })

      await backend.restart()
      expect(await (await backend.log(0)).offsetOfMaxTimestamp(below(6n))).toMatchObject({ offset: 5n, timestamp: 98n })
    })
  })

  describe('batches', () => {
    it('yields every batch ending below upTo in offset order, starting with the one that holds `from`', async () => {
      const { log, stored } = await appendFixture(await open())

      expectBatches(await batchBytes(log, 0n, FIXTURE_END), stored)
      expectBatches(await batchBytes(log, 7n, FIXTURE_END), stored.slice(3))
      expectBatches(await batchBytes(log, 0n, 11n), stored.slice(0, 4))
      expectBatches(await batchBytes(log, FIXTURE_END, FIXTURE_END), [])
    })

    it('gives each batch its header facts', async () => {
      const { log, stored } = await appendFixture(await open())
      const facts = []
      for await (const { bytes: _bytes, ...batch } of log.batches(0n, FIXTURE_END)) facts.push(batch)

      expect(facts.map((f) => [f.baseOffset, f.lastOffset, f.recordCount, f.leaderEpoch, f.maxTimestamp, f.baseTimestamp])).toEqual([
        [0n, 0n, 1, 0, 1000n, 1000n],
        [1n, 3n, 3, 0, 2002n, 2000n],
        [4n, 5n, 2, 1, 3001n, 3000n],
        [6n, 10n, 5, 1, 4004n, 4000n],
        [11n, 11n, 1, 3, 5000n, 5000n],
        [12n, 15n, 4, 3, 6003n, 6000n],
      ])
      expect(facts.map((f) => f.sizeBytes)).toEqual(stored.map((b) => b.length))
      expect(facts.every((f) => !f.isControl && !f.isTransactional && f.producerId === -1n)).toBe(true)
    })

    it('yields long logs whole, from the store and the cache alike', async () => {
      for (const cacheMaxBytes of [0, 1024 * 1024]) {
        const log = await (await open({ cacheMaxBytes })).log(0)
        const pending = []
        for (let i = 0; i < 600; i++) pending.push(log.append(producerBatch(`r${i}`, 1), { leaderEpoch: 0 }))
        await Promise.all(pending)

        expect(offsetsOf(await batchBytes(log, 0n, 600n))).toEqual(Array.from({ length: 600 }, (_, i) => `${i}-${i}`))
      }
    })
  })
}
