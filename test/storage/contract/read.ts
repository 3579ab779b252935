/**
 * Contract scenarios for `read`, Fetch's path: whole batches from the one that holds the fetch offset, bounded by
 * maxBytes (with Kafka's minOneMessage) and by `upTo`. Every scenario runs three ways, because a log serves recent
 * batches from memory and older ones from the store, and both must give the same answer:
 *
 *   cache         everything still in the node's batch cache
 *   store         no cache: every batch comes from the store
 *   restarted     a reopened backend: nothing in memory
 */
import { describe, expect, it } from 'vitest'
import { baseOffsetOf, expectBatches, expectedStored, offsetsOf, producerBatch, readLog, sumOfSizes } from '../batches.js'
import type { PartitionLog } from '../../../storage/partition-log.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { appendFixture, FIXTURE_END, type Fixture } from './fixture.js'

const NO_LIMIT = 1 << 30

type Open = (options?: BackendOptions) => Promise<LogBackend>

const READ_PATHS: { name: string; fixture: (open: Open) => Promise<Fixture> }[] = [
  { name: 'cache', fixture: async (open) => appendFixture(await open({ cacheMaxBytes: 64 * 1024 })) },
  { name: 'store', fixture: async (open) => appendFixture(await open({ cacheMaxBytes: 0 })) },
  {
    name: 'restarted',
    fixture: async (open) => {
      const backend = await open()
      const fixture = await appendFixture(backend)
      await backend.restart()
      return { ...fixture, log: await backend.log(0) }
    },
  },
]

export function readScenarios(open: Open): void {
  describe.each(READ_PATHS)('read from the $name', ({ fixture }) => {
    it('returns whole batches starting with the batch that contains the fetch offset', async () => {
      const { log, stored, batchAt } = await fixture(open)
      for (let offset = 0n; offset < FIXTURE_END; offset++) {
        const batches = await readLog(log, offset, NO_LIMIT, FIXTURE_END)
        expectBatches(batches, stored.slice(batchAt(offset)), `fetch offset ${offset}`)
      }
    })

    it('returns nothing at the log end', async () => {
      const { log } = await fixture(open)
      expectBatches(await readLog(log, FIXTURE_END, NO_LIMIT, FIXTURE_END), [])
    })

    it('stops before maxBytes would be passed', async () => {
      const { log, stored } = await fixture(open)
      const firstThree = sumOfSizes(stored.slice(0, 3))

      expect(offsetsOf(await readLog(log, 0n, firstThree, FIXTURE_END))).toEqual(['0-0', '1-3', '4-5'])
      expect(offsetsOf(await readLog(log, 0n, firstThree - 1, FIXTURE_END))).toEqual(['0-0', '1-3'])
      expect(offsetsOf(await readLog(log, 2n, sumOfSizes(stored.slice(1, 3)), FIXTURE_END))).toEqual(['1-3', '4-5'])
    })

    it('returns the first batch alone when it is larger than maxBytes and minOne is set', async () => {
      const { log, stored } = await fixture(open)
      expectBatches(await readLog(log, 7n, stored[3]!.length - 1, FIXTURE_END, true), [stored[3]])
      expectBatches(await readLog(log, 7n, 0, FIXTURE_END, true), [stored[3]])
    })

    it('returns nothing when the first batch is larger than maxBytes and minOne is not set', async () => {
      const { log, stored } = await fixture(open)
      expectBatches(await readLog(log, 7n, stored[3]!.length - 1, FIXTURE_END, false), [])
      expectBatches(await readLog(log, 7n, stored[3]!.length, FIXTURE_END, false), [stored[3]])
    })

    it('never returns a batch at or above upTo', async () => {
      const { log, stored } = await fixture(open)
      // upTo on a batch boundary (6, 11) or inside batch 6-10 (8, 10): that batch is not readable as a whole yet.
      expectBatches(await readLog(log, 0n, NO_LIMIT, 6n), stored.slice(0, 3))
      expectBatches(await readLog(log, 0n, NO_LIMIT, 8n), stored.slice(0, 3))
      expectBatches(await readLog(log, 5n, NO_LIMIT, 10n), stored.slice(2, 3))
      expectBatches(await readLog(log, 5n, NO_LIMIT, 11n), stored.slice(2, 4))
      expectBatches(await readLog(log, 6n, NO_LIMIT, 6n), [])
      expectBatches(await readLog(log, 7n, NO_LIMIT, 6n), [])
      expectBatches(await readLog(log, 12n, 0, 12n, true), [])
    })
  })

  describe('read paths', () => {
    it('the cache and the store give identical answers', async () => {
      const backend = await open({ cacheMaxBytes: 64 * 1024 })
      const { log, stored } = await appendFixture(backend)
      const maxBytesValues = [0, 150, sumOfSizes(stored.slice(0, 2)), NO_LIMIT]
      const answers = await everyAnswer(log, maxBytesValues)

      await backend.restart()

      expect(await everyAnswer(await backend.log(0), maxBytesValues)).toEqual(answers)
    })

    it('past the durable end, a read takes appended batches from the cache only, and a consumer upTo stops it', async () => {
      // A follower's replica fetch reads up to the log end, so the leader's write of a batch and the follower's overlap.
      for (const cacheMaxBytes of [64 * 1024, 0]) {
        const backend = await open({ cacheMaxBytes })
        const log = await backend.log(0)
        const written = [producerBatch('written-0', 2), producerBatch('written-1', 3)]
        const stored: Buffer[] = []
        for (const input of written) {
          stored.push(expectedStored(input, { baseOffset: log.logEndOffset, leaderEpoch: 0 }))
          await log.append(input, { leaderEpoch: 0 })
        }
        log.setHighWatermark(log.durableEndOffset)
        const durableEnd = log.durableEndOffset
        const pending = producerBatch('pending', 4)
        const pendingStored = expectedStored(pending, { baseOffset: durableEnd, leaderEpoch: 0 })
        const appended = log.append(pending, { leaderEpoch: 0 })
        expect(log.durableEndOffset, 'the write has not completed').toBe(durableEnd)
        // Every read starts before the write can complete (a read from the cache or at the durable end awaits nothing).
        const consumer = readLog(log, 0n, NO_LIMIT, log.highWatermark)
        const tail = readLog(log, durableEnd, NO_LIMIT, log.logEndOffset)
        if (cacheMaxBytes > 0) {
          const whole = readLog(log, 0n, NO_LIMIT, log.logEndOffset)
          const pastEnd = readLog(log, 0n, NO_LIMIT, log.logEndOffset + 100n)
          expectBatches(await tail, [pendingStored], 'the appended batch, from the cache')
          expectBatches(await whole, [...stored, pendingStored], 'written and appended batches in order')
          expectBatches(await pastEnd, [...stored, pendingStored], 'never past the log end')
        } else {
          expectBatches(await tail, [], 'no cache: nothing past the durable end before the write')
        }
        expectBatches(await consumer, stored, 'up to the high watermark only')
        await appended
        expectBatches(await readLog(log, durableEnd, NO_LIMIT, log.logEndOffset), [pendingStored], 'once written, from either')
      }
    })

    it('a read of many MiB gives every batch whole and in order, from the cache, the store and after a restart', async () => {
      // Fetches ask for megabytes at once, more than an engine may bring from its store in one step.
      const backend = await open({ cacheMaxBytes: 8 * 1024 * 1024 })
      const log = await backend.log(0)
      const stored: Buffer[] = []
      for (let b = 0; b < LARGE_READ_BATCHES; b++) {
        const input = producerBatch(`large-${b}`, 4, { valueBytes: 4000 + (b % 7) * 100 })
        stored.push(expectedStored(input, { baseOffset: log.logEndOffset, leaderEpoch: 0 }))
        await log.append(input, { leaderEpoch: 0 })
      }
      log.setHighWatermark(log.durableEndOffset)
      const end = log.logEndOffset
      const middle = LARGE_READ_BATCHES / 2
      const budget = sumOfSizes(stored.slice(middle, middle + 100))
      const check = async (read: PartitionLog, path: string): Promise<void> => {
        expectBatches(await readLog(read, 0n, NO_LIMIT, end), stored, `everything, ${path}`)
        expectBatches(await readLog(read, baseOffsetOf(stored[middle]!) + 1n, budget, end), stored.slice(middle, middle + 100), `from the middle, ${path}`)
        expectBatches(await readLog(read, 0n, sumOfSizes(stored.slice(0, 100)) - 1, end), stored.slice(0, 99), `a budget that ends inside a batch, ${path}`)
      }
      expect(sumOfSizes(stored)).toBeGreaterThan(4 * 1024 * 1024)
      await check(log, 'the cache')
      await backend.restart()
      await check(await backend.log(0), 'the store after a restart')
    })
  })
}

/** Batches of about 16 KiB in the large-read scenario: 6 MiB or so. */
const LARGE_READ_BATCHES = 400

/** The answer to every read of the fixture log over a grid of fetch offsets, maxBytes, upTo and minOne. */
async function everyAnswer(log: PartitionLog, maxBytesValues: number[]): Promise<Map<string, string[]>> {
  const answers = new Map<string, string[]>()
  for (let fetchOffset = 0n; fetchOffset <= FIXTURE_END; fetchOffset++) {
    for (const maxBytes of maxBytesValues) {
      for (const upTo of [6n, 8n, FIXTURE_END]) {
        for (const minOne of [true, false]) {
          const batches = await readLog(log, fetchOffset, maxBytes, upTo, minOne)
          answers.set(`${fetchOffset}/${maxBytes}/${upTo}/${minOne}`, batches.map((b) => b.toString('hex')))
        }
      }
    }
  }
  return answers
}
