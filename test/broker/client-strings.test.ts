/**
 * Client strings at the protocol's 32,767-byte limit, where a single request used to end the broker process: admin
 * handlers quoted the client's name in an error message, the message outgrew a protocol string, the response encoder
 * threw and nothing caught it. Each request here is now answered with Kafka's error code and a short message, the
 * process stays up, and no handler needed the last-resort path (which logs an ERROR line).
 *
 * kafkajs sends the non-flexible versions; Brook's own wire client the flexible ones (to read the errorMessage
 * kafkajs does not surface); hand-built bytes what no client sends (one topic named twice in one CreateTopics).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, withClient } from '../helpers/kafka.js'
import { Bytes, RawConnection, apiVersionsV0, parseApiVersionsV0, requestFrame } from '../helpers/wire.js'
import { waitFor } from '../helpers/wait.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../protocol/messages/describe-configs.js'
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../protocol/messages/alter-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'
import { createPartitions, type CreatePartitionsRequest, type CreatePartitionsResponse } from '../../protocol/messages/create-partitions.js'

const INVALID_REQUEST = 42
const INVALID_CONFIG = 40
const UNKNOWN_TOPIC_OR_PARTITION = 3
const INVALID_TOPIC_EXCEPTION = 17
/** The longest string the protocol carries. */
const LONGEST = 32_767
const TOPIC_RESOURCE = 2
const BROKER_RESOURCE = 4

/** A message that names the client's string briefly: far shorter than the string, and saying how long it was. */
function expectBrief(message: string | null | undefined, length = LONGEST): void {
  expect(message).toBeTypeOf('string')
  expect(message!.length).toBeLessThan(300)
  expect(message).toContain(`(${length} bytes)`)
}

describe('client strings at the protocol limit', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  const long = 'x'.repeat(LONGEST)

  beforeAll(async () => {
    broker = await startBroker({ args: ['--group-initial-rebalance-delay-ms', '0'] })
    await createTopic(broker, 'present')
    kafka = new Kafka({ brokers: [broker.address], clientId: 'client-strings', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    admin = kafka.admin()
    await admin.connect()
  })
  afterEach(async () => {
    expect(broker.child.exitCode, `the broker exited:\n${broker.output().slice(-3000)}`).toBeNull()
    const raw = await RawConnection.open(broker.port)
    raw.send(apiVersionsV0(7))
    expect(parseApiVersionsV0(await raw.nextFrame())).toMatchObject({ correlationId: 7, errorCode: 0 })
    raw.destroy()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  describe('kafkajs (non-flexible versions)', () => {
    it('CreateTopics with a 32,767-byte config name or value: INVALID_CONFIG', async () => {
      for (const entry of [{ name: long, value: '1' }, { name: 'retention.ms', value: long }]) {
        const failure = await admin.createTopics({ topics: [{ topic: 'never-created', configEntries: [entry] }] }).catch((error) => error)
        expect(failure.errors?.[0]?.type, String(failure)).toBe('INVALID_CONFIG')
      }
      expect(await admin.listTopics()).not.toContain('never-created')
    })

    it('DescribeConfigs of a topic with a 32,767-byte name: INVALID_TOPIC_EXCEPTION (Kafka\'s Topic.validate)', async () => {
      const failure = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: long }], includeSynonyms: false }).catch((error) => error)
      expect(failure.type, String(failure)).toBe('INVALID_TOPIC_EXCEPTION')
    })

    it('AlterConfigs with a 32,767-byte topic name, config name or value: INVALID_TOPIC_EXCEPTION or INVALID_CONFIG', async () => {
      const alter = (name: string, configEntries: { name: string; value: string }[]) =>
        admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name, configEntries }] }).catch((error) => error)
      expect((await alter(long, [{ name: 'retention.ms', value: '1000' }])).type).toBe('INVALID_TOPIC_EXCEPTION')
      expect((await alter('present', [{ name: long, value: '1' }])).type).toBe('INVALID_CONFIG')
      expect((await alter('present', [{ name: 'cleanup.policy', value: long }])).type).toBe('INVALID_CONFIG')
    })

    it('CreatePartitions of a topic with a 32,767-byte name: UNKNOWN_TOPIC_OR_PARTITION', async () => {
      const failure = await admin.createPartitions({ topicPartitions: [{ topic: long, count: 3 }] }).catch((error) => error)
      expect(failure.type, String(failure)).toBe('UNKNOWN_TOPIC_OR_PARTITION')
    })

    it('a consumer whose client id fills a protocol string joins its group; its member id stays short', async () => {
      const clientId = 'c'.repeat(LONGEST)
      const consumerKafka = new Kafka({ brokers: [broker.address], clientId, logLevel: logLevel.NOTHING })
      const consumer = consumerKafka.consumer({ groupId: 'long-client-id', sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
      let memberId = ''
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => (memberId = payload.memberId))
      try {
        await consumer.connect()
        await consumer.subscribe({ topics: ['present'] })
        await consumer.run({ eachMessage: async () => undefined })
        await waitFor('the consumer to join', () => memberId !== '')
        const [group] = (await admin.describeGroups(['long-client-id'])).groups
        expect(group!.members).toHaveLength(1)
        expect(group!.members[0]!.clientId).toBe(clientId)
        expect(group!.members[0]!.memberId).toBe(memberId)
        expect(memberId.length).toBeLessThan(300)
      } finally {
        await consumer.disconnect()
      }
    })

    it('a consumer whose group id fills a protocol string joins; the broker names the group briefly in its log', async () => {
      const groupId = 'g'.repeat(LONGEST)
      const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
      let joined = false
      consumer.on(consumer.events.GROUP_JOIN, () => (joined = true))
      try {
        await consumer.connect()
        await consumer.subscribe({ topics: ['present'] })
        await consumer.run({ eachMessage: async () => undefined })
        await waitFor('the consumer to join', () => joined)
      } finally {
        await consumer.disconnect()
      }
      const lines = broker.output().split('\n')
      expect(lines.filter((line) => line.includes(`'${'g'.repeat(64)}…' (${LONGEST} bytes)`))).not.toEqual([])
      expect(lines.filter((line) => line.length > 1000)).toEqual([])
    })
  })

  describe('Brook\'s wire client (flexible versions): the error message is short and gives the length', () => {
    it('CreateTopics v7 with a 32,767-byte config name, config value, or a topic named twice', async () => {
      await withClient(broker, async (client) => {
        const create = (topics: CreateTopicsRequest['topics']) =>
          client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, { topics, timeoutMs: 5000, validateOnly: false })
        const topic = (name: string, configs: { name: string; value: string }[] = []) => ({ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs })
        const byName = await create([topic('never-created', [{ name: long, value: '1' }])])
        expect(byName.topics[0]).toMatchObject({ errorCode: INVALID_CONFIG })
        expectBrief(byName.topics[0]!.errorMessage)
        const byValue = await create([topic('never-created', [{ name: 'retention.ms', value: long }])])
        expect(byValue.topics[0]).toMatchObject({ errorCode: INVALID_CONFIG })
        expectBrief(byValue.topics[0]!.errorMessage)
        // Answered once, as Kafka's ControllerApis answers a name given twice.
        const twice = await create([topic(long), topic(long)])
        expect(twice.topics.map((t) => [t.errorCode, t.errorMessage])).toEqual([[INVALID_REQUEST, 'Duplicate topic name.']])
      })
    })

    it('DescribeConfigs v4 of a topic, and of a broker, with a 32,767-byte name', async () => {
      await withClient(broker, async (client) => {
        const response = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
          resources: [
            { resourceType: TOPIC_RESOURCE, resourceName: long, configurationKeys: null },
            { resourceType: BROKER_RESOURCE, resourceName: long, configurationKeys: null },
          ],
          includeSynonyms: false,
          includeDocumentation: false,
        })
        expect(response.results.map((r) => r.errorCode)).toEqual([INVALID_TOPIC_EXCEPTION, INVALID_REQUEST])
        for (const result of response.results) expectBrief(result.errorMessage)
      })
    })

    it('AlterConfigs v2 and IncrementalAlterConfigs v1 with 32,767-byte names', async () => {
      await withClient(broker, async (client) => {
        const legacy = await client.request<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, 2, {
          resources: [
            { resourceType: TOPIC_RESOURCE, resourceName: long, configs: [] },
            { resourceType: TOPIC_RESOURCE, resourceName: 'present', configs: [{ name: long, value: '1' }, { name: long, value: '2' }] },
          ],
          validateOnly: true,
        })
        expect(legacy.responses.map((r) => r.errorCode)).toEqual([INVALID_TOPIC_EXCEPTION, INVALID_REQUEST])
        for (const result of legacy.responses) expectBrief(result.errorMessage)
        const incremental = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
          resources: [{ resourceType: TOPIC_RESOURCE, resourceName: 'present', configs: [{ name: long, configOperation: 0, value: '1' }] }],
          validateOnly: true,
        })
        expect(incremental.responses[0]).toMatchObject({ errorCode: INVALID_CONFIG })
        expectBrief(incremental.responses[0]!.errorMessage)
      })
    })

    it('CreatePartitions v3 of a topic with a 32,767-byte name', async () => {
      await withClient(broker, async (client) => {
        const response = await client.request<CreatePartitionsRequest, CreatePartitionsResponse>(createPartitions, 3, {
          topics: [{ name: long, count: 3, assignments: null }],
          timeoutMs: 5000,
          validateOnly: false,
        })
        expect(response.results[0]).toMatchObject({ errorCode: UNKNOWN_TOPIC_OR_PARTITION })
        expectBrief(response.results[0]!.errorMessage)
      })
    })
  })

  it('the request that ended the process, as bytes: CreateTopics v0 naming one 32,767-byte topic twice', async () => {
    // CreateTopicsRequest v0: [name, numPartitions, replicationFactor, [assignments], [configs]], timeoutMs.
    const topic = new Bytes().string(long).int32(1).int16(1).int32(0).int32(0).build()
    const body = new Bytes().int32(2).raw(topic).raw(topic).int32(5000).build()
    const connection = await RawConnection.open(broker.port)
    connection.send(requestFrame({ apiKey: 19, apiVersion: 0, correlationId: 3 }, body))
    // CreateTopicsResponse v0: correlationId, [name, errorCode].
    const answer = await connection.nextFrame()
    expect(answer.readInt32BE(0)).toBe(3)
    // One answer for the name given twice, as Kafka's ControllerApis gives.
    expect(answer.readInt32BE(4)).toBe(1)
    expect(answer.readInt16BE(10 + LONGEST)).toBe(INVALID_REQUEST)
    connection.destroy()
  })

  it('a compact string longer than 32,767 bytes is refused like any undecodable request: the connection closes', async () => {
    // DescribeGroups v5 (flexible): groups = compact array of one compact string of 40,000 bytes, then the tags.
    const length = 40_000
    const body = new Bytes().uvarint(2).uvarint(length + 1).raw(Buffer.alloc(length, 0x67)).int8(0).uvarint(0).build()
    const connection = await RawConnection.open(broker.port)
    connection.send(requestFrame({ apiKey: 15, apiVersion: 5, correlationId: 1, flexible: true }, body))
    expect(await connection.closedWithin()).toBe(true)
  })
})
