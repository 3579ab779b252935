/** Contract scenarios: what a clean restart must bring back. (Torn and corrupt tails are backend-specific.) */
import { describe, expect, it } from 'vitest'
import { expectBatches, expectedStored, producerBatch, readLog } from '../batches.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END, FIXTURE_EPOCHS } from './fixture.js'

const NO_LIMIT = 1 << 30

export function restartScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe('restart', () => {
    it('brings back the offsets, the high watermark, the epochs and the data', async () => {
      const backend = await open()
      const { log, stored } = await appendFixture(backend)
      await log.deleteBefore(4n)
      log.setHighWatermark(12n)

      await backend.restart()

      const reopened = await backend.log(0)
      expect(reopened.logStartOffset).toBe(4n)
      expect(reopened.logEndOffset).toBe(FIXTURE_END)
      expect(reopened.durableEndOffset).toBe(FIXTURE_END)
      expect(reopened.highWatermark).toBe(12n)
      expect(reopened.epochCache).toEqual(FIXTURE_EPOCHS)
      expectBatches(await readLog(reopened, 4n, NO_LIMIT, FIXTURE_END), stored.slice(2))
    })

    it('keeps the high watermark set after the last write', async () => {
      const backend = await open()
      const { log } = await appendFixture(backend)
      expect(log.highWatermark).toBe(FIXTURE_END)

      await backend.restart()

      expect((await backend.log(0)).highWatermark).toBe(FIXTURE_END)
    })

    it('continues appending from the log end in the latest epoch', async () => {
      const backend = await open()
      const { stored } = await appendFixture(backend)
      await backend.restart()
      const log = await backend.log(0)
      const input = producerBatch('after', 2)

      expect(await log.append(input, { leaderEpoch: 3 })).toEqual({ baseOffset: 16n, lastOffset: 17n })
      const later = await log.append(producerBatch('later', 1), { leaderEpoch: 4 })
      expect(later).toEqual({ baseOffset: 18n, lastOffset: 18n })

      expect(log.epochCache).toEqual([...FIXTURE_EPOCHS, { epoch: 4, startOffset: 18n }])
      const appended = expectedStored(input, { baseOffset: 16n, leaderEpoch: 3 })
      expectBatches(await readLog(log, 0n, NO_LIMIT, 18n), [...stored, appended])
    })

    it('opens an existing log instead of starting it afresh', async () => {
      const backend = await open()
      const { stored } = await appendFixture(backend)
      await backend.restart()

      const log = await backend.log(0)
      expect(log.logEndOffset).toBe(FIXTURE_END)
      expectBatches(await readLog(log, 0n, NO_LIMIT, FIXTURE_END), stored)
    })
  })
}
