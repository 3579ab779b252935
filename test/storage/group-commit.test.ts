/**
 * The group commit when LevelDB refuses a write, and its bound on one write's size. The LevelDB handle is really
 * closed under the store (no stubs), which makes the next write fail the way any LevelDB write error reaches the
 * database's gate; test/storage/disk-full.test.ts does the same with a real full disk.
 */
import { describe, expect, it } from 'vitest'
import { StorageError, StorageOfflineError } from '../../storage/log-store.js'
import { expectBatches, expectedStored, producerBatch, readLog } from './batches.js'
import { NO_LIMIT, backendsPerTest } from './level-backend.js'

const { open } = backendsPerTest()

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

// A hang would show as a test timeout; these keep it short instead of the suite-wide two minutes.
const HANG_GUARD = { timeout: 15_000 }

describe('group commit when a write fails', () => {
  it('rejects every append of the failed write, refuses every later write, and says which is which', HANG_GUARD, async () => {
    const failures: StorageError[] = []
    const backend = await open({ onFailure: (error) => failures.push(error) })
    const logs = await Promise.all([0, 1, 2].map((p) => backend.log(p)))
    await logs[0]!.append(producerBatch('before', 1), { leaderEpoch: 0 })

    const inFailedWrite = logs.map((log, p) => log.append(producerBatch(`p${p}`, 2), { leaderEpoch: 0 }))
    const closing = backend.closeUnderneath()
    const outcomes = await Promise.allSettled(inFailedWrite)
    await closing

    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    const error = (outcomes[0] as PromiseRejectedResult).reason as Error
    expect(error).toBeInstanceOf(StorageError)
    expect(error).not.toBeInstanceOf(StorageOfflineError)
    // The appends were staged in the write's batch (group-commit.ts, "Staging"), which closing the handle closed too.
    expect(error.message).toMatch(/^writing to the database in .* failed: Batch is not open/)
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason).toBe(error)
    expect(backend.store.failure).toBe(error)
    expect(failures).toEqual([error])

    // Later writes are refused at once, say that storage failed earlier, and take no offsets.
    const endBefore = logs[1]!.logEndOffset
    const refusal = await logs[1]!.append(producerBatch('later', 1), { leaderEpoch: 0 }).catch((e: Error) => e)
    expect(refusal).toBeInstanceOf(StorageOfflineError)
    expect((refusal as Error).message).toMatch(/^storage failed earlier: Batch is not open.*; restart the node$/)
    expect(logs[1]!.logEndOffset).toBe(endBefore)

    // Nothing that was not written becomes readable, and changes to the log are refused rather than left hanging.
    expect(logs[0]!.durableEndOffset).toBe(1n)
    logs[0]!.setHighWatermark(100n)
    expect(logs[0]!.highWatermark).toBe(1n)
    await expect(logs[0]!.deleteBefore(1n)).rejects.toBe(refusal)
    await expect(logs[0]!.truncateTo(0n)).rejects.toBe(refusal)
    await expect(backend.store.putTopic({ name: 't', topicId: backend.topicId, partitions: 1, replicationFactor: 1, configs: {}, createdAtMs: 0 })).rejects.toBe(refusal)
    await expect(backend.store.log(backend.topicId, 9, { create: true })).rejects.toBe(refusal)
    expect(failures).toHaveLength(1)
  })

  it('completes the write in flight and refuses the appends queued behind it', HANG_GUARD, async () => {
    const backend = await open()
    const log = await backend.log(0)

    const inFlight = log.append(producerBatch('in-flight', 1), { leaderEpoch: 0 })
    // The group commit started its write on this turn (setImmediate callbacks run in order); queue two more behind
    // it, then close LevelDB under the store, which lets the write in flight finish and fails the next one.
    await nextTurn()
    const queued = ['queued-a', 'queued-b'].map((label) => log.append(producerBatch(label, 1), { leaderEpoch: 0 }))
    const closing = backend.closeUnderneath()

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
    expect(await readLog(reopened, 0n, NO_LIMIT, 1n)).toHaveLength(1)
    const after = await reopened.append(producerBatch('after', 1), { leaderEpoch: 0 })
    expect(after).toEqual({ baseOffset: 1n, lastOffset: 1n })
  })
})

describe('group commit size bound', () => {
  const BOUND = 64 * 1024
  const appendAll = (inputs: Buffer[], logs: Awaited<ReturnType<Awaited<ReturnType<typeof open>>['log']>>[]) =>
    inputs.map((input, i) => {
      const log = logs[i % logs.length]!
      return log.append(input, { leaderEpoch: 0 }).then((result) => {
        // An append is acknowledged only by the write that carried it.
        expect(log.durableEndOffset).toBeGreaterThan(result.lastOffset)
        return result
      })
    })

  it('splits what arrives at once into writes of at most the bound, and acknowledges each append by its own write', HANG_GUARD, async () => {
    const backend = await open({ maxWriteBytes: BOUND })
    const logs = await Promise.all([0, 1].map((p) => backend.log(p)))
    // 40 batches of ~10 KB over two partitions, all in one turn: about 400 KB, so at least 7 writes of <= 64 KiB.
    const inputs = Array.from({ length: 40 }, (_, i) => producerBatch(`b${i}`, 10, { valueBytes: 1000 }))
    const total = inputs.reduce((sum, b) => sum + b.length, 0)
    const writesBefore = backend.writes()

    const results = await Promise.all(appendAll(inputs, logs))

    expect(backend.writes() - writesBefore).toBeGreaterThanOrEqual(Math.ceil(total / BOUND))
    expect(backend.store.commit.stats.maxWriteBytes).toBeLessThanOrEqual(BOUND)
    // Offsets follow arrival order per partition.
    for (const p of [0, 1]) {
      const bases = results.filter((_, i) => i % 2 === p).map((r) => r.baseOffset)
      expect(bases).toEqual(bases.map((_, k) => BigInt(k * 10)))
    }

    await backend.restart()
    for (const p of [0, 1]) {
      const log = await backend.log(p)
      const expected = inputs.filter((_, i) => i % 2 === p).map((input, k) => expectedStored(input, { baseOffset: BigInt(k * 10), leaderEpoch: 0 }))
      expect(log.logEndOffset).toBe(200n)
      expect(log.sizeBytes).toBe(expected.reduce((sum, b) => sum + b.length, 0))
      expectBatches(await readLog(log, 0n, NO_LIMIT, log.logEndOffset), expected)
    }
  })

  it('writes a batch larger than the bound on its own', HANG_GUARD, async () => {
    const backend = await open({ maxWriteBytes: BOUND })
    const log = await backend.log(0)
    const large = producerBatch('large', 100, { valueBytes: 1000 })
    expect(large.length).toBeGreaterThan(BOUND)
    const small = producerBatch('small', 1)

    const [a, b, c] = await Promise.all([small, large, small].map((input) => log.append(Buffer.from(input), { leaderEpoch: 0 })))

    expect([a!.baseOffset, b!.baseOffset, c!.baseOffset]).toEqual([0n, 1n, 101n])
    expect(backend.store.commit.stats.maxWriteBytes).toBe(large.length)
  })

  it('leaves state records that describe only what their write carried, so a failure between writes recovers cleanly', HANG_GUARD, async () => {
    const backend = await open({ maxWriteBytes: BOUND })
    const log = await backend.log(0)
    const inputs = Array.from({ length: 30 }, (_, i) => producerBatch(`b${i}`, 10, { valueBytes: 1000 }))
    const appends = inputs.map((input) => log.append(input, { leaderEpoch: 0 }))
    // Fail the writes once the first one has been acknowledged: some writes of the group are done, the rest never are.
    void appends[0]!.then(() => backend.closeUnderneath())
    const outcomes = await Promise.allSettled(appends)
    const acknowledged = outcomes.filter((o) => o.status === 'fulfilled').length
    expect(acknowledged).toBeGreaterThan(0)
    expect(acknowledged).toBeLessThan(inputs.length)
    // Acknowledged appends are a prefix: the group's writes are made in order.
    expect(outcomes.slice(0, acknowledged).every((o) => o.status === 'fulfilled')).toBe(true)

    await backend.restart()
    const reopened = await backend.log(0)
    const expected = inputs.slice(0, acknowledged).map((input, k) => expectedStored(input, { baseOffset: BigInt(k * 10), leaderEpoch: 0 }))
    expect(reopened.logEndOffset).toBe(BigInt(acknowledged * 10))
    expect(reopened.sizeBytes).toBe(expected.reduce((sum, b) => sum + b.length, 0))
    expectBatches(await readLog(reopened, 0n, NO_LIMIT, reopened.logEndOffset), expected)
  })
})

describe('group commit staging', () => {
  it('stages appends in the next write while one is in flight, and writes them in that write', HANG_GUARD, async () => {
    const backend = await open()
    const log = await backend.log(0)
    const first = log.append(producerBatch('first', 1), { leaderEpoch: 0 })
    await nextTurn()
    const writesBefore = backend.writes()
    const stagedBefore = backend.store.commit.stats.staged
    // The first write is in flight: these three go into the next one's batch as they come.
    const inputs = ['a', 'b', 'c'].map((label) => producerBatch(label, 2))
    const staged = inputs.map((input) => log.append(Buffer.from(input), { leaderEpoch: 0 }))
    expect(backend.store.commit.stats.staged - stagedBefore).toBe(3)
    await first
    expect(await Promise.all(staged)).toEqual([0, 1, 2].map((k) => ({ baseOffset: BigInt(1 + 2 * k), lastOffset: BigInt(2 + 2 * k) })))
    expect(backend.writes() - writesBefore).toBe(1)

    await backend.restart()
    const reopened = await backend.log(0)
    expect(reopened.logEndOffset).toBe(7n)
    expectBatches(await readLog(reopened, 1n, NO_LIMIT, 7n), inputs.map((input, k) => expectedStored(input, { baseOffset: BigInt(1 + 2 * k), leaderEpoch: 0 })))
  })

  it('keeps a batch appended after a truncation under the key the truncation removed', HANG_GUARD, async () => {
    const backend = await open()
    const log = await backend.log(0)
    for (let i = 0; i < 6; i++) await log.append(producerBatch(`old${i}`, 1), { leaderEpoch: 0 })

    // Offsets 3-5 go. A batch appended at 3 right as the truncation queues its deletes (in the same turn, watched
    // through the group commit's `add`) takes the key of the removed batch at 3 and is staged in the write that
    // carries those deletes, which must not remove it.
    const replacement = producerBatch('new3', 1)
    const commit = backend.store.commit
    const add = commit.add.bind(commit)
    let appended: Promise<unknown> | undefined
    let writesBefore = 0
    commit.add = (flushable, bytes = 0) => {
      const ticket = add(flushable, bytes)
      if (flushable === (log as unknown) && bytes === 0 && appended === undefined) {
        writesBefore = backend.writes()
        appended = log.append(Buffer.from(replacement), { leaderEpoch: 1 })
      }
      return ticket
    }
    await log.truncateTo(3n)
    expect(await appended).toEqual({ baseOffset: 3n, lastOffset: 3n })
    expect(backend.writes() - writesBefore).toBe(1)

    await backend.restart()
    const reopened = await backend.log(0)
    expect(reopened.logEndOffset).toBe(4n)
    expectBatches(await readLog(reopened, 3n, NO_LIMIT, 4n), [expectedStored(replacement, { baseOffset: 3n, leaderEpoch: 1 })])
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
