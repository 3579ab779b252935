/**
 * librdkafka 2.0.2's AdminClient through confluent-kafka-python (Debian's python3-confluent-kafka; skipped, saying
 * why, without it) against one real broker process.
 *
 * A topic named twice in one CreateTopics, CreatePartitions or DeleteTopics request is answered once, as Kafka's
 * controller does (ControllerApis): librdkafka reads an answer that names a topic twice as a parse failure of the
 * whole request ("Broker returned topic ... multiple times") and fails every topic of it with _BAD_MSG, the topics
 * the broker did create included.
 *
 * Dynamic broker configs set with its AlterConfigs on the node's BROKER resource are described back with their
 * source, and the node's produce follows them (librdkafka 2.0 refuses the default resource's empty name itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { confluentKafkaMissing, fixtureAnswers } from '../helpers/confluent-kafka.js'
import { partitionsOf } from '../helpers/kafka.js'
import { Kafka, logLevel } from 'kafkajs'

const missing = confluentKafkaMissing()
if (missing !== null) console.log(`confluent-kafka-python admin test skipped: ${missing}`)

interface TopicAnswer {
  call: string
  topic: string
  error: string | null
  message: string | null
}

describe.skipIf(missing !== null)('librdkafka\'s AdminClient against one node', () => {
  let broker: BrokerProcess

  beforeAll(async () => {
    broker = await startBroker()
  })

  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  /** Runs confluent-topics.py's calls, each a request naming the comma-separated topics given. */
  const topicCalls = (calls: [string, string][]) => fixtureAnswers<TopicAnswer>('confluent-topics.py', [broker.address, ...calls.flat()])

  it('a topic named twice in one request is refused once, and the request\'s other topics are answered as done', async () => {
    const answers = await topicCalls([
      ['create', 'twice,made,twice'],
      ['grow', 'made,made'],
      ['grow', 'made'],
      ['delete', 'made,made'],
    ])
    const duplicate = { error: 'INVALID_REQUEST', message: 'Duplicate topic name.' }
    expect(answers).toEqual([
      { call: 'create', topic: 'twice', ...duplicate },
      { call: 'create', topic: 'made', error: null, message: null },
      { call: 'grow', topic: 'made', ...duplicate },
      { call: 'grow', topic: 'made', error: null, message: null },
      // librdkafka sends DeleteTopics v1, whose answer carries no message before v5: it says the code's own words.
      { call: 'delete', topic: 'made', error: 'INVALID_REQUEST', message: 'Broker: Invalid request' },
    ])
    expect(await partitionsOf(broker, 'twice')).toEqual([])
    expect((await partitionsOf(broker, 'made')).length).toBe(2)
  })

  it("sets this node's dynamic broker configs (AlterConfigs of its id), described with their source, which the next produce follows", async () => {
    const answers = await fixtureAnswers('confluent-broker-configs.py', [broker.address, '1', 'message.max.bytes=2000', 'log.retention.ms=86400000'])
    expect(answers).toEqual([
      { call: 'alter', error: null, message: null },
      { call: 'describe', configs: { 'message.max.bytes': ['2000', 'DYNAMIC_BROKER_CONFIG', false], 'log.retention.ms': ['86400000', 'DYNAMIC_BROKER_CONFIG', false] } },
    ])
    const refused = await fixtureAnswers('confluent-broker-configs.py', [broker.address, '1', 'num.partitions=4'])
    expect(refused[0]).toMatchObject({ call: 'alter', error: 'INVALID_REQUEST' })

    const producer = new Kafka({ brokers: [broker.address], clientId: 'broker-configs', logLevel: logLevel.NOTHING, retry: { retries: 0 } }).producer()
    await producer.connect()
    try {
      await expect(producer.send({ topic: 'made', messages: [{ value: 'x'.repeat(2500) }] })).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' })
      await producer.send({ topic: 'made', messages: [{ value: 'x'.repeat(1500) }] })
    } finally {
      await producer.disconnect()
    }
  })
})
