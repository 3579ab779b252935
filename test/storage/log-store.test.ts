/**
 * The LevelDB LogStore beyond the partition-log contract: recovery of what a crash or a bad disk leaves in the
 * database, the data-directory lock, topic deletion, and sharing one log per partition.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { waitFor } from '../helpers/wait.js'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { COMPACT_DELETED_TOPIC_BYTES, LogStore, StorageError, StorageLockedError, type TopicRecord } from '../../storage/log-store.js'
import type { PartitionLog } from '../../storage/partition-log.js'
import {
  batchBytes,
  expectBatches,
  expectedStored,
  offsetsOf,
  producerBatch,
  readLog,
  valuesOf,
  withBaseOffset,
  withFlippedRecordByte,
} from './batches.js'
import { LevelBackend, NO_LIMIT, backendsPerTest } from './level-backend.js'
import { below } from './contract/lookup.js'
import { damageLargestTable } from '../helpers/corrupt-table.js'

/** msgpack as storage/database.ts configures it, to write state records as a crash could leave them. */
const packr = new Packr({ int64AsType: 'bigint', mapsAsObjects: true })
const { open } = backendsPerTest()

async function readAll(log: PartitionLog): Promise<Buffer[]> {
  return readLog(log, log.logStartOffset, NO_LIMIT, log.logEndOffset)
}

function scanAll(log: PartitionLog): Promise<Buffer[]> {
  return batchBytes(log, 0n, log.logEndOffset + 100n)
}

/** A log of three batches, 0-2, 3-4 and 5-7 (log end 8), fully written and exposed. */
async function threeBatches(backend: LevelBackend): Promise<Buffer[]> {
  const log = await backend.log(0)
  const stored: Buffer[] = []
  for (const [i, records] of [3, 2, 3].entries()) {
    const input = producerBatch(`good-${i}`, records)
    stored.push(expectedStored(input, { baseOffset: log.logEndOffset, leaderEpoch: 0 }))
    await log.append(input, { leaderEpoch: 0 })
  }
  log.setHighWatermark(log.durableEndOffset)
  return stored
}

/** `batch` followed by bytes its batchLength does not count. */
function withTrailingBytes(batch: Buffer): Buffer {
  return Buffer.concat([batch, Buffer.alloc(5)])
}

/** A valid batch of `records` records as it would be stored at `baseOffset`. */
function storedAt(baseOffset: bigint, records: number, label = 'injected'): Buffer {
  return withBaseOffset(producerBatch(label, records), baseOffset)
}

describe('recovery on open', () => {
  // Each entry is what a torn write or a bad disk could leave past the recovery point: [key's last offset, value].
  const corruptions: { what: string; entry: () => [bigint, Buffer] }[] = [
    { what: 'a wrong CRC', entry: () => [9n, withFlippedRecordByte(storedAt(8n, 2))] },
    { what: 'a value cut short (torn write)', entry: () => [9n, storedAt(8n, 2).subarray(0, 70)] },
    { what: 'a value longer than its batchLength', entry: () => [9n, withTrailingBytes(storedAt(8n, 2))] },
    { what: 'a value shorter than a batch header', entry: () => [9n, Buffer.alloc(20, 7)] },
    { what: 'a gap in offsets', entry: () => [11n, storedAt(10n, 2)] },
    { what: 'offsets overlapping the last good batch', entry: () => [9n, storedAt(6n, 4)] },
    { what: 'a key that disagrees with the lastOffset', entry: () => [12n, storedAt(8n, 2)] },
    {
      what: 'a magic other than 2',
      entry: () => {
        const batch = storedAt(8n, 2)
        batch.writeInt8(1, 16)
        return [9n, batch]
      },
    },
  ]

  describe.each(corruptions)('cuts off a tail entry with $what', ({ entry }) => {
    it('never serves it, removes it, and appends from the last good offset', async () => {
      const backend = await open()
      const stored = await threeBatches(backend)
      const [lastOffset, value] = entry()
      const badKey = backend.rawLogKey(0, lastOffset)

      await backend.whileStopped((db) => db.put(badKey, value))

      const log = await backend.log(0)
      expect(log.logEndOffset).toBe(8n)
      expect(log.durableEndOffset).toBe(8n)
      expect(log.highWatermark).toBe(8n)
      expectBatches(await readLog(log, 0n, NO_LIMIT, 100n), stored)
      expectBatches(await scanAll(log), stored)
      expect((await backend.allKeys()).some((key) => key.equals(badKey))).toBe(false)

      const next = producerBatch('next', 2)
      const expected = expectedStored(next, { baseOffset: 8n, leaderEpoch: 0 })
      expect(await log.append(next, { leaderEpoch: 0 })).toEqual({ baseOffset: 8n, lastOffset: 9n })
      await backend.restart()
      const reopened = await backend.log(0)
      expect(reopened.logEndOffset).toBe(10n)
      expectBatches(await readLog(reopened, 0n, NO_LIMIT, 10n), [...stored, expected])
    })
  })

  it('cuts every entry after the first bad one, good or not', async () => {
    const backend = await open()
    const stored = await threeBatches(backend)

    await backend.whileStopped(async (db) => {
      await db.put(backend.rawLogKey(0, 9n), withFlippedRecordByte(storedAt(8n, 2)))
      await db.put(backend.rawLogKey(0, 11n), storedAt(10n, 2))
    })

    const log = await backend.log(0)
    expect(log.logEndOffset).toBe(8n)
    expectBatches(await scanAll(log), stored)
    const logKeys = (await backend.allKeys()).filter((key) => key.subarray(0, 5).toString() === '!log!')
    expect(logKeys).toEqual([2n, 4n, 7n].map((last) => backend.rawLogKey(0, last)))
  })

  it('keeps a complete, contiguous batch found past the recovery point', async () => {
    const backend = await open()
    const stored = await threeBatches(backend)
    const extra = storedAt(8n, 3, 'extra')

    await backend.whileStopped((db) => db.put(backend.rawLogKey(0, 10n), extra))

    const log = await backend.log(0)
    expect(log.logEndOffset).toBe(11n)
    expectBatches(await readLog(log, 0n, NO_LIMIT, 11n), [...stored, extra])
  })

  it('keeps a follower\'s batch past an offset gap and the recovery point when the state record written with it counts it', async () => {
    const backend = await open()
    const stored = await threeBatches(backend)
    const log = await backend.log(0)
    // A follower copying a compacted leader: offsets 8-19 were emptied there, its next batch is 20-22.
    const input = producerBatch('after-gap', 3)
    await log.append(input, { leaderEpoch: 0, baseOffset: 20n })
    const gapped = expectedStored(input, { baseOffset: 20n, leaderEpoch: 0 })
    // What a crash right after that write leaves: its state record (log end 23) with the recovery point before it.
    await backend.whileStopped(async (db) => {
      const state = packr.unpack((await db.get(backend.rawStateKey(0)))!) as Record<string, unknown>
      expect(state.logEndOffset).toBe(23n)
      await db.put(backend.rawStateKey(0), packr.pack({ ...state, recoveryPoint: 8n }))
    })

    const reopened = await backend.log(0)
    expect(reopened.logEndOffset).toBe(23n)
    expectBatches(await readLog(reopened, 0n, NO_LIMIT, 23n), [...stored, gapped])
  })

  it('clamps the high watermark and the epoch cache to the recovered log end', async () => {
    const backend = await open()
    const stored = await threeBatches(backend)
    // What a write torn between its state record and its batch would leave: a state that claims offsets 8-11 in
    // epoch 7, and a batch for them that fails its CRC.
    const claimed = {
      logStartOffset: 0n,
      logEndOffset: 12n,
      highWatermark: 12n,
      recoveryPoint: 8n,
      epochs: [
        { epoch: 0, startOffset: 0n },
        { epoch: 7, startOffset: 8n },
      ],
    }

    await backend.whileStopped(async (db) => {
      await db.put(backend.rawStateKey(0), packr.pack(claimed))
      await db.put(backend.rawLogKey(0, 11n), withFlippedRecordByte(storedAt(8n, 4)))
    })

    const log = await backend.log(0)
    expect(log.logEndOffset).toBe(8n)
    expect(log.highWatermark).toBe(8n)
    expect(log.epochCache).toEqual([{ epoch: 0, startOffset: 0n }])
    expectBatches(await readAll(log), stored)
  })

  it('checks from the log start when that lies inside a batch and past the recovery point', async () => {
    const backend = await open()
    const stored = await threeBatches(backend)
    await (await backend.log(0)).deleteBefore(4n)

    // A state whose recovery point (0) is below the log start (4, inside batch 3-4): recovery starts at the batch
    // that holds the log start and must accept it although it does not start there.
    await backend.whileStopped(async (db) => {
      const state = packr.unpack((await db.get(backend.rawStateKey(0)))!) as Record<string, unknown>
      await db.put(backend.rawStateKey(0), packr.pack({ ...state, recoveryPoint: 0n }))
      await db.put(backend.rawLogKey(0, 9n), withFlippedRecordByte(storedAt(8n, 2)))
    })

    const log = await backend.log(0)
    expect(log.logStartOffset).toBe(4n)
    expect(log.logEndOffset).toBe(8n)
    expectBatches(await readAll(log), stored.slice(1))
  })
})

describe('the time index', () => {
  /** Appends batches of `sizes` bytes or so (one record each, ten bytes of timestamp apart); returns their sizes. */
  async function appendSized(log: PartitionLog, sizes: number[]): Promise<number[]> {
    const stored: number[] = []
    for (const [i, size] of sizes.entries()) {
      const input = producerBatch(`s${i}`, 1, { valueBytes: size, timestamps: [BigInt(1000 + 10 * i)] })
      stored.push(input.length)
      await log.append(input, { leaderEpoch: 0 })
    }
    log.setHighWatermark(log.durableEndOffset)
    return stored
  }

  /** Where blocks end for batches of these sizes: after the batch that brings a block to 4096 bytes (index.interval.bytes). */
  function blockEnds(sizes: number[]): bigint[] {
    const ends: bigint[] = []
    let open = 0
    sizes.forEach((size, i) => {
      open += size
      if (open >= 4096) {
        ends.push(BigInt(i + 1))
        open = 0
      }
    })
    return ends
  }

  it('gets an entry whenever 4 KiB of batches have been appended since the last one, in the same write', async () => {
    const backend = await open()
    const sizes = await appendSized(await backend.log(0), [900, 1500, 3000, 200, 200, 5000, 100, 4000, 4000])

    expect(await backend.timeIndexOffsets(0)).toEqual(blockEnds(sizes))
  })

  it('loses the entries of the batches recovery cuts', async () => {
    const backend = await open()
    const sizes = await appendSized(await backend.log(0), [5000, 5000])
    const badKey = backend.rawLogKey(0, 2n)
    const badEntry = backend.rawTimeKey(0, 3n)

    // A batch past the recovery point that fails its CRC, and the entry written with it.
    await backend.whileStopped(async (db) => {
      await db.put(badKey, withFlippedRecordByte(storedAt(2n, 1)))
      await db.put(badEntry, Buffer.alloc(16))
    })

    const log = await backend.log(0)
    expect(log.logEndOffset).toBe(2n)
    expect(await backend.timeIndexOffsets(0)).toEqual(blockEnds(sizes))
    await appendSized(log, [5000])
    expect(await backend.timeIndexOffsets(0)).toEqual([1n, 2n, 3n])
  })

  it('is built on open for a log stored without one, with the same entries and the same answers', async () => {
    const backend = await open()
    const log = await backend.log(0)
    const sizes = await appendSized(log, Array.from({ length: 30 }, (_, i) => 300 + ((i * 737) % 2500)))
    const probes = [0n, 1005n, 1150n, 1151n, 1290n, 1291n]
    const answers = await Promise.all(probes.map((timestamp) => log.offsetForTimestamp(timestamp, below(30n))))
    const entries = await backend.timeIndexOffsets(0)
    expect(entries).toEqual(blockEnds(sizes))

    // As a node from before the index left it: no entries, and a state record without the index's state.
    await backend.whileStopped(async (db) => {
      for (const offset of entries) await db.del(backend.rawTimeKey(0, offset))
      const { timeIndex: _timeIndex, ...state } = packr.unpack((await db.get(backend.rawStateKey(0)))!) as Record<string, unknown>
      await db.put(backend.rawStateKey(0), packr.pack(state))
    })

    const rebuilt = await backend.log(0)
    expect(await backend.timeIndexOffsets(0)).toEqual(entries)
    expect(await Promise.all(probes.map((timestamp) => rebuilt.offsetForTimestamp(timestamp, below(30n))))).toEqual(answers)
    expect(answers.map((answer) => answer?.offset)).toEqual([0n, 1n, 15n, 16n, 29n, undefined])
  })
})

describe('the data directory', () => {
  it('can be opened by one LogStore at a time, and the second gets a StorageLockedError', async () => {
    const backend = await open()

    const error = await LogStore.open(backend.dataDir).then(
      () => null,
      (e: unknown) => e,
    )

    expect(error).toBeInstanceOf(StorageLockedError)
    expect((error as Error).message).toBe(`the data directory ${backend.dataDir} is already in use by another Brook process`)
    // The first store is unaffected, and the directory opens again once it is closed.
    await (await backend.log(0)).append(producerBatch('still-works', 1), { leaderEpoch: 0 })
    await backend.restart()
    expect((await backend.log(0)).logEndOffset).toBe(1n)
  })
})

describe('partition logs', () => {
  it('are one object per partition, even when asked for concurrently', async () => {
    const backend = await open()

    const [a, b] = await Promise.all([backend.log(0), backend.log(0)])
    const [c, d] = await Promise.all([
      backend.store.log(backend.topicId, 1, { create: false }),
      backend.store.log(backend.topicId, 1, { create: true }),
    ])

    expect(a).toBe(b)
    expect(c).toBe(d)
  })

  it('open with create: false on a partition that was never created is empty', async () => {
    const backend = await open()
    const log = await backend.store.log(randomUUID(), 0, { create: false })
    expect([log.logStartOffset, log.logEndOffset, log.highWatermark]).toEqual([0n, 0n, 0n])
  })
})

describe('the high-watermark checkpoint', () => {
  /** The high watermark in the partition's state record as stored now: what a restart after kill -9 finds. */
  async function storedHighWatermark(backend: LevelBackend, partition: number): Promise<bigint> {
    const raw = await backend.store['db'].db.get(backend.rawStateKey(partition))
    return (packr.unpack(raw!) as { highWatermark: bigint }).highWatermark
  }

  it('stores a high watermark that moved after the last write, and writes nothing for one that did not', async () => {
    const backend = await open()
    await threeBatches(backend)
    const idle = await backend.log(1)
    await idle.append(producerBatch('idle', 1), { leaderEpoch: 0 })
    idle.setHighWatermark(idle.durableEndOffset)
    await backend.store.checkpointHighWatermarks()
    // The high watermark moved after each log's last write (a follower learns it with the next fetch): only this
    // checkpoint, not a write of the log, puts it in the state record (Kafka's replication-offset-checkpoint).
    expect(await storedHighWatermark(backend, 0)).toBe(8n)
    expect(await storedHighWatermark(backend, 1)).toBe(1n)
    const writes = backend.writes()
    await backend.store.checkpointHighWatermarks()
    expect(backend.writes()).toBe(writes)
  })
})

describe('deleteTopic', () => {
  function topicRecord(name: string, topicId: string, partitions: number): TopicRecord {
    return { name, topicId, partitions, replicationFactor: 1, configs: {}, createdAtMs: 0 }
  }

  it('removes every key of the topic, including partitions its record does not list, and nothing else', async () => {
    const backend = await open()
    const store = backend.store
    const doomed = topicRecord('doomed', backend.topicId, 3)
    const kept = topicRecord('kept', randomUUID(), 1)
    await store.putTopic(doomed)
    await store.putTopic(kept)
    // Partition 3 exists on disk but not in the record, as after a crash in the middle of adding partitions.
    for (const p of [0, 1, 2, 3]) {
      await (await backend.log(p)).append(producerBatch(`doomed-${p}`, 2), { leaderEpoch: 0 })
    }
    const keptLog = await store.log(kept.topicId, 0, { create: true })
    await keptLog.append(producerBatch('kept', 2), { leaderEpoch: 0 })

    await store.deleteTopic(doomed)

    const doomedId = backend.topicIdBytes()
    expect((await backend.allKeys()).filter((key) => key.includes(doomedId))).toEqual([])
    expect((await store.listTopics()).map((t) => t.name)).toEqual(['kept'])
    await backend.restart()
    const keptAgain = await backend.store.log(kept.topicId, 0, { create: false })
    expect(valuesOf(await readAll(keptAgain))).toEqual(['kept/0', 'kept/1'])
    expect((await backend.allKeys()).filter((key) => key.includes(doomedId))).toEqual([])
  })

  /** The manual compactions LevelDB's own LOG records (one line per level of each compactRange). */
  const manualCompactions = (backend: LevelBackend): number => (readFileSync(join(backend.dataDir, 'db', 'LOG'), 'utf8').match(/Manual compaction/g) ?? []).length

  it('compacts no range for topics whose batches fill no table file: a test suite deletes thousands', async () => {
    const backend = await open()
    const before = manualCompactions(backend)
    for (let i = 0; i < 20; i++) {
      const small = topicRecord(`small-${i}`, randomUUID(), 1)
      await backend.store.putTopic(small)
      await (await backend.store.log(small.topicId, 0, { create: true })).append(producerBatch(`small-${i}`, 5), { leaderEpoch: 0 })
      await backend.store.deleteTopic(small)
    }
    expect(manualCompactions(backend)).toBe(before)
    expect(await backend.store.listTopics()).toEqual([])
  })

  it('compacts the range of a topic whose batches fill table files, so its disk space comes back at once', async () => {
    const backend = await open()
    const big = topicRecord('big', backend.topicId, 1)
    await backend.store.putTopic(big)
    const log = await backend.log(0)
    // Past LevelDB's 64 MiB write buffer, so that most of it is flushed to table files; random, so Snappy keeps it whole.
    for (let i = 0; i < 72; i++) {
      await log.append(encodeRecordBatch([{ key: Buffer.from('k'), value: randomBytes(1024 * 1024), timestamp: 1_700_000_000_000n }]), { leaderEpoch: 0 })
    }
    const db = join(backend.dataDir, 'db')
    const tableBytes = (): number => readdirSync(db).filter((file) => file.endsWith('.ldb')).reduce((sum, file) => sum + statSync(join(db, file)).size, 0)
    // Flushed and installed: the full write buffer's log file is removed once its table is in the MANIFEST.
    const flushed = (): boolean => tableBytes() >= 32 * 1024 * 1024 && readdirSync(db).filter((file) => file.endsWith('.log')).length === 1
    await waitFor('the first write buffer flushed to table files', flushed)
    await backend.store.deleteTopic(big)
    expect(tableBytes()).toBeLessThan(COMPACT_DELETED_TOPIC_BYTES)
    expect(manualCompactions(backend)).toBeGreaterThan(0)
  }, 60_000)

  it('leaves a recreated topic (a new topic id) empty', async () => {
    const backend = await open()
    const old = topicRecord('reborn', backend.topicId, 1)
    await backend.store.putTopic(old)
    await (await backend.log(0)).append(producerBatch('old', 3), { leaderEpoch: 0 })
    await backend.store.deleteTopic(old)

    const reborn = topicRecord('reborn', randomUUID(), 1)
    await backend.store.putTopic(reborn)
    const log = await backend.store.log(reborn.topicId, 0, { create: true })

    expect([log.logStartOffset, log.logEndOffset, log.highWatermark]).toEqual([0n, 0n, 0n])
    expectBatches(await readLog(log, 0n, NO_LIMIT, 100n), [])
    await log.append(producerBatch('new', 1), { leaderEpoch: 0 })
    await backend.restart()
    const reopened = await backend.store.log(reborn.topicId, 0, { create: false })
    expect(offsetsOf(await readAll(reopened))).toEqual(['0-0'])
    expect(valuesOf(await readAll(reopened))).toEqual(['new/0'])
  })
})

describe('a corrupt LevelDB block', () => {
  /** Every offset of `log` a reader gets fetching 64 KiB at a time from the start, as a consumer does; or the error. */
  async function fetchAll(log: PartitionLog): Promise<{ offsets: bigint[]; failure?: unknown }> {
    const offsets: bigint[] = []
    let next = log.logStartOffset
    try {
      while (next < log.logEndOffset) {
        const batches = await log.read(next, { maxBytes: 64 * 1024, upTo: log.logEndOffset, minOneMessage: true })
        if (batches.length === 0) break
        // Each batch's offsets, from its header (base offset at byte 0, last offset delta at byte 23).
        for (const batch of batches) {
          const base = batch.readBigInt64BE(0)
          for (let delta = 0; delta <= batch.readInt32BE(23); delta++) offsets.push(base + BigInt(delta))
        }
        next = offsets.at(-1)! + 1n
      }
      return { offsets }
    } catch (failure) {
      return { offsets, failure }
    }
  }

  it('makes a read of the batches it held fail with a StorageError naming the partition, never skips them', async () => {
    const backend = await open()
    const log = await backend.log(0)
    // About 4 MB of compressible values: LevelDB snappy-compresses its blocks, and one table holds them all.
    for (let i = 0; i < 400; i++) await log.append(producerBatch(`b${i}`, 10, { valueBytes: 1000 }), { leaderEpoch: 0 })
    // The reopen writes LevelDB's log out as a table; a reader gets every offset from it.
    await backend.restart()
    const whole = await fetchAll(await backend.log(0))
    expect(whole.failure).toBeUndefined()
    expect(whole.offsets).toEqual(Array.from({ length: 4000 }, (_, i) => BigInt(i)))
    await backend.store.close()
    damageLargestTable(backend.dataDir)
    backend.store = await LogStore.open(backend.dataDir)

    const { offsets, failure } = await fetchAll(await backend.log(0))
    expect(failure).toBeInstanceOf(StorageError)
    const [, from] = (failure as Error).message.match(new RegExp(`^partition 0 of topic ${backend.topicId}: LevelDB cannot read every batch of offsets (\\d+) to 3999: Corruption: `)) ?? []
    // Every batch before the corrupt block was read, with no gap; the read that starts at the block fails.
    expect(offsets.length).toBeGreaterThan(0)
    expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => BigInt(i)))
    expect(from).toBe(String(offsets.length))
  })
})
