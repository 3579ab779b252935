/**
 * Compaction reads and rebuilds large compressed batches in the worker pool (broker/batch-inflater.ts) rather than on
 * the event loop; what a reader sees afterwards is what Kafka's cleaner leaves: the newest record of each key at its
 * original offset, in a batch that keeps its codec.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gzipSync } from 'node:zlib'
import { startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { batchBytes, recordBytes } from '../helpers/wire.js'
import { waitFor } from '../helpers/wait.js'

const TOPIC = 'devices'
const GZIP = 1

/** A gzip batch of one record per key, `value-<version>-<key>` padded to 200 bytes: ~250 KB inflated for 1000 keys. */
function gzipBatch(keys: number[], version: number): Buffer {
  const records = Buffer.concat(
    keys.map((key, i) => recordBytes({ offsetDelta: i, key: Buffer.from(`device-${key}`), value: Buffer.from(`value-${version}-${key}`.padEnd(200, '.')) })),
  )
  return batchBytes({ records: gzipSync(records), count: keys.length, attributes: GZIP, baseTimestamp: BigInt(Date.now()) })
}

describe('compaction of large compressed batches', () => {
  let broker: BrokerProcess

  beforeAll(async () => {
    broker = await startConfiguredBroker({ logRetentionCheckIntervalMs: 200 })
    // A cleaner run between the second and third produce compacts the first batch alone; the second is then a third
    // of the log, below Kafka's default min.cleanable.dirty.ratio (0.5), and would wait forever: keep the ratio low so
    // the outcome does not depend on when the cleaner runs.
    await createTopic(broker, TOPIC, { configs: { 'cleanup.policy': 'compact', 'min.cleanable.dirty.ratio': '0.01' } })
  })
  afterAll(async () => {
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it('keeps the newest record of each key at its offset, in gzip batches rebuilt off the event loop', async () => {
    const all = Array.from({ length: 1000 }, (_, i) => i)
    await withClient(broker, async (client) => {
      expect(await producePartition(client, TOPIC, 0, gzipBatch(all, 1))).toMatchObject({ errorCode: 0, baseOffset: 0n })
      expect(await producePartition(client, TOPIC, 0, gzipBatch(all.slice(0, 500), 2))).toMatchObject({ errorCode: 0, baseOffset: 1000n })
      // The newest batch is never compacted; this one only closes the log.
      const closing = batchBytes({ records: recordBytes({ offsetDelta: 0, key: Buffer.from('closing'), value: Buffer.from('x') }), count: 1, baseTimestamp: BigInt(Date.now()) })
      expect(await producePartition(client, TOPIC, 0, closing)).toMatchObject({ errorCode: 0, baseOffset: 1500n })

      const { batches } = await waitFor('compaction of the first batch', async () => {
        const read = await readPartition(client, TOPIC, 0)
        return read.batches[0]!.header.recordsCount === 500 ? read : undefined
      })
      // The first batch keeps its offset range and its codec, and holds the keys the second did not overwrite.
      expect(batches.map((b) => [b.header.baseOffset, b.header.lastOffsetDelta, b.header.attributes & 0x07])).toEqual([
        [0n, 999, GZIP],
        [1000n, 499, GZIP],
        [1500n, 0, 0],
      ])
      const records = recordsOf(batches)
      expect(records.map((r) => [r.offset, r.key!.toString(), r.value!.toString().replace(/\.+$/, '')])).toEqual([
        ...all.slice(500).map((key) => [BigInt(key), `device-${key}`, `value-1-${key}`]),
        ...all.slice(0, 500).map((key) => [1000n + BigInt(key), `device-${key}`, `value-2-${key}`]),
        [1500n, 'closing', 'x'],
      ])
    })
  })
})
