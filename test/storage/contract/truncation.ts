/**
 * Contract scenarios for the two ways a log loses batches: `truncateTo` (a follower cutting its end back to its
 * leader's) and `deleteBefore` (retention and DeleteRecords moving the log start forward); and a new leader's epoch
 * assigned at the log end before it appends (`assignEpochStartOffset`), which a truncation at the log end drops; and
 * `truncateFullyAndStartAt` (a follower below its leader's log start starting afresh there).
 */
import { describe, expect, it } from 'vitest'
import { batchBytes, expectBatches, expectedStored, offsetsOf, producerBatch, readLog } from '../batches.js'
import type { PartitionLog } from '../../../storage/partition-log.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END, FIXTURE_EPOCHS } from './fixture.js'

const NO_LIMIT = 1 << 30

function scanAll(log: PartitionLog): Promise<Buffer[]> {
  return batchBytes(log, 0n, log.logEndOffset)
}

/** Offset ranges of one-record batches from `from` up to `to`: ['290-290', '291-291', ...]. */
function singles(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `${from + i}-${from + i}`)
}

export function truncationScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('truncateTo', () => {
    it('removes the batch that starts at the offset and every batch after it', async () => {
      const { log, stored } = await appendFixture(await open())

      await log.truncateTo(6n)

      expect(log.logEndOffset).toBe(6n)
      expect(log.durableEndOffset).toBe(6n)
      expect(log.highWatermark).toBe(6n)
      expectBatches(await readLog(log, 0n, NO_LIMIT, FIXTURE_END), stored.slice(0, 3))
      expectBatches(await scanAll(log), stored.slice(0, 3))
    })

    it('ends the log at the base of the batch that holds an offset inside it', async () => {
      const { log, stored } = await appendFixture(await open())

      await log.truncateTo(13n)
      expect(log.logEndOffset).toBe(12n)
      expect(log.epochCache).toEqual(FIXTURE_EPOCHS)

      await log.truncateTo(8n)
      expect(log.logEndOffset).toBe(6n)
      expectBatches(await readLog(log, 4n, NO_LIMIT, FIXTURE_END), stored.slice(2, 3))
    })

    it('drops the epochs that start at or after the new log end', async () => {
      const { log } = await appendFixture(await open())

      await log.truncateTo(11n)

      expect(log.epochCache).toEqual(FIXTURE_EPOCHS.slice(0, 2))
      expect(log.latestEpoch).toBe(1)
    })

    it('lets appends continue from the new log end, in a new epoch', async () => {
      const { log, stored } = await appendFixture(await open())
      await log.truncateTo(8n)
      const input = producerBatch('after', 2)
      const expected = expectedStored(input, { baseOffset: 6n, leaderEpoch: 5 })

      expect(await log.append(input, { leaderEpoch: 5 })).toEqual({ baseOffset: 6n, lastOffset: 7n })

      expect(log.epochCache).toEqual([...FIXTURE_EPOCHS.slice(0, 2), { epoch: 5, startOffset: 6n }])
      expectBatches(await readLog(log, 0n, NO_LIMIT, log.durableEndOffset), [...stored.slice(0, 3), expected])
    })

    it('removes batches whose appends are still being written', async () => {
      const backend = await open()
      const log = await backend.log(0)
      const pending = [2, 3, 4].map((records, i) => log.append(producerBatch(`b${i}`, records), { leaderEpoch: 0 }))

      await log.truncateTo(3n)
      await Promise.all(pending)

      expect(log.logEndOffset).toBe(2n)
      await backend.restart()
      const reopened = await backend.log(0)
      expect(reopened.logEndOffset).toBe(2n)
      expect(offsetsOf(await scanAll(reopened))).toEqual(['0-1'])
    })

    it('changes nothing at or past the log end', async () => {
      const { log, stored } = await appendFixture(await open())

      await log.truncateTo(FIXTURE_END)
      await log.truncateTo(FIXTURE_END + 10n)

      expect(log.logEndOffset).toBe(FIXTURE_END)
      expect(log.epochCache).toEqual(FIXTURE_EPOCHS)
      expectBatches(await readLog(log, 0n, NO_LIMIT, FIXTURE_END), stored)
    })

    it('drops an epoch assigned at the log end without batches, at or past the log end, and keeps the batches', async () => {
      const { log, stored } = await appendFixture(await open())
      log.assignEpochStartOffset(5)

      await log.truncateTo(FIXTURE_END)

      expect(log.epochCache).toEqual(FIXTURE_EPOCHS)
      expect(log.latestEpoch).toBe(3)
      expect(log.logEndOffset).toBe(FIXTURE_END)
      expectBatches(await readLog(log, 0n, NO_LIMIT, FIXTURE_END), stored)
    })

    it('survives a restart', async () => {
      const backend = await open()
      const { stored } = await appendFixture(backend)
      await (await backend.log(0)).truncateTo(8n)

      await backend.restart()

      const log = await backend.log(0)
      expect(log.logEndOffset).toBe(6n)
      expect(log.epochCache).toEqual(FIXTURE_EPOCHS.slice(0, 2))
      expectBatches(await scanAll(log), stored.slice(0, 3))
      const after = await log.append(producerBatch('after', 1), { leaderEpoch: 5 })
      expect(after).toEqual({ baseOffset: 6n, lastOffset: 6n })
    })

    it('below the log start leaves an empty log that starts where it ends', async () => {
      const { log } = await appendFixture(await open())
      await log.deleteBefore(8n)

      await log.truncateTo(7n)

      expect(log.logEndOffset).toBe(6n)
      expect(log.logStartOffset).toBe(6n)
      await log.append(producerBatch('after', 1), { leaderEpoch: 5 })
      log.setHighWatermark(log.durableEndOffset)
      expect(offsetsOf(await readLog(log, log.logStartOffset, NO_LIMIT, log.highWatermark))).toEqual(['6-6'])
    })
  })

  describe.each([
    { name: 'cache', cacheMaxBytes: 64 * 1024 },
    { name: 'store', cacheMaxBytes: 0 },
  ])('deleteBefore, reading from the $name', ({ cacheMaxBytes }) => {
    it('moves logStartOffset and removes the batches wholly below it', async () => {
      const { log, stored } = await appendFixture(await open({ cacheMaxBytes }))

      await log.deleteBefore(4n)

      expect(log.logStartOffset).toBe(4n)
      expect(log.logEndOffset).toBe(FIXTURE_END)
      expect(log.highWatermark).toBe(FIXTURE_END)
      expectBatches(await scanAll(log), stored.slice(2))
      expectBatches(await readLog(log, 4n, NO_LIMIT, FIXTURE_END), stored.slice(2))
      expectBatches(await readLog(log, 12n, NO_LIMIT, FIXTURE_END), stored.slice(5))
    })

    it('keeps the batch that holds the new log start', async () => {
      const { log, stored } = await appendFixture(await open({ cacheMaxBytes }))

      await log.deleteBefore(8n)

      expect(log.logStartOffset).toBe(8n)
      expectBatches(await scanAll(log), stored.slice(3))
      expectBatches(await readLog(log, 8n, NO_LIMIT, FIXTURE_END), stored.slice(3))
    })

    it('never moves the log start past the high watermark, nor backwards', async () => {
      const { log, stored } = await appendFixture(await open({ cacheMaxBytes }))
      log.setHighWatermark(11n)

      await log.deleteBefore(100n)
      expect(log.logStartOffset).toBe(11n)
      await log.deleteBefore(4n)
      expect(log.logStartOffset).toBe(11n)

      expectBatches(await scanAll(log), stored.slice(4))
    })

    it('still finds the right batch after deleting many', async () => {
      const backend = await open({ cacheMaxBytes })
      const log = await backend.log(0)
      const pending = []
      for (let i = 0; i < 300; i++) pending.push(log.append(producerBatch(`r${i}`, 1), { leaderEpoch: 0 }))
      await Promise.all(pending)
      log.setHighWatermark(log.durableEndOffset)

      await log.deleteBefore(290n)

      expect(offsetsOf(await readLog(log, 290n, NO_LIMIT, 300n))).toEqual(offsetsOf(await scanAll(log)))
      expect(offsetsOf(await readLog(log, 295n, NO_LIMIT, 300n))).toEqual(singles(295, 300))
      await backend.restart()
      const reopened = await backend.log(0)
      expect(reopened.logStartOffset).toBe(290n)
      expect(offsetsOf(await readLog(reopened, 290n, NO_LIMIT, 300n))).toEqual(singles(290, 300))
    })

    it('survives a restart', async () => {
      const backend = await open({ cacheMaxBytes })
      const { stored } = await appendFixture(backend)
      await (await backend.log(0)).deleteBefore(8n)

      await backend.restart()

      const log = await backend.log(0)
      expect(log.logStartOffset).toBe(8n)
      expect(log.logEndOffset).toBe(FIXTURE_END)
      expectBatches(await scanAll(log), stored.slice(3))
      expectBatches(await readLog(log, 8n, NO_LIMIT, FIXTURE_END), stored.slice(3))
    })
  })

  describe('assignEpochStartOffset', () => {
    it('puts a newer epoch at the log end at once, ignores an older one, and writes it with the epoch\'s first batch', async () => {
      const backend = await open()
      const { log } = await appendFixture(backend)

      log.assignEpochStartOffset(5)
      log.assignEpochStartOffset(4)

      expect(log.epochCache).toEqual([...FIXTURE_EPOCHS, { epoch: 5, startOffset: FIXTURE_END }])
      expect(log.latestEpoch).toBe(5)
      expect(await log.append(producerBatch('in-5', 2), { leaderEpoch: 5 })).toEqual({ baseOffset: FIXTURE_END, lastOffset: FIXTURE_END + 1n })
      expect(log.epochCache).toEqual([...FIXTURE_EPOCHS, { epoch: 5, startOffset: FIXTURE_END }])

      await backend.restart()
      expect((await backend.log(0)).epochCache).toEqual([...FIXTURE_EPOCHS, { epoch: 5, startOffset: FIXTURE_END }])
    })

    it('writes no epoch without batches: a restart forgets it, even after other writes of the log', async () => {
      const backend = await open()
      const { log } = await appendFixture(backend)
      log.assignEpochStartOffset(5)
      log.setHighWatermark(FIXTURE_END)
      await log.deleteBefore(4n)

      await backend.restart()

      const reopened = await backend.log(0)
      expect(reopened.logStartOffset).toBe(4n)
      expect(reopened.epochCache).toEqual(FIXTURE_EPOCHS)
    })
  })

  describe('truncateFullyAndStartAt', () => {
    it('removes every batch and starts the log afresh at the offset, past its old end, and appends continue there after a restart', async () => {
      const backend = await open()
      const { log } = await appendFixture(backend)

      await log.truncateFullyAndStartAt(40n)

      expect([log.logStartOffset, log.logEndOffset, log.durableEndOffset, log.highWatermark]).toEqual([40n, 40n, 40n, 40n])
      expect(log.epochCache).toEqual([])
      expect(log.sizeBytes).toBe(0)
      expect(await scanAll(log)).toEqual([])
      const input = producerBatch('afresh', 2)
      const expected = expectedStored(input, { baseOffset: 40n, leaderEpoch: 7 })
      expect(await log.append(input, { leaderEpoch: 7 })).toEqual({ baseOffset: 40n, lastOffset: 41n })

      await backend.restart()

      const reopened = await backend.log(0)
      expect([reopened.logStartOffset, reopened.logEndOffset]).toEqual([40n, 42n])
      expect(reopened.epochCache).toEqual([{ epoch: 7, startOffset: 40n }])
      expectBatches(await readLog(reopened, 40n, NO_LIMIT, 42n), [expected])
      expectBatches(await scanAll(reopened), [expected])
    })
  })
}
