/**
 * A LogStore on a disk that really fills up (a 16 MiB tmpfs; skipped with the reason printed where it cannot be
 * mounted). LevelDB's write-ahead log then takes a torn record, and LevelDB would drop every later write when the
 * database is reopened; so the store must write nothing after the first failure (fail-stop), keep serving what it
 * acknowledged, refuse everything else with an error that says storage failed earlier, and after a restart with space
 * hold exactly what it acknowledged, each batch at its offset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { LogStore, StorageError, StorageOfflineError } from '../../storage/log-store.js'
import type { PartitionLog } from '../../storage/partition-log.js'
import { MiB, mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js'
import { expectBatches, expectedStored, producerBatch, readLog } from './batches.js'
import { LevelBackend, NO_LIMIT } from './level-backend.js'

const mounted = mountTmpfs(16 * MiB)
const skipReason = 'skipReason' in mounted ? mounted.skipReason : null
if (skipReason) console.warn(`storage disk-full tests skipped: ${skipReason}`)
const tmpfs = mounted as Tmpfs
afterAll(() => tmpfs.unmount?.())

const NO_SPACE = /No space left on device/
const REFUSED = /^storage failed earlier: IO error: .*No space left on device; restart the node$/

describe.skipIf(skipReason !== null)('a LogStore whose disk fills up', () => {
  let backend: LevelBackend
  const failures: StorageError[] = []
  /** What each partition acknowledged, in order: the input batches. */
  const acknowledged: Buffer[][] = [[], []]
  let logs: PartitionLog[]
  let firstFailure: unknown

  beforeAll(async () => {
    backend = await LevelBackend.open({ parentDir: tmpfs.dir, onFailure: (error) => failures.push(error) })
    logs = await Promise.all([0, 1].map((p) => backend.log(p)))
    tmpfs.fill({ leaveBytes: 3 * MiB })

    // Eight appends at a time over two partitions, as concurrent producers send them, until the disk is full.
    for (let round = 0; firstFailure === undefined; round++) {
      const inputs = Array.from({ length: 8 }, (_, i) => producerBatch(`r${round}-${i}`, 16, { valueBytes: 1000 }))
      const outcomes = await Promise.allSettled(inputs.map((input, i) => logs[i % 2]!.append(input, { leaderEpoch: 0 })))
      outcomes.forEach((outcome, i) => {
        if (outcome.status === 'fulfilled') acknowledged[i % 2]!.push(inputs[i]!)
        else firstFailure ??= outcome.reason
      })
      if (round > 1000) throw new Error('the disk never filled up')
    }
  })

  const expected = (p: number): Buffer[] =>
    acknowledged[p]!.map((input, k) => expectedStored(input, { baseOffset: BigInt(k * 16), leaderEpoch: 0 }))

  it('fails the write that hit the full disk with LevelDB\'s cause, once', () => {
    expect(firstFailure).toBeInstanceOf(StorageError)
    expect(firstFailure).not.toBeInstanceOf(StorageOfflineError)
    expect((firstFailure as Error).message).toMatch(NO_SPACE)
    expect(failures).toEqual([backend.store.failure])
    expect(acknowledged[0]!.length + acknowledged[1]!.length).toBeGreaterThan(0)
  })

  it('keeps serving exactly what it acknowledged', async () => {
    for (const p of [0, 1]) {
      const log = logs[p]!
      log.setHighWatermark(log.durableEndOffset)
      expect(log.highWatermark).toBe(BigInt(acknowledged[p]!.length * 16))
      expectBatches(await readLog(log, 0n, NO_LIMIT, log.highWatermark), expected(p))
    }
  })

  it('refuses every write after the failure, with space again, and says storage failed earlier', async () => {
    tmpfs.free()
    const endBefore = logs.map((log) => log.logEndOffset)
    // Were any of these acknowledged, LevelDB would drop them on reopen: the restart below would show it.
    const inputs = Array.from({ length: 20 }, (_, i) => producerBatch(`after-${i}`, 16, { valueBytes: 1000 }))
    const outcomes = await Promise.allSettled(inputs.map((input, i) => logs[i % 2]!.append(input, { leaderEpoch: 0 })))
    outcomes.forEach((outcome, i) => outcome.status === 'fulfilled' && acknowledged[i % 2]!.push(inputs[i]!))
    expect(outcomes.map((o) => o.status)).toEqual(inputs.map(() => 'rejected'))
    const refusal = (outcomes[0] as PromiseRejectedResult).reason as Error
    expect(refusal).toBeInstanceOf(StorageOfflineError)
    expect(refusal.message).toMatch(REFUSED)
    expect(logs.map((log) => log.logEndOffset)).toEqual(endBefore)
    await expect(logs[0]!.deleteBefore(16n)).rejects.toBe(refusal)
    await expect(logs[1]!.truncateTo(0n)).rejects.toBe(refusal)
    await expect(backend.store.putTopic({ name: 't', topicId: backend.topicId, partitions: 2, replicationFactor: 1, configs: {}, createdAtMs: 0 })).rejects.toBe(refusal)
    await expect(backend.store.log(backend.topicId, 2, { create: true })).rejects.toBe(refusal)
    await expect(backend.store.putNodeValue('identity', { nodeId: 1 })).rejects.toBe(refusal)
    expect(failures).toHaveLength(1)
  })

  it('comes back after a restart with every acknowledged batch at its offset, nothing else, and takes writes again', async () => {
    await backend.restart()
    for (const p of [0, 1]) {
      const log = await backend.log(p)
      expect(log.logEndOffset).toBe(BigInt(acknowledged[p]!.length * 16))
      expectBatches(await readLog(log, 0n, NO_LIMIT, log.logEndOffset), expected(p))
      const next = producerBatch(`p${p}-after-restart`, 1)
      expect(await log.append(next, { leaderEpoch: 0 })).toEqual({ baseOffset: log.logEndOffset - 1n, lastOffset: log.logEndOffset - 1n })
    }
    await backend.restart()
    for (const p of [0, 1]) expect((await backend.log(p)).logEndOffset).toBe(BigInt(acknowledged[p]!.length * 16 + 1))
    await backend.destroy()
  })
})

describe.skipIf(skipReason !== null)('a failed write outside the produce path', () => {
  it('stops appends too: the gate is the database\'s, whatever wrote first', async () => {
    const backend = await LevelBackend.open({ parentDir: tmpfs.dir })
    const log = await backend.log(0)
    const before = producerBatch('before', 4)
    await log.append(before, { leaderEpoch: 0 })
    tmpfs.fill({ leaveBytes: 0 })
    // A topic record too large for what is left: the first failed write is not an append.
    const topic = { name: 'big', topicId: backend.topicId, partitions: 1, replicationFactor: 1, configs: { padding: 'x'.repeat(256 * 1024) }, createdAtMs: 0 }
    const failure = await backend.store.putTopic(topic).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(StorageError)
    expect((failure as Error).message).toMatch(NO_SPACE)
    tmpfs.free()

    const refusal = await log.append(producerBatch('after', 4), { leaderEpoch: 0 }).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(StorageOfflineError)
    expect((refusal as Error).message).toMatch(REFUSED)

    await backend.restart()
    const reopened = await backend.log(0)
    expect(reopened.logEndOffset).toBe(4n)
    expectBatches(await readLog(reopened, 0n, NO_LIMIT, 4n), [expectedStored(before, { baseOffset: 0n, leaderEpoch: 0 })])
    expect(await backend.store.listTopics()).toEqual([])
    await backend.destroy()
  })
})

describe.skipIf(skipReason !== null)('opening a LogStore on a full disk', () => {
  afterAll(() => tmpfs.free())

  it('fails with LevelDB\'s cause in one line, and removes the data directory it created', async () => {
    tmpfs.fill({ leaveBytes: 0 })
    const dataDir = join(tmpfs.dir, 'fresh')
    const error = await LogStore.open(dataDir).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StorageError)
    expect((error as Error).message).toMatch(new RegExp(`^cannot open the database in ${dataDir}: IO error: [^\\n]*No space left on device$`))
    expect(existsSync(dataDir)).toBe(false)
  })
})
