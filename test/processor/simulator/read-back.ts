/**
 * Reads a whole topic back with a kafkajs group consumer, the way a pipeline would see it: every record from the log
 * start to the high watermark as of the call, per partition in offset order, with key, parsed value, record
 * timestamp and headers.
 */
import type { Admin, Kafka } from 'kafkajs'
import type { Reading } from '../../../processor/simulator/index.js'
import { waitFor } from '../../helpers/wait.js'

export interface Consumed {
  partition: number
  offset: number
  key: string
  reading: Reading
  /** The record timestamp. */
  timestamp: number
  headers: Record<string, string>
}

let groups = 0

export async function readTopic(kafka: Kafka, admin: Admin, topic: string): Promise<Consumed[]> {
  const offsets = await admin.fetchTopicOffsets(topic)
  const expected = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0)
  const consumer = kafka.consumer({ groupId: `read-back-${process.pid}-${groups++}`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  const read: Consumed[] = []
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const headers: Record<string, string> = {}
          for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value)
          read.push({
            partition: batch.partition,
            offset: Number(message.offset),
            key: message.key!.toString(),
            reading: JSON.parse(message.value!.toString()) as Reading,
            timestamp: Number(message.timestamp),
            headers,
          })
        }
      },
    })
    const counts = (): string => offsets.map((p) => `partition ${p.partition}: ${read.filter((r) => r.partition === p.partition).length} of ${Number(p.high) - Number(p.low)}`).join(', ')
    await waitFor(`${expected} records of ${topic}`, () => read.length >= expected, { timeoutMs: 60_000 }).catch((error: Error) => {
      throw new Error(`${error.message}; read ${counts()}`)
    })
  } finally {
    await consumer.disconnect()
  }
  return read.sort((a, b) => a.partition - b.partition || a.offset - b.offset)
}
