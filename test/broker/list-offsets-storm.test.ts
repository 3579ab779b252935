/**
 * ListOffsets by timestamp reads inside the batch it finds, and a large gzip batch can inflate to tens of MiB: a
 * storm of such lookups once stalled every client of the node while the event loop inflated them. Here a storm on
 * partitions holding ~30 MiB-inflating gzip batches runs while a kafkajs admin keeps asking for Metadata: the
 * Metadata requests must be answered while the storm is still running (how fast is measured by the bench, not
 * asserted), and every lookup must still find the right record. A partition named twice in one request is
 * INVALID_REQUEST, as Kafka answers it (ReplicaManager.fetchOffset).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gzipSync } from 'node:zlib'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { connect, createTopic, producePartition, withClient } from '../helpers/kafka.js'
import { batchBytes, recordBytes } from '../helpers/wire.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../../protocol/messages/list-offsets.js'
import type { KafkaClient } from '../../client/kafka-client.js'

const TOPIC = 'large-gzip'
const PARTITIONS = 4
const RECORDS = 30
const INVALID_REQUEST = 42

/** Every partition of TOPIC at `timestamp`, in one ListOffsets v7 request. */
function lookup(client: KafkaClient, timestamp: bigint, partitions: number[] = [0, 1, 2, 3]): Promise<ListOffsetsResponse> {
  return client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: TOPIC, partitions: partitions.map((partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 })) }],
  })
}

describe('a ListOffsets storm over large compressed batches', () => {
  let broker: BrokerProcess
  let admin: Admin
  const base = BigInt(Date.now() - 600_000)

  beforeAll(async () => {
    broker = await startBroker()
    await createTopic(broker, TOPIC, { partitions: PARTITIONS })
    // Per partition: one gzip batch of 30 records of 1 MiB of zeros, one second apart; ~30 KB sent, ~30 MiB inflated.
    const records = Buffer.concat(
      Array.from({ length: RECORDS }, (_, i) => recordBytes({ offsetDelta: i, timestampDelta: i * 1000, value: Buffer.alloc(1024 * 1024) })),
    )
    const batch = batchBytes({ records: gzipSync(records), count: RECORDS, attributes: 1, baseTimestamp: base, maxTimestamp: base + BigInt((RECORDS - 1) * 1000) })
    await withClient(broker, async (client) => {
      for (let p = 0; p < PARTITIONS; p++) expect(await producePartition(client, TOPIC, p, batch)).toMatchObject({ errorCode: 0 })
    })
    admin = new Kafka({ clientId: 'metadata-watcher', brokers: [broker.address], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it("does not stop another client's Metadata requests from being answered, and finds every record", async () => {
    const clients = await Promise.all([connect(broker, { timeoutMs: 120_000 }), connect(broker, { timeoutMs: 120_000 }), connect(broker, { timeoutMs: 120_000 })])
    try {
      const target = base + 15_500n
      // 3 connections x 3 pipelined requests x 4 partitions: 36 lookups, each inflating ~30 MiB (seconds of work).
      const storm = Promise.all(clients.flatMap((client) => Array.from({ length: 3 }, () => lookup(client, target))))
      let stormRunning = true
      const stormDone = storm.finally(() => (stormRunning = false))
      let answeredDuringStorm = 0
      while (stormRunning) {
        const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] })
        expect(metadata.topics[0]!.partitions).toHaveLength(PARTITIONS)
        if (stormRunning) answeredDuringStorm++
      }
      const answers = await stormDone
      expect(answeredDuringStorm).toBeGreaterThan(0)
      for (const answer of answers) {
        expect(answer.topics[0]!.partitions.map((p) => [p.errorCode, p.offset, p.timestamp])).toEqual(
          Array.from({ length: PARTITIONS }, () => [0, 16n, base + 16_000n]),
        )
      }
    } finally {
      for (const client of clients) client.close()
    }
  })

  it('a partition named 30 times in one request is INVALID_REQUEST at each mention, and searched not once', async () => {
    await withClient(broker, async (client) => {
      const answer = await lookup(client, base, [...Array.from({ length: 30 }, () => 0), 1])
      const partitions = answer.topics[0]!.partitions
      expect(partitions.slice(0, 30).every((p) => p.partitionIndex === 0 && p.errorCode === INVALID_REQUEST)).toBe(true)
      expect(partitions[30]).toMatchObject({ partitionIndex: 1, errorCode: 0, offset: 0n, timestamp: base })
    })
  })
})
