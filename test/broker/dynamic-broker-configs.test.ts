/**
 * Dynamic broker configs on a single node: the broker defaults of topic configs (`message.max.bytes`,
 * `log.retention.ms`, ...) set while the node runs through AlterConfigs and IncrementalAlterConfigs on a BROKER
 * resource, for every node ("", `kafka-configs.sh --entity-default`) or for this one (its id), as Kafka's
 * DynamicLogConfig takes them. Checked through real clients against a real node: the next produce and the next
 * retention pass follow them, a topic's own setting still wins, DescribeConfigs names their sources and synonyms in
 * Kafka's order, they survive a restart, and bad ones are refused with Kafka's error codes, changing nothing;
 * `brook cluster configs` shows and changes them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { Admin as PlatformaticAdmin } from '@platformatic/kafka'
import { ErrorCode } from '../../protocol/errors.js'
import { ConfigOperation } from '../../protocol/constants.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { withClient } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import { brook } from '../cli/run-brook.js'
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../protocol/messages/alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../protocol/messages/describe-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'

/** DescribeConfigsResponse.json configSource, written out as the spec has them. */
const TOPIC_CONFIG = 1
const DYNAMIC_BROKER_CONFIG = 2
const DYNAMIC_DEFAULT_BROKER_CONFIG = 3
const STATIC_BROKER_CONFIG = 4
const DEFAULT_CONFIG = 5

describe('dynamic broker configs on a single node', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin

  const connect = async (): Promise<void> => {
    kafka = new Kafka({ brokers: [broker.address], clientId: 'dynamic-broker-configs', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    admin = kafka.admin()
    await admin.connect()
  }

  beforeAll(async () => {
    // A static log.retention.ms (the test helper's -1) under the dynamic ones, and retention passes every 300 ms.
    broker = await startBroker({ args: ['--log-retention-check-interval-ms', '300'] })
    await connect()
    await admin.createTopics({
      topics: [
        { topic: 'plain', numPartitions: 1 },
        { topic: 'own-limit', numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '5000' }] },
        { topic: 'aged', numPartitions: 1 },
      ],
    })
  }, 60_000)

  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
  })

  /** Sends one record of `bytes` bytes to `topic`: 'ok' or the kafkajs error type. */
  async function produce(topic: string, bytes: number): Promise<string> {
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
    await producer.connect()
    try {
      await producer.send({ topic, messages: [{ value: 'x'.repeat(bytes) }] })
      return 'ok'
    } catch (error) {
      return (error as { type?: string }).type ?? String(error)
    } finally {
      await producer.disconnect()
    }
  }

  async function describeTopic(topic: string, name: string) {
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }], includeSynonyms: true })
    const entry = resources[0]!.configEntries.find((e) => e.configName === name)!
    return { value: entry.configValue, source: entry.configSource, synonyms: entry.configSynonyms.map((s) => [s.configName, s.configValue, s.configSource]) }
  }

  /** DescribeConfigs of a BROKER resource, on the wire (kafkajs refuses the empty name of the default resource). */
  async function describeBroker(resourceName: string) {
    const answer = await withClient(broker, (client) =>
      client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName, configurationKeys: null }],
        includeSynonyms: false,
        includeDocumentation: false,
      }),
    )
    return new Map(answer.results[0]!.configs.map((e) => [e.name, { value: e.value, source: e.configSource, readOnly: e.readOnly }]))
  }

  /** AlterConfigs of one BROKER resource, on the wire, as kafka-configs.sh --entity-default sends it: the resource's error code. */
  async function alterWhole(resourceName: string, configs: { name: string; value: string }[]): Promise<number> {
    const answer = await withClient(broker, (client) =>
      client.request<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, 2, { resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName, configs }], validateOnly: false }),
    )
    return answer.responses[0]!.errorCode
  }

  /** IncrementalAlterConfigs of one BROKER resource, on the wire; the resource's error code and message. */
  async function incremental(resourceName: string, configs: { name: string; configOperation: number; value: string | null }[], validateOnly = false) {
    const answer = await withClient(broker, (client) =>
      client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName, configs }],
        validateOnly,
      }),
    )
    return answer.responses[0]!
  }

  it('a message.max.bytes set for every node (AlterConfigs of the empty name, kafka-configs.sh --entity-default) governs the next produce of topics without their own', async () => {
    expect(await produce('plain', 3000)).toBe('ok')
    expect(await alterWhole('', [{ name: 'message.max.bytes', value: '2000' }])).toBe(ErrorCode.NONE)
    expect(await produce('plain', 3000)).toBe('MESSAGE_TOO_LARGE')
    expect(await produce('plain', 1000)).toBe('ok')
    // A topic's own max.message.bytes still wins.
    expect(await produce('own-limit', 3000)).toBe('ok')

    expect(await describeTopic('plain', 'max.message.bytes')).toEqual({
      value: '2000',
      source: DYNAMIC_DEFAULT_BROKER_CONFIG,
      synonyms: [
        ['message.max.bytes', '2000', DYNAMIC_DEFAULT_BROKER_CONFIG],
        ['message.max.bytes', '1048588', DEFAULT_CONFIG],
      ],
    })
    expect((await describeTopic('own-limit', 'max.message.bytes')).source).toBe(TOPIC_CONFIG)
    // The default resource describes what is set there, and only that; the node's own describes it in force.
    expect([...(await describeBroker(''))]).toEqual([['message.max.bytes', { value: '2000', source: DYNAMIC_DEFAULT_BROKER_CONFIG, readOnly: false }]])
    expect((await describeBroker('1')).get('message.max.bytes')).toEqual({ value: '2000', source: DYNAMIC_DEFAULT_BROKER_CONFIG, readOnly: false })
    expect((await describeBroker('1')).get('num.partitions')).toMatchObject({ readOnly: true })
  })

  it("one set for this node (@platformatic/kafka incrementalAlterConfigs) wins over every node's, and both survive a restart", async () => {
    const platformatic = new PlatformaticAdmin({ clientId: 'dynamic-broker-configs', bootstrapBrokers: [broker.address], retries: 0 })
    try {
      await platformatic.incrementalAlterConfigs({
        resources: [{ resourceType: ConfigResourceTypes.BROKER, resourceName: '1', configs: [{ name: 'message.max.bytes', configOperation: ConfigOperation.SET, value: '4000' }] }],
      })
    } finally {
      await platformatic.close()
    }
    expect(await produce('plain', 3000)).toBe('ok')
    expect(await produce('plain', 4500)).toBe('MESSAGE_TOO_LARGE')
    const expected = {
      value: '4000',
      source: DYNAMIC_BROKER_CONFIG,
      synonyms: [
        ['message.max.bytes', '4000', DYNAMIC_BROKER_CONFIG],
        ['message.max.bytes', '2000', DYNAMIC_DEFAULT_BROKER_CONFIG],
        ['message.max.bytes', '1048588', DEFAULT_CONFIG],
      ],
    }
    expect(await describeTopic('plain', 'max.message.bytes')).toEqual(expected)

    await admin.disconnect()
    await broker.stop()
    broker = await broker.restart()
    await connect()
    expect(await describeTopic('plain', 'max.message.bytes')).toEqual(expected)
    expect(await produce('plain', 4500)).toBe('MESSAGE_TOO_LARGE')

    // Removed from this node: every node's applies again.
    expect(await incremental('1', [{ name: 'message.max.bytes', configOperation: ConfigOperation.DELETE, value: null }])).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(await produce('plain', 3000)).toBe('MESSAGE_TOO_LARGE')
    expect((await describeTopic('plain', 'max.message.bytes')).source).toBe(DYNAMIC_DEFAULT_BROKER_CONFIG)
  }, 60_000)

  it("a log.retention.ms set for this node (kafkajs alterConfigs) is the retention of topics without their own at the next pass, over the node's flag", async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    try {
      await producer.send({ topic: 'aged', messages: [{ value: 'an hour old', timestamp: String(Date.now() - 3_600_000) }, { value: 'also' , timestamp: String(Date.now() - 3_600_000) }] })
    } finally {
      await producer.disconnect()
    }
    // The node's own -1 keeps them for ever.
    expect(await describeTopic('aged', 'retention.ms')).toMatchObject({ value: '-1', source: STATIC_BROKER_CONFIG })
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configEntries: [{ name: 'log.retention.ms', value: '60000' }] }] })
    expect((await describeTopic('aged', 'retention.ms')).synonyms).toEqual([
      ['log.retention.ms', '60000', DYNAMIC_BROKER_CONFIG],
      ['log.retention.ms', '-1', STATIC_BROKER_CONFIG],
      ['log.retention.ms', '604800000', DEFAULT_CONFIG],
    ])
    await waitFor('the hour-old records deleted by retention', async () => {
      const [offsets] = await admin.fetchTopicOffsets('aged')
      return offsets!.low === '2' && offsets!.high === '2'
    })
  })

  it('refuses a config that cannot change while the node runs, an unknown one, a bad value, conflicting compaction lags and another broker, changing nothing', async () => {
    const before = await describeBroker('')
    const set = (name: string, value: string) => [{ name, configOperation: ConfigOperation.SET, value }]
    expect(await incremental('', set('num.partitions', '3'))).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: expect.stringContaining('Cannot update these configs dynamically: num.partitions') })
    expect(await incremental('', set('no.such.config', '3'))).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: "unknown broker config 'no.such.config'" })
    expect(await incremental('', set('retention.ms', '3'))).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
    expect(await incremental('', set('message.max.bytes', 'lots'))).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: expect.stringContaining("invalid value 'lots' for message.max.bytes") })
    expect(await incremental('', [...set('log.cleaner.min.compaction.lag.ms', '10'), ...set('log.cleaner.max.compaction.lag.ms', '5')])).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
    expect(await incremental('7', set('message.max.bytes', '100'))).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: "this is broker 1, not '7'" })
    expect(await incremental('node-1', set('message.max.bytes', '100'))).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST })
    expect(await incremental('', set('message.max.bytes', '100'), true)).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(await describeBroker('')).toEqual(before)
    expect(await produce('plain', 1000)).toBe('ok')
  })

  it('brook cluster configs shows and changes them, for every node and for one, with one-line errors', async () => {
    const cli = (...args: string[]) => brook(['cluster', 'configs', ...args, '--bootstrap-server', broker.address])
    expect(await cli('--set', 'log.retention.ms=86400000', '--delete', 'message.max.bytes')).toEqual({ code: 0, stdout: 'Completed updating default config for brokers in the cluster.\n', stderr: '' })
    expect((await cli()).stdout).toBe('Default configs for brokers in the cluster are:\n  log.retention.ms=86400000\n')
    expect(await cli('--id', '1', '--set', 'message.max.bytes=4000')).toMatchObject({ code: 0, stdout: 'Completed updating config for broker 1.\n' })
    // The node's own list: every dynamic config it uses, with where each comes from (its own retention from the kafkajs test above).
    expect((await cli('--id', '1')).stdout).toBe('Dynamic configs for broker 1 are:\n  log.retention.ms=60000 (DYNAMIC_BROKER_CONFIG)\n  message.max.bytes=4000 (DYNAMIC_BROKER_CONFIG)\n')
    expect(await produce('plain', 3000)).toBe('ok')
    expect(await cli('--set', 'num.partitions=3')).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^brook: cannot alter the default broker configs: INVALID_REQUEST \(Cannot update these configs dynamically: num.partitions .*\)\n$/) })
    expect(await cli('--id', '1', '--delete', 'log.retension.ms')).toMatchObject({ code: 1, stderr: "brook: 'log.retension.ms' is no broker config that can change while nodes run\n" })
    expect(await cli('--id', '9')).toMatchObject({ code: 1, stderr: 'brook: cannot read the broker configs of node 9: there is no node 9 (the cluster\'s nodes: 1)\n' })
  })
})
