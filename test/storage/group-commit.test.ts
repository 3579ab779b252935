/**
 * The group commit when LevelDB refuses a write. The database is really closed under the store (no stubs), which
 * makes the next write fail the way any LevelDB write error would reach the group commit.
 */
import { describe, expect, it } from 'vitest'
import { producerBatch } from './batches.js'
import { NO_LIMIT, backendsPerTest } from './level-backend.js'

const { open } = backendsPerTest()

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

// A hang would show as a test timeout; these keep it short instead of the suite-wide two minutes.
const HANG_GUARD = { timeout: 15_000 }

describe('group commit when a write fails', () => {
  it('rejects every append of the failed write, and every later one, with the same error', HANG_GUARD, async () => {
    const backend = await open()
    const logs = await Promise.all([0, 1, 2].map((p) => backend.log(p)))
    await logs[0]!.append(producerBatch('before', 1), { leaderEpoch: 0 })

    const inFailedWrite = logs.map((log, p) => log.append(producerBatch(`p${p}`, 2), { leaderEpoch: 0 }))
    const closing = backend.store.db.close()
    const outcomes = await Promise.allSettled(inFailedWrite)
    await closing

    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    const error = (outcomes[0] as PromiseRejectedResult).reason as Error & { code?: string }
    expect(error.code).toBe('LEVEL_DATABASE_NOT_OPEN')
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason).toBe(error)
    expect(backend.store.commit.failure).toBe(error)

    // Later appends fail at once with the same error, and take no offsets.
    const endBefore = logs[1]!.logEndOffset
    await expect(logs[1]!.append(producerBatch('later', 1), { leaderEpoch: 0 })).rejects.toBe(error)
    expect(logs[1]!.logEndOffset).toBe(endBefore)

    // Nothing that was not written becomes readable, and changes to the log are refused rather than left hanging.
    expect(logs[0]!.durableEndOffset).toBe(1n)
    logs[0]!.setHighWatermark(100n)
    expect(logs[0]!.highWatermark).toBe(1n)
    await expect(logs[0]!.deleteBefore(1n)).rejects.toBe(error)
    await expect(logs[0]!.truncateTo(0n)).rejects.toBe(error)
    await backend.store.commit.settle()
    await backend.store.close()
  })

  it('completes the write in flight and rejects the appends queued behind it', HANG_GUARD, async () => {
    const backend = await open()
    const log = await backend.log(0)

    const inFlight = log.append(producerBatch('in-flight', 1), { leaderEpoch: 0 })
    // The group commit started its write on this turn (setImmediate callbacks run in order); queue two more behind
    // it, then close the database, which lets the write in flight finish and refuses the next one.
    await nextTurn()
    const queued = ['queued-a', 'queued-b'].map((label) => log.append(producerBatch(label, 1), { leaderEpoch: 0 }))
    const closing = backend.store.db.close()

    expect(await inFlight).toEqual({ baseOffset: 0n, lastOffset: 0n })
    const outcomes = await Promise.allSettled(queued)
    await closing
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    expect((outcomes[0] as PromiseRejectedResult).reason).toBe((outcomes[1] as PromiseRejectedResult).reason)
    expect(log.durableEndOffset).toBe(1n)

    // After a restart the log holds exactly what was acknowledged, and appends continue after it.
    await backend.restart()
    const reopened = await backend.log(0)
    expect(reopened.logEndOffset).toBe(1n)
    expect(await reopened.read(0n, NO_LIMIT, 1n)).toHaveLength(1)
    const after = await reopened.append(producerBatch('after', 1), { leaderEpoch: 0 })
    expect(after).toEqual({ baseOffset: 1n, lastOffset: 1n })
  })
})

describe('group commit settle', () => {
  it('waits for what was appended before it, not for appends that keep arriving', HANG_GUARD, async () => {
    const backend = await open()
    const log = await backend.log(0)
    const pending: Promise<unknown>[] = []
    let settled = false
    let appendedWhenSettleCalled = 0n
    let durableWhenSettled = -1n

    // A producer that appends on every turn of the event loop until settle returns (or 2,000 turns pass).
    const producer = (async () => {
      for (let i = 0; i < 2_000 && !settled; i++) {
        pending.push(log.append(producerBatch(`r${i}`, 1), { leaderEpoch: 0 }))
        if (i === 10) {
          appendedWhenSettleCalled = log.logEndOffset
          void backend.store.commit.settle().then(() => {
            settled = true
            durableWhenSettled = log.durableEndOffset
          })
        }
        await nextTurn()
      }
    })()
    await producer
    await Promise.all(pending)

    expect(settled).toBe(true)
    expect(durableWhenSettled).toBeGreaterThanOrEqual(appendedWhenSettleCalled)
    expect(log.logEndOffset).toBeLessThan(2_000n)
  })
})
