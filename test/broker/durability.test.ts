/**
 * Durability on one node: a broker killed with SIGKILL while kafkajs produces (acks=1) comes back on the same data
 * directory and port with every acknowledged record, each exactly once and in the order it was sent, and never
 * serves a torn batch (DESIGN.md, Storage: "a torn or partial write is detected and cut off, never served").
 *
 * Each partition has its own sequential sender, so a partition's log must hold that sender's values in increasing
 * order with no repeats; a value may be missing only if its send was never acknowledged (it was in flight at the kill).
 * Retries are off so that nothing is sent twice: the check is then exact.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'

const TOPIC = 'durable'
const PARTITIONS = 4
const ROUNDS = 3
/** Records acknowledged per partition before each kill; the kill then lands while sends are in flight. */
const ACKED_PER_ROUND = 600
const RECORDS_PER_SEND = 20

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('kill -9 during acks=1 produce', () => {
  let broker: BrokerProcess
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('keeps every acknowledged record exactly once and in order, and serves no torn batch', async () => {
    broker = await startBroker()
    await createTopic(broker, TOPIC, { partitions: PARTITIONS })
    const acked: number[][] = Array.from({ length: PARTITIONS }, () => [])
    const nextValue = new Array<number>(PARTITIONS).fill(0)

    for (let round = 1; round <= ROUNDS; round++) {
      const kafka = new Kafka({ clientId: 'durability', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
      const producer = kafka.producer({ retry: { retries: 0 } })
      await producer.connect()
      let killed = false
      const senders = Array.from({ length: PARTITIONS }, async (_, partition) => {
        while (!killed) {
          const values = Array.from({ length: RECORDS_PER_SEND }, () => nextValue[partition]!++)
          try {
            await producer.send({
              topic: TOPIC,
              acks: 1,
              messages: values.map((value) => ({ partition, key: `p${partition}`, value: String(value) })),
            })
            acked[partition]!.push(...values)
          } catch {
            return // the broker is gone: this send was not acknowledged
          }
        }
      })
      await until(() => acked.every((values) => values.length >= round * ACKED_PER_ROUND), `round ${round} acknowledgements`)
      await broker.kill()
      killed = true
      await Promise.all(senders)
      await producer.disconnect()
      broker = await broker.restart()
    }

    await withClient(broker, async (client) => {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        // readPartition checks every batch's length and CRC-32C as it splits the fetched bytes.
        const { batches, highWatermark } = await readPartition(client, TOPIC, partition)
        let expectedBase = 0n
        for (const { header } of batches) {
          expect(header.baseOffset, `partition ${partition}: offsets are contiguous`).toBe(expectedBase)
          expectedBase = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n
        }
        expect(expectedBase).toBe(highWatermark)
        const stored = recordsOf(batches).map((record) => Number(record.value!.toString()))
        const increasing = stored.every((value, i) => i === 0 || value > stored[i - 1]!)
        expect(increasing, `partition ${partition}: values in send order, none twice`).toBe(true)
        const present = new Set(stored)
        const lost = acked[partition]!.filter((value) => !present.has(value))
        expect(lost, `partition ${partition}: acknowledged records missing after restart`).toEqual([])
      }
    })

    // A real consumer sees the same: kcat reads every partition to the end without a decoding error.
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-e', '-q', '-f', '%p %s\n'])
    const seen = stdout.trim().split('\n').filter(Boolean).length
    expect(seen).toBeGreaterThanOrEqual(acked.reduce((sum, values) => sum + values.length, 0))
  })
})
