/** Contract scenarios: appending as leader, the group commit, the leader-epoch cache and the high watermark. */
import { describe, expect, it } from 'vitest'
import {
  crcHolds,
  expectBatches,
  expectedStored,
  leaderEpochOf,
  maxTimestampOf,
  offsetsOf,
  producerBatch,
  readLog,
  valuesOf,
} from '../batches.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END, FIXTURE_EPOCHS } from './fixture.js'

const NO_LIMIT = 1 << 30

export function appendScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('append', () => {
    it('assigns contiguous offsets from the log end and stamps baseOffset and partitionLeaderEpoch', async () => {
      const log = await (await open()).log(0)
      // A producer sends baseOffset 0 and epoch -1; give this one other values so that stamping has to overwrite them.
      const inputs = [3, 1, 5].map((records, i) => {
        const batch = producerBatch(`b${i}`, records)
        batch.writeBigInt64BE(77n, 0)
        return batch
      })
      const expected = [
        expectedStored(inputs[0]!, { baseOffset: 0n, leaderEpoch: 4 }),
        expectedStored(inputs[1]!, { baseOffset: 3n, leaderEpoch: 4 }),
        expectedStored(inputs[2]!, { baseOffset: 4n, leaderEpoch: 4 }),
      ]

      const results = []
      for (const input of inputs) results.push(await log.append(input, { leaderEpoch: 4 }))

      expect(results).toEqual([
        { baseOffset: 0n, lastOffset: 2n },
        { baseOffset: 3n, lastOffset: 3n },
        { baseOffset: 4n, lastOffset: 8n },
      ])
      expect(log.logEndOffset).toBe(9n)
      expect(log.durableEndOffset).toBe(9n)
      const stored = await readLog(log, 0n, NO_LIMIT, 9n)
      expectBatches(stored, expected)
      expect(stored.every(crcHolds)).toBe(true)
    })

    it('assigns offsets in call order before the write completes', async () => {
      const log = await (await open()).log(0)
      const pending = [
        log.append(producerBatch('a', 2), { leaderEpoch: 0 }),
        log.append(producerBatch('b', 3), { leaderEpoch: 0 }),
      ]

      // Nothing can have been written yet: the group commit writes on a later turn of the event loop.
      expect(log.logEndOffset).toBe(5n)
      expect(log.durableEndOffset).toBe(0n)
      expect(await Promise.all(pending)).toEqual([
        { baseOffset: 0n, lastOffset: 1n },
        { baseOffset: 2n, lastOffset: 4n },
      ])
      expect(log.durableEndOffset).toBe(5n)
    })

    it('puts concurrent appends across partitions into one group-commit write, in order per partition', async () => {
      const backend = await open()
      const logs = await Promise.all([0, 1, 2, 3].map((p) => backend.log(p)))
      const writesBefore = backend.writes()

      // Interleaved, as produce requests for different partitions arrive together.
      const pending = []
      for (let i = 0; i < 5; i++) {
        for (const [p, log] of logs.entries()) {
          pending.push(log.append(producerBatch(`p${p}-${i}`, 2), { leaderEpoch: 0 }))
        }
      }
      await Promise.all(pending)

      expect(backend.writes() - writesBefore).toBe(1)
      for (const [p, log] of logs.entries()) {
        const stored = await readLog(log, 0n, NO_LIMIT, log.durableEndOffset)
        expect(offsetsOf(stored)).toEqual(['0-1', '2-3', '4-5', '6-7', '8-9'])
        expect(valuesOf(stored)).toEqual([0, 1, 2, 3, 4].flatMap((i) => [`p${p}-${i}/0`, `p${p}-${i}/1`]))
      }
    })

    it('keeps per-partition order across many writes', async () => {
      const backend = await open()
      const logs = await Promise.all([0, 1, 2].map((p) => backend.log(p)))
      const pending = []
      for (let burst = 0; burst < 20; burst++) {
        for (let i = 0; i < 3; i++) {
          const p = (burst + i) % logs.length
          pending.push(logs[p]!.append(producerBatch(`p${p}-${burst}-${i}`, 1), { leaderEpoch: 0 }))
        }
        // Let some bursts reach the store while others are still arriving.
        await new Promise((resolve) => setImmediate(resolve))
      }
      await Promise.all(pending)

      expect(backend.writes()).toBeGreaterThan(1)
      for (const [p, log] of logs.entries()) {
        const expected = []
        for (let burst = 0; burst < 20; burst++) {
          for (let i = 0; i < 3; i++) if ((burst + i) % logs.length === p) expected.push(`p${p}-${burst}-${i}/0`)
        }
        const stored = await readLog(log, 0n, NO_LIMIT, log.durableEndOffset)
        expect(valuesOf(stored)).toEqual(expected)
        expect(offsetsOf(stored)).toEqual(expected.map((_, i) => `${i}-${i}`))
      }
    })

    it('stamps LogAppendTime into maxTimestamp and the attributes, with a CRC that still holds', async () => {
      const log = await (await open()).log(0)
      const input = producerBatch('lat', 3, { firstTimestamp: 1_000n })
      const expected = expectedStored(input, { baseOffset: 0n, leaderEpoch: 2, logAppendTime: 1_234_567n })

      await log.append(input, { leaderEpoch: 2, logAppendTime: 1_234_567n })

      const [stored] = await readLog(log, 0n, NO_LIMIT, log.durableEndOffset)
      expectBatches([stored!], [expected])
      expect(maxTimestampOf(stored!)).toBe(1_234_567n)
      expect(crcHolds(stored!)).toBe(true)
    })

    it('keeps the producer timestamps and CRC of a CreateTime batch', async () => {
      const log = await (await open()).log(0)
      const input = producerBatch('ct', 3, { firstTimestamp: 1_000n })
      const crc = input.readUInt32BE(17)

      await log.append(input, { leaderEpoch: 0 })

      const [stored] = await readLog(log, 0n, NO_LIMIT, log.durableEndOffset)
      expect(maxTimestampOf(stored!)).toBe(1_002n)
      expect(stored!.readUInt32BE(17)).toBe(crc)
      expect(crcHolds(stored!)).toBe(true)
    })
  })

  describe('leader-epoch cache', () => {
    it('records the start offset of each new epoch, and stamps each batch with its epoch', async () => {
      const { log, stored } = await appendFixture(await open())

      expect(log.epochCache).toEqual(FIXTURE_EPOCHS)
      expect(log.latestEpoch).toBe(3)
      expect((await readLog(log, 0n, NO_LIMIT, FIXTURE_END)).map(leaderEpochOf)).toEqual(stored.map(leaderEpochOf))
      expect(stored.map(leaderEpochOf)).toEqual([0, 0, 1, 1, 3, 3])
    })

    it('is empty, with latest epoch -1, for a new log', async () => {
      const log = await (await open()).log(0)
      expect(log.epochCache).toEqual([])
      expect(log.latestEpoch).toBe(-1)
    })
  })

  describe('append at a given offset (a follower copying a compacted leader)', () => {
    it('stores a batch past the log end with the gap kept, reads across it, and keeps it through a restart', async () => {
      const backend = await open()
      const { log, stored } = await appendFixture(backend)
      // The leader's compaction emptied offsets 16-39: its next batch starts at 40.
      const input = producerBatch('after-gap', 3)
      const result = await log.append(input, { leaderEpoch: 3, baseOffset: 40n })
      const gapped = expectedStored(input, { baseOffset: 40n, leaderEpoch: 3 })

      expect(result).toEqual({ baseOffset: 40n, lastOffset: 42n })
      expect(log.logEndOffset).toBe(43n)
      expectBatches(await readLog(log, 16n, NO_LIMIT, 43n), [gapped])

      // Opened again right after the write that holds the gap (the one recovery checks batch by batch).
      await backend.restart()
      const afterGap = await backend.log(0)
      expect(afterGap.logEndOffset).toBe(43n)
      expect(await afterGap.append(producerBatch('next', 1), { leaderEpoch: 3 })).toEqual({ baseOffset: 43n, lastOffset: 43n })

      await backend.restart()
      const reopened = await backend.log(0)
      expect(reopened.logEndOffset).toBe(44n)
      expect(offsetsOf(await readLog(reopened, 0n, NO_LIMIT, 44n))).toEqual(['0-0', '1-3', '4-5', '6-10', '11-11', '12-15', '40-42', '43-43'])
      expectBatches(await readLog(reopened, 0n, NO_LIMIT, 43n), [...stored, gapped])
    })

    it('refuses a batch that starts below the log end, writing nothing', async () => {
      const { log, stored } = await appendFixture(await open())
      await expect(log.append(producerBatch('behind', 2), { leaderEpoch: 3, baseOffset: FIXTURE_END - 1n })).rejects.toThrow(RangeError)
      expect(log.logEndOffset).toBe(FIXTURE_END)
      expectBatches(await readLog(log, 0n, NO_LIMIT, FIXTURE_END), stored)
    })
  })

  describe('high watermark', () => {
    it('never moves past durableEndOffset', async () => {
      const log = await (await open()).log(0)
      const pending = log.append(producerBatch('a', 4), { leaderEpoch: 0 })

      log.setHighWatermark(4n)
      expect(log.highWatermark).toBe(0n)

      await pending
      log.setHighWatermark(100n)
      expect(log.highWatermark).toBe(4n)
      log.setHighWatermark(2n)
      expect(log.highWatermark).toBe(2n)
    })
  })
}
