/**
 * The replication fault tests' history checker (bench/history.ts, shared with bench/nemesis.ts) and `readAll`, which
 * reads a partition whole through a kafkajs consumer for it.
 */
import type { ConsumerConfig, Kafka } from 'kafkajs'
import { waitFor } from '../../helpers/wait.js'

export { History, type HistoryCheck } from '../../../bench/history.js'

/**
 * Reads `topic`'s `partition` from the start with a kafkajs consumer of a new group until it has read at least
 * `until` records or 30 s pass without one more once the consumer has joined its group (the checker then says what
 * is missing; a reader that never joins fails the wait after 120 s). `consumer` adds to the
 * consumer's settings; its fetches wait 200 ms for records (kafkajs's 5 s would hold up its stop once it has read all).
 */
export async function readAll(
  client: Kafka,
  topic: string,
  partition: number,
  until: number,
  consumer: Partial<ConsumerConfig> = {},
): Promise<{ offset: bigint; value: string }[]> {
  const reader = client.consumer({ maxWaitTimeInMs: 200, ...consumer, groupId: `readers-${Date.now()}-${Math.random()}` })
  const records: { offset: bigint; value: string }[] = []
  await reader.connect()
  try {
    await reader.subscribe({ topic, fromBeginning: true })
    await reader.run({
      eachMessage: async (payload) => {
        if (payload.partition === partition) records.push({ offset: BigInt(payload.message.offset), value: payload.message.value!.toString() })
      },
    })
    let lastCount = -1
    let lastProgressMs = Date.now()
    // The 30 s without progress count from the reader's latest join: a group that takes long to form (a cluster
    // restarted a moment ago) is then reported as such, not as acknowledged records that were never read.
    let joined = false
    reader.on(reader.events.GROUP_JOIN, () => {
      joined = true
      lastProgressMs = Date.now()
    })
    await waitFor(`${until} records read from ${topic}-${partition}, or no progress for 30 s after the reader joined its group`, () => {
      if (records.length !== lastCount) {
        lastCount = records.length
        lastProgressMs = Date.now()
      }
      return records.length >= until || (joined && Date.now() - lastProgressMs > 30_000)
    }, { timeoutMs: 120_000 })
  } finally {
    await reader.disconnect()
  }
  return records
}
