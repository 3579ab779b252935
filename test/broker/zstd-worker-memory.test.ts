/**
 * zstd's WebAssembly heap grows to the largest compression its thread has done and never shrinks: the worker that
 * recompressed a large batch at a high compression.zstd.level is retired afterwards (broker/batch-inflater.ts), so the
 * broker process gives that memory back, and the next batch is recompressed by a fresh worker. Against a broker
 * process, with Brook's wire client producing and reading the stored batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { batchBytes, recordBytes } from '../helpers/wire.js'

const TOPIC = 'zstd-memory'
const ZSTD = 4
const MB = 1024 * 1024

/** The broker process's resident memory, from /proc. */
function rssBytes(broker: BrokerProcess): number {
  const line = readFileSync(`/proc/${broker.child.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!
  return Number(line.split(/\s+/)[1]) * 1024
}

describe('zstd recompression memory', () => {
  let broker: BrokerProcess

  beforeAll(async () => {
    broker = await startConfiguredBroker({})
    await createTopic(broker, TOPIC, { configs: { 'compression.type': 'zstd', 'compression.zstd.level': '22', 'max.message.bytes': String(12 * MB) } })
  })
  afterAll(async () => {
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it('a worker that compressed an 8 MB batch at level 22 gives its WebAssembly heap back, and the next batch is still stored zstd', async () => {
    const values = [randomBytes(8 * MB), Buffer.from('small')]
    await withClient(broker, async (client) => {
      // A first small batch starts the pool's worker and its zstd compressor, so that the baseline includes them.
      expect((await producePartition(client, TOPIC, 0, batchBytes({ records: recordBytes({ offsetDelta: 0, value: Buffer.from('warm') }), count: 1 }))).errorCode).toBe(0)
      const before = rssBytes(broker)
      for (const value of values) {
        const answer = await producePartition(client, TOPIC, 0, batchBytes({ records: recordBytes({ offsetDelta: 0, value }), count: 1 }))
        expect(answer.errorCode).toBe(0)
      }
      // Level 22 on 8 MB takes ~150 MB of zstd's tables and buffers; a worker that kept them would hold them still
      // (+343 MB measured without retiring it). What stays is the batch itself in the produce path, the batch cache
      // and LevelDB's memtable: +45-52 MB measured.
      expect(rssBytes(broker) - before).toBeLessThan(150 * MB)
      const { batches } = await readPartition(client, TOPIC, 0)
      expect(batches.map((b) => b.header.attributes & 0x07)).toEqual([ZSTD, ZSTD, ZSTD])
      expect(recordsOf(batches).map((r) => r.value?.length)).toEqual([4, 8 * MB, 5])
      // Level 22 on 8 MB is seconds of CPU on a free core: a clean-clone run under load (load average 11) took more
      // than 20 s.
    }, { timeoutMs: 100_000 })
  })
})
