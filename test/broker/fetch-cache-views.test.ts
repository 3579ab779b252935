/**
 * A Fetch answer served from the batch cache sends views of the cache's slabs, not copies (storage/batch-cache.ts,
 * `CacheLease`). Those bytes must stay what was appended until the answer has left the socket, however long a slow
 * client takes to read it and however much is appended meanwhile: here the cache is 8 MiB (four slabs of 2 MiB), a
 * client that does not read holds an answer of 6 MiB in the broker, and 12 MiB more go through the ring before it
 * reads. Every batch must arrive intact (its CRC-32C checked, every value as produced).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, fetchPartitionRequest, producePartition, recordsOf, splitBatches } from '../helpers/kafka.js'
import { RawConnection } from '../helpers/wire.js'
import { until } from '../cli/run-brook.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { decodeResponseFrame, encodeRequestFrame } from '../../protocol/frame.js'
import { fetch, type FetchResponse } from '../../protocol/messages/fetch.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'

const MiB = 1024 * 1024
const VALUE_BYTES = 64 * 1024
const RECORDS_PER_BATCH = 4

/** Batch `n`: four 64 KiB values, each filled with a byte of its own (n * 4 + i, mod 251). */
function batch(n: number): Buffer {
  return encodeRecordBatch(Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ key: null, value: Buffer.alloc(VALUE_BYTES, (n * RECORDS_PER_BATCH + i) % 251), headers: [] })))
}

function fetchFrame(topic: string, fetchOffset: bigint, maxBytes: number): Buffer {
  return Buffer.concat(encodeRequestFrame(fetch, 11, 1, 'slow-reader', fetchPartitionRequest({ topic, partition: 0, offset: fetchOffset, maxBytes })))
}

describe('a Fetch answer sent from the batch cache', () => {
  let broker: BrokerProcess
  let client: KafkaClient

  beforeAll(async () => {
    broker = await startBroker({ args: ['--cache-max-bytes', String(8 * MiB)] })
    client = await connect(broker)
    await createTopic(broker, 'views', { partitions: 1 })
  })

  afterAll(async () => {
    await client?.close()
    await broker?.stop()
    broker?.cleanup()
  })

  it('arrives intact at a client that reads it only after the cache has turned over twice', async () => {
    // 24 batches of 256 KiB: 6 MiB, all of it in the cache's slabs.
    for (let n = 0; n < 24; n++) expect((await producePartition(client, 'views', 0, batch(n), { acks: 1 })).errorCode).toBe(0)

    const reader = await RawConnection.open(broker.port)
    try {
      reader.pause()
      reader.send(fetchFrame('views', 0n, 16 * MiB))
      // The answer has started to arrive: the broker has read it, and holds what the kernel's buffers could not take.
      await until(() => reader.unreadBytes > 0, 'the start of the Fetch answer')

      // 48 batches more (12 MiB) while the answer waits: every slab of the ring is come round to at least once.
      for (let n = 24; n < 72; n++) expect((await producePartition(client, 'views', 0, batch(n), { acks: 1 })).errorCode).toBe(0)

      reader.resume()
      const { body } = decodeResponseFrame<FetchResponse>(fetch, 11, await reader.nextFrame(60_000))
      const answer = body.responses[0]!.partitions[0]!
      expect(answer.errorCode).toBe(0)
      // splitBatches checks each batch's CRC-32C, as a consumer does.
      const records = recordsOf(splitBatches(answer.records))
      expect(records.length).toBe(24 * RECORDS_PER_BATCH)
      records.forEach((record, i) => {
        expect(record.offset).toBe(BigInt(i))
        expect(record.value!.equals(Buffer.alloc(VALUE_BYTES, i % 251))).toBe(true)
      })
    } finally {
      reader.destroy()
    }
  })
})
