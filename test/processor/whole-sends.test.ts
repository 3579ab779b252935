/**
 * WholeSends (runtime/whole-sends.ts) on a broker process: the partitions it places keyed and unkeyed messages on
 * are where a read finds them, the answer of a send names each of them, and an answer that misses one (what kafkajs
 * 2.2.4 resolves a send with when a partition's leader moved to a broker that had already answered it) makes `check`
 * throw IncompleteSendError naming the partition and `unanswered` return exactly that partition's messages.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Message } from 'kafkajs'
import { IncompleteSendError, WholeSends, unanswered } from '../../processor/runtime/whole-sends.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic } from './helpers.js'
import { partitionForKey } from '../../client/partitioner.js'

let setting: KafkajsBroker
beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'whole-sends' })
  await setting.admin.createTopics({ topics: [{ topic: 'whole-a', numPartitions: 4 }, { topic: 'whole-b', numPartitions: 3 }] })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

test('messages land on the partitions placed, and a send\'s answer names every one of them', async () => {
  const sends = new WholeSends(setting.admin)
  await sends.learn(['whole-a', 'whole-b'])
  const topicMessages: { topic: string; messages: Message[] }[] = [
    { topic: 'whole-a', messages: Array.from({ length: 40 }, (_, i) => ({ key: `key-${i}`, value: `a${i}` })) },
    { topic: 'whole-b', messages: Array.from({ length: 9 }, (_, i) => ({ key: null, value: `b${i}` })) },
  ]
  const targets = sends.place(topicMessages)
  const answer = await setting.producer.sendBatch({ topicMessages, acks: -1 })
  expect(() => sends.check(targets, answer)).not.toThrow()
  expect(unanswered(topicMessages, answer)).toEqual([])
  // Keyed messages spread over all four partitions; unkeyed ones go round the three of whole-b.
  expect([...targets].filter((t) => t.startsWith('whole-a-')).sort()).toEqual(['whole-a-0', 'whole-a-1', 'whole-a-2', 'whole-a-3'])
  expect([...targets].filter((t) => t.startsWith('whole-b-')).sort()).toEqual(['whole-b-0', 'whole-b-1', 'whole-b-2'])
  for (const { topic, messages } of topicMessages) {
    const records = await readTopic(setting.kafka, topic, (r) => r.length >= messages.length)
    const placed = new Map(messages.map((m) => [String(m.value), m.partition]))
    for (const record of records) expect({ value: record.value, partition: record.partition }).toEqual({ value: record.value, partition: placed.get(record.value!) })
  }
})

test('a message with a 600 KB key is placed at once, where Kafka\'s partitioner puts the key, and is read there', async () => {
  // kafkajs's own murmur2 is quadratic in the key's length (minutes of CPU for this key, the event loop held).
  const sends = new WholeSends(setting.admin)
  await sends.learn(['whole-a'])
  const key = 'k'.repeat(600_000)
  const topicMessages: { topic: string; messages: Message[] }[] = [{ topic: 'whole-a', messages: [{ key, value: 'large-key' }] }]
  const targets = sends.place(topicMessages)
  expect([...targets]).toEqual([`whole-a-${partitionForKey(Buffer.from(key), 4)}`])
  const answer = await setting.producer.sendBatch({ topicMessages, acks: -1 })
  expect(() => sends.check(targets, answer)).not.toThrow()
  const records = await readTopic(setting.kafka, 'whole-a', (r) => r.some((record) => record.value === 'large-key'))
  expect(records.filter((record) => record.value === 'large-key').map((record) => record.partition)).toEqual([partitionForKey(Buffer.from(key), 4)])
})

test('an answer that misses a partition: check names it, unanswered returns its messages', async () => {
  const sends = new WholeSends(setting.admin)
  await sends.learn(['whole-a'])
  const topicMessages = [{ topic: 'whole-a', messages: Array.from({ length: 12 }, (_, i): Message => ({ key: `k${i}`, value: `v${i}` })) }]
  const targets = sends.place(topicMessages)
  const answer = await setting.producer.sendBatch({ topicMessages, acks: -1 })
  const dropped = answer[0]!
  const partial = answer.filter((r) => r !== dropped)
  expect(() => sends.check(targets, partial)).toThrow(IncompleteSendError)
  expect(() => sends.check(targets, partial)).toThrow(`no result for whole-a-${dropped.partition} (`)
  const left = unanswered(topicMessages, partial)
  expect(left).toEqual([{ topic: 'whole-a', messages: topicMessages[0]!.messages.filter((m) => m.partition === dropped.partition) }])
  expect(left[0]!.messages.length).toBeGreaterThan(0)
})
