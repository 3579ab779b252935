/**
 * Aborted transactions skipped by the pipeline's read_committed consumers (runtime/aborted-transactions.ts), on a
 * broker process. Two transactional producers write one partition in turn and both abort, as two tasks' producers
 * writing one repartition partition do when their instance is killed; a third commits. A consumer that starts its
 * fetches inside both aborted transactions (its committed offset there, or a fetch cut by its size) must be handed
 * only the committed record. kafkajs 2.2.4 alone hands it the second producer's first aborted record: a trial of two
 * instances killed -9 in turns counted a reading twice in a hopping window behind a `keyBy`, in exactly_once.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import type { Kafka } from 'kafkajs'
import { TopologyBuilder, runPipeline } from '../../processor/index.js'
import { abortedTransactionsSkipped, skipAbortedTransactions } from '../../processor/runtime/aborted-transactions.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { stateDir } from './helpers.js'

const TOPIC = 'interleaved-aborts'

let setting: KafkajsBroker
beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'aborted-transactions' })
  await setting.admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] })
  const producers = ['p1', 'p2', 'p3'].map((id) => setting.kafka.producer({ transactionalId: `aborted-${id}`, idempotent: true, maxInFlightRequests: 1 }))
  for (const producer of producers) await producer.connect()
  const [p1, p2, p3] = producers as [typeof producers[0], typeof producers[0], typeof producers[0]]
  const first = await p1.transaction()
  const second = await p2.transaction()
  await first.send({ topic: TOPIC, messages: [{ partition: 0, value: 'p1 aborted' }] }) // offset 0
  await second.send({ topic: TOPIC, messages: [{ partition: 0, value: 'p2 aborted, first' }] }) // offset 1
  await second.send({ topic: TOPIC, messages: [{ partition: 0, value: 'p2 aborted, second' }] }) // offset 2
  await first.abort() // ABORT marker at offset 3
  await second.abort() // ABORT marker at offset 4
  const third = await p3.transaction()
  await third.send({ topic: TOPIC, messages: [{ partition: 0, value: 'p3 committed' }] }) // offset 5
  await third.commit()
  for (const producer of producers) await producer.disconnect()
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

/** What a read_committed group consumer is handed from `offset` up to the committed record. */
async function readCommittedFrom(kafka: Kafka, offset: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `aborted-reader-${offset}`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [TOPIC] })
    const values: string[] = []
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            values.push(`${message.offset} ${String(message.value)}`)
            if (String(message.value) === 'p3 committed') resolve()
          },
        })
        .then(() => consumer.seek({ topic: TOPIC, partition: 0, offset: String(offset) }), reject)
    })
    return values
  } finally {
    await consumer.disconnect()
  }
}

test('a pipeline started in the process makes its kafkajs consumers skip them', async () => {
  expect(abortedTransactionsSkipped()).toBe(false)
  const b = new TopologyBuilder()
  b.stream('aborted-pipeline-in').to('aborted-pipeline-out')
  const pipeline = await runPipeline(b.build(), { applicationId: 'aborted-pipeline', bootstrapServers: setting.broker.address, stateDir: stateDir(), log: () => {} })
  await pipeline.stop()
  expect(abortedTransactionsSkipped()).toBe(true)
})

test('a read_committed consumer that starts inside two aborted transactions is handed only the committed record', async () => {
  skipAbortedTransactions()
  expect(abortedTransactionsSkipped()).toBe(true)
  for (const offset of [0, 1, 2]) expect(await readCommittedFrom(setting.kafka, offset)).toEqual(['5 p3 committed'])
})
