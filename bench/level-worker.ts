/**
 * Worker: the physical limit of LevelDB for Brook's data, in a process of its own. Writes the pool's batches
 * round-robin over `partitions` under keys shaped like Brook's log keys (topicId 16 | partition 4 | lastOffset 8),
 * several batches per chained-batch write (the fast API: `db.batch().put()...write()`), into a fresh `level`
 * database; reads every value back with one iterator (`nextv`, `highWaterMarkBytes` large, `fillCache: false`: the
 * fast read path) at once, on the same handle, while LevelDB may still be compacting what was just written (as Brook's
 * first fetch does); then closes, reopens, waits until the compaction the reopen starts is done, and reads again (as
 * Brook's fetch after a restart does). Reports one JSON line per phase.
 *
 * Brook adds to this, per write, a msgpack state record per partition and, per batch, header checks and CRC; those
 * are the broker's overhead, so they are not here.
 */
import { Level } from 'level'
import { At } from '../protocol/record-batch.js'
import { batchCount, loadPool } from './batches.js'
import { startCpuMeter, throughput, waitUntilIdle } from './measure.js'
import { brookLogKeys } from './interleaved.js'
import { report, workerInput } from './worker.js'

export interface LevelWorkerInput {
  dir: string
  poolFile: string
  totalBytes: number
  partitions: number
  batchesPerWrite: number
  levelOptions: Record<string, unknown>
}

const READ_HIGH_WATER_MARK_BYTES = 64 * 1024 * 1024
const READ_NEXTV = 1000

const input = workerInput<LevelWorkerInput>()
const pool = loadPool(input.poolFile)
const total = batchCount(input.totalBytes, pool)
const keys = brookLogKeys(input.partitions, pool.recordsPerBatch)

const options = { ...input.levelOptions, keyEncoding: 'buffer', valueEncoding: 'buffer' } as const

type Db = Level<Buffer, Buffer>

async function write(db: Db): Promise<void> {
  let bytes = 0
  const meter = startCpuMeter({ worker: process.pid })
  const start = performance.now()
  for (let n = 0; n < total; ) {
    const batch = db.batch()
    for (const end = Math.min(total, n + input.batchesPerWrite); n < end; n++) {
      const value = pool.batches[n % pool.batches.length]!
      batch.put(keys.next(n % input.partitions).key, value)
      bytes += value.length
    }
    await batch.write()
  }
  const seconds = (performance.now() - start) / 1000
  report({ phase: 'write', ...throughput(bytes, total * pool.recordsPerBatch, seconds), cpu: meter?.() })
}

async function read(db: Db, phase: string, extra: Record<string, number> = {}): Promise<void> {
  let bytes = 0
  let records = 0
  const meter = startCpuMeter({ worker: process.pid })
  const start = performance.now()
  const iterator = db.values({ highWaterMarkBytes: READ_HIGH_WATER_MARK_BYTES, fillCache: false })
  for (;;) {
    const values = await iterator.nextv(READ_NEXTV)
    if (values.length === 0) break
    for (const value of values) {
      bytes += value.length
      records += value.readInt32BE(At.recordsCount)
    }
  }
  await iterator.close()
  const seconds = (performance.now() - start) / 1000
  report({ phase, ...throughput(bytes, records, seconds), cpu: meter?.(), ...extra })
}

const db: Db = new Level<Buffer, Buffer>(input.dir, options)
await db.open()
await write(db)
await read(db, 'read')
await db.close()
const reopened: Db = new Level<Buffer, Buffer>(input.dir, options)
await reopened.open()
const settledMs = await waitUntilIdle(process.pid)
await read(reopened, 'readReopened', { settledMs })
await reopened.close()
