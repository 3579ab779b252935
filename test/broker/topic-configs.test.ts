/**
 * Topic configs are parsed once, when set, into typed values; an unknown name is INVALID_CONFIG naming it, never a
 * silent default. Parsing is checked on its own (the typed values, the broker defaults, each refusal), then through
 * real clients against a broker process: kafkajs's createTopics and alterConfigs (AlterConfigs) and
 * @platformatic/kafka's incrementalAlterConfigs refuse unknown names (kafkajs conflicting compaction lags too), a
 * changed max.message.bytes governs the next produce, DescribeConfigs keeps Kafka's names, sources and defaults, and
 * the configs survive a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { Admin as PlatformaticAdmin } from '@platformatic/kafka'
import { parseTopicConfig, TOPIC_CONFIGS, topicDefaultsProblem, type TopicDefaults } from '../../broker/topic-configs.js'
import { DEFAULT_CONFIG } from '../../broker/config.js'
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { withClient } from '../helpers/kafka.js'
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../protocol/messages/alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../protocol/messages/describe-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'

const NODE_DEFAULTS: TopicDefaults = DEFAULT_CONFIG
/** DescribeConfigsResponse.json configSource, written out as the spec has them. */
const TOPIC_CONFIG = 1
const STATIC_BROKER_CONFIG = 4
const DEFAULT_CONFIG_SOURCE = 5

function refusal(overrides: Record<string, string | null>): KafkaError {
  try {
    parseTopicConfig(overrides, NODE_DEFAULTS)
  } catch (error) {
    if (error instanceof KafkaError) return error
    throw error
  }
  throw new Error(`${JSON.stringify(overrides)} was accepted`)
}

describe('parsing topic configs', () => {
  it('gives every config a typed value: Kafka\'s defaults when nothing is set', () => {
    const config = parseTopicConfig({}, NODE_DEFAULTS)
    expect(config).toMatchObject({
      cleanupPolicy: { delete: true, compact: false },
      compressionType: null,
      deleteRetentionMs: 86_400_000,
      maxMessageBytes: 1_048_588,
      messageTimestampType: 'CreateTime',
      messageTimestampAfterMaxMs: 3_600_000,
      minCleanableDirtyRatio: 0.5,
      minInsyncReplicas: 1,
      retentionBytes: -1,
      retentionMs: 604_800_000,
      uncleanLeaderElectionEnable: false,
      overrides: {},
    })
    // Long.MAX_VALUE ("no limit") stays larger than any time.
    expect(config.messageTimestampBeforeMaxMs).toBeGreaterThan(Date.now() * 1000)
    expect(config.described.map((c) => c.name)).toEqual(TOPIC_CONFIGS.map((def) => def.name))
    expect(config.described.every((c) => c.source === DEFAULT_CONFIG_SOURCE)).toBe(true)
  })

  it('parses what is set, and keeps it as set for storage and DescribeConfigs', () => {
    const overrides = { 'cleanup.policy': 'compact, delete', 'max.message.bytes': '2048', 'message.timestamp.type': 'LogAppendTime', 'retention.ms': '-1' }
    const config = parseTopicConfig(overrides, NODE_DEFAULTS)
    expect(config).toMatchObject({
      cleanupPolicy: { delete: true, compact: true },
      maxMessageBytes: 2048,
      messageTimestampType: 'LogAppendTime',
      retentionMs: -1,
      overrides,
    })
    expect(config.described.find((c) => c.name === 'max.message.bytes')).toMatchObject({ value: '2048', source: TOPIC_CONFIG })
  })

  it('trims numbers and booleans and reads booleans in any case, as Kafka\'s ConfigDef.parseType does; a string is taken as it is', () => {
    const overrides = { 'retention.ms': ' 100 ', 'min.cleanable.dirty.ratio': '0.25\t', 'unclean.leader.election.enable': ' TRUE' }
    expect(parseTopicConfig(overrides, NODE_DEFAULTS)).toMatchObject({ retentionMs: 100, minCleanableDirtyRatio: 0.25, uncleanLeaderElectionEnable: true, overrides })
    expect(refusal({ 'message.timestamp.type': ' LogAppendTime' })).toMatchObject({ code: ErrorCode.INVALID_CONFIG, message: "invalid value ' LogAppendTime' for message.timestamp.type: must be one of CreateTime, LogAppendTime" })
    expect(refusal({ 'retention.ms': ' ' })).toMatchObject({ message: "invalid value ' ' for retention.ms: must be a whole number" })
    // A leading + as Java's Long.parseLong and Integer.parseInt take it.
    expect(parseTopicConfig({ 'retention.ms': '+5', 'max.message.bytes': '+2048' }, NODE_DEFAULTS)).toMatchObject({ retentionMs: 5, maxMessageBytes: 2048 })
    expect(refusal({ 'retention.ms': '+-5' })).toMatchObject({ message: "invalid value '+-5' for retention.ms: must be a whole number" })
  })

  it('takes the node\'s message.max.bytes and timestamp bounds as defaults when they differ from Kafka\'s', () => {
    const config = parseTopicConfig({}, { ...NODE_DEFAULTS, messageMaxBytes: 4096, logMessageTimestampAfterMaxMs: 1000 })
    expect(config).toMatchObject({ maxMessageBytes: 4096, messageTimestampAfterMaxMs: 1000 })
    expect(config.described.find((c) => c.name === 'max.message.bytes')).toMatchObject({ value: '4096', source: STATIC_BROKER_CONFIG })
    expect(config.described.find((c) => c.name === 'message.timestamp.before.max.ms')).toMatchObject({ source: DEFAULT_CONFIG_SOURCE })
  })

  it('takes the node\'s defaults of the other configs under their broker names (log.cleanup.policy), below the topic\'s own setting', () => {
    const defaults: TopicDefaults = { ...NODE_DEFAULTS, topicConfigDefaults: { 'log.cleanup.policy': 'compact', 'log.message.timestamp.type': 'LogAppendTime', 'min.insync.replicas': '2' } }
    const config = parseTopicConfig({ 'min.insync.replicas': '1' }, defaults)
    expect(config).toMatchObject({ cleanupPolicy: { compact: true, delete: false }, messageTimestampType: 'LogAppendTime', minInsyncReplicas: 1 })
    expect(config.overrides).toEqual({ 'min.insync.replicas': '1' })
    const described = new Map(config.described.map((c) => [c.name, c]))
    expect(described.get('cleanup.policy')).toMatchObject({
      value: 'compact',
      source: STATIC_BROKER_CONFIG,
      synonyms: [
        { name: 'log.cleanup.policy', value: 'compact', source: STATIC_BROKER_CONFIG },
        { name: 'log.cleanup.policy', value: 'delete', source: DEFAULT_CONFIG_SOURCE },
      ],
    })
    expect(described.get('min.insync.replicas')).toMatchObject({ value: '1', source: TOPIC_CONFIG })
    expect(described.get('segment.ms')).toMatchObject({ value: '604800000', source: DEFAULT_CONFIG_SOURCE })
  })

  it('takes dynamic broker configs over the node\'s settings, this node\'s over every node\'s, and lists every level as synonyms in Kafka\'s order', () => {
    const defaults: TopicDefaults = {
      ...NODE_DEFAULTS,
      logRetentionMs: 1000,
      topicConfigDefaults: { 'log.cleanup.policy': 'compact' },
      dynamic: { cluster: { 'log.retention.ms': '2000', 'log.cleanup.policy': 'delete,compact' }, broker: { 'log.retention.ms': '3000' } },
    }
    const config = parseTopicConfig({}, defaults)
    expect(config).toMatchObject({ retentionMs: 3000, cleanupPolicy: { compact: true, delete: true } })
    const described = new Map(config.described.map((c) => [c.name, c]))
    expect(described.get('retention.ms')).toMatchObject({
      value: '3000',
      source: 2, // DYNAMIC_BROKER_CONFIG
      synonyms: [
        { name: 'log.retention.ms', value: '3000', source: 2 },
        { name: 'log.retention.ms', value: '2000', source: 3 }, // DYNAMIC_DEFAULT_BROKER_CONFIG
        { name: 'log.retention.ms', value: '1000', source: STATIC_BROKER_CONFIG },
        { name: 'log.retention.ms', value: '604800000', source: DEFAULT_CONFIG_SOURCE },
      ],
    })
    expect(described.get('cleanup.policy')).toMatchObject({ value: 'delete,compact', source: 3 })
    // The topic's own setting still comes first.
    expect(parseTopicConfig({ 'retention.ms': '5' }, defaults).retentionMs).toBe(5)
  })

  it('checks the node\'s topic config defaults by each config\'s rule and the rule across them, naming the broker setting', () => {
    expect(topicDefaultsProblem({ 'log.cleanup.policy': 'compact,delete', 'compression.type': 'zstd', 'unclean.leader.election.enable': 'TRUE' })).toBeNull()
    expect(topicDefaultsProblem({ 'log.cleanup.policy': 'shred' })).toBe("log.cleanup.policy must be a comma-separated list of delete, compact, not 'shred'")
    expect(topicDefaultsProblem({ 'min.insync.replicas': '0' })).toBe("min.insync.replicas must be at least 1, not '0'")
    // Kafka 4.0's rule for a value being set (KIP-1030) holds for a node's default too.
    expect(topicDefaultsProblem({ 'log.segment.bytes': '1000' })).toMatch(/^log\.segment\.bytes must be at least 1048576/)
    expect(topicDefaultsProblem({ 'log.cleaner.min.compaction.lag.ms': '10', 'log.cleaner.max.compaction.lag.ms': '5' })).toBe(
      'log.cleaner.min.compaction.lag.ms (10) must not be greater than log.cleaner.max.compaction.lag.ms (5)',
    )
    // A topic config's own name where Kafka's broker name differs, or one of the numeric settings: not taken here.
    expect(topicDefaultsProblem({ 'cleanup.policy': 'compact' })).toBe("cleanup.policy is no topic config's default")
    expect(topicDefaultsProblem({ 'log.retention.ms': '5' })).toBe("log.retention.ms is no topic config's default")
  })

  it('reads an empty cleanup.policy as neither delete nor compact, as Kafka reads an empty LIST config: batches kept for ever', () => {
    for (const value of ['', ' ']) {
      const config = parseTopicConfig({ 'cleanup.policy': value }, NODE_DEFAULTS)
      expect(config.cleanupPolicy).toEqual({ delete: false, compact: false })
      expect(config.overrides).toEqual({ 'cleanup.policy': value })
    }
  })

  it('refuses an unknown name, a missing value and a value its rule refuses, naming the config', () => {
    expect(refusal({ 'retention.minutes': '5' })).toMatchObject({ code: ErrorCode.INVALID_CONFIG, message: "unknown topic config 'retention.minutes'" })
    expect(refusal({ 'retention.ms': null })).toMatchObject({ code: ErrorCode.INVALID_CONFIG, message: "config 'retention.ms' needs a value" })
    expect(refusal({ 'max.message.bytes': '' })).toMatchObject({ code: ErrorCode.INVALID_CONFIG, message: "invalid value '' for max.message.bytes: must be a whole number" })
    expect(refusal({ 'cleanup.policy': 'shred' })).toMatchObject({ message: "invalid value 'shred' for cleanup.policy: must be a comma-separated list of delete, compact" })
    // An empty item is refused; an empty list is not (below).
    expect(refusal({ 'cleanup.policy': 'compact,' })).toMatchObject({ message: "invalid value 'compact,' for cleanup.policy: must be a comma-separated list of delete, compact" })
    expect(refusal({ 'min.insync.replicas': '0' })).toMatchObject({ message: "invalid value '0' for min.insync.replicas: must be at least 1" })
    expect(refusal({ 'retention.ms': '9223372036854775808' })).toMatchObject({ message: "invalid value '9223372036854775808' for retention.ms: must fit in a 64-bit integer" })
    expect(refusal({ 'min.cleanable.dirty.ratio': '1.5' })).toMatchObject({ message: "invalid value '1.5' for min.cleanable.dirty.ratio: must be a number from 0 to 1" })
    expect(refusal({ 'unclean.leader.election.enable': 'yes' })).toMatchObject({ message: "invalid value 'yes' for unclean.leader.election.enable: must be true or false" })
    expect(refusal({ 'compression.zstd.level': '23' })).toMatchObject({ message: "invalid value '23' for compression.zstd.level: must be from -131072 to 22" })
    expect(refusal({ 'compression.type': 'GZIP' })).toMatchObject({ message: "invalid value 'GZIP' for compression.type: must be one of: uncompressed, zstd, lz4, snappy, gzip, producer" })
  })

  it('refuses what Kafka 4.0 refuses when configs are set, and still loads a topic stored with it: segment.bytes below 1 MiB (KIP-1030), min.compaction.lag.ms above max.compaction.lag.ms', () => {
    expect(refusal({ 'segment.bytes': '100' })).toMatchObject({ code: ErrorCode.INVALID_CONFIG, message: "invalid value '100' for segment.bytes: must be at least 1048576" })
    expect(parseTopicConfig({ 'segment.bytes': '1048576' }, NODE_DEFAULTS).segmentBytes).toBe(1048576)
    expect(refusal({ 'min.compaction.lag.ms': '10000', 'max.compaction.lag.ms': '5000' })).toMatchObject({
      code: ErrorCode.INVALID_CONFIG,
      message: 'conflict topic config setting min.compaction.lag.ms (10000) > max.compaction.lag.ms (5000)',
    })
    expect(parseTopicConfig({ 'min.compaction.lag.ms': '5000', 'max.compaction.lag.ms': '5000' }, NODE_DEFAULTS)).toMatchObject({ minCompactionLagMs: 5000, maxCompactionLagMs: 5000 })
    // Set by an earlier Brook, whose rules allowed them: a node loading the topic must open it.
    const stored = parseTopicConfig({ 'segment.bytes': '100', 'min.compaction.lag.ms': '10000', 'max.compaction.lag.ms': '5000' }, NODE_DEFAULTS, { stored: true })
    expect(stored).toMatchObject({ segmentBytes: 100, minCompactionLagMs: 10000, maxCompactionLagMs: 5000 })
    expect(refusal({ 'segment.bytes': '13' })).toMatchObject({ message: "invalid value '13' for segment.bytes: must be at least 14" })
  })

  it('compression.type names the codec the broker stores batches with, or null for the producer\'s', () => {
    const codecs = ['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd'].map((value) => parseTopicConfig({ 'compression.type': value }, NODE_DEFAULTS).compressionType)
    expect(codecs).toEqual([null, 0, 1, 2, 3, 4])
  })

  it('accepts the configs of Kafka 4.0 it has no use for, by their own rules, so that tools which set them keep working', () => {
    const accepted = {
      'compression.gzip.level': '-1',
      'compression.lz4.level': '17',
      'compression.zstd.level': '-5',
      'file.delete.delay.ms': '0',
      'flush.messages': '1',
      'flush.ms': '1000',
      'follower.replication.throttled.replicas': '0:1,1:2',
      'index.interval.bytes': '4096',
      'leader.replication.throttled.replicas': '*',
      'local.retention.bytes': '-2',
      'local.retention.ms': '86400000',
      preallocate: 'TRUE',
      'remote.log.copy.disable': 'false',
      'remote.log.delete.on.disable': 'false',
      'remote.storage.enable': 'false',
      'segment.index.bytes': '4',
      'segment.jitter.ms': '100',
    }
    const config = parseTopicConfig(accepted, NODE_DEFAULTS)
    expect(config.overrides).toEqual(accepted)
    expect(config).toMatchObject({ flushMs: 1000, preallocate: true, compressionZstdLevel: -5, followerReplicationThrottledReplicas: '0:1,1:2' })
    expect(refusal({ 'compression.gzip.level': '0' })).toMatchObject({ message: "invalid value '0' for compression.gzip.level: must be -1 or from 1 to 9" })
    expect(refusal({ 'segment.index.bytes': '1' })).toMatchObject({ message: "invalid value '1' for segment.index.bytes: must be at least 4" })
    expect(refusal({ 'flush.messages': '0' })).toMatchObject({ message: "invalid value '0' for flush.messages: must be at least 1" })
    expect(refusal({ 'leader.replication.throttled.replicas': '0-1' })).toMatchObject({ message: expect.stringContaining('partition:broker pairs') })
    expect(refusal({ 'remote.storage.enable': 'true' })).toMatchObject({ message: "invalid value 'true' for remote.storage.enable: Brook has no tiered storage (KIP-405); only false is supported" })
    expect(refusal({ 'local.retention.ms': '-3' })).toMatchObject({ message: "invalid value '-3' for local.retention.ms: must be at least -2" })
  })
})

describe('topic configs through real clients', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  beforeAll(async () => {
    // The node's own defaults (log.retention.ms among them) are what the synonyms below name.
    broker = await startBroker({ args: ['--message-max-bytes', '500000'], logRetentionMs: 'kafka-default' })
    kafka = new Kafka({ brokers: [broker.address], clientId: 'topic-configs', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    admin = kafka.admin()
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
  })

  async function describeTopic(topic: string): Promise<Map<string, { value: string; source: number | undefined; isDefault: boolean }>> {
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
    return new Map(resources[0]!.configEntries.map((e) => [e.configName, { value: e.configValue, source: (e as { configSource?: number }).configSource, isDefault: e.isDefault }]))
  }

  it('kafkajs createTopics: an unknown config name is INVALID_CONFIG, and no topic is made', async () => {
    const failure = await admin.createTopics({ topics: [{ topic: 'misspelt', configEntries: [{ name: 'retention.msec', value: '1000' }] }] }).catch((error) => error)
    expect(failure.errors).toEqual([expect.objectContaining({ type: 'INVALID_CONFIG', topic: 'misspelt' })])
    expect(await admin.listTopics()).not.toContain('misspelt')
  })

  it('kafkajs alterConfigs: an unknown config name is INVALID_CONFIG, and the topic keeps its configs', async () => {
    await admin.createTopics({ topics: [{ topic: 'altered', configEntries: [{ name: 'retention.ms', value: '60000' }] }] })
    const failure = await admin
      .alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered', configEntries: [{ name: 'max.messsage.bytes', value: '0' }] }] })
      .catch((error) => error)
    expect(failure).toMatchObject({ type: 'INVALID_CONFIG' })
    expect((await describeTopic('altered')).get('retention.ms')).toMatchObject({ value: '60000' })
  })

  it('kafkajs createTopics and alterConfigs: min.compaction.lag.ms above max.compaction.lag.ms is INVALID_CONFIG, and neither the topic nor the change is made', async () => {
    const conflicting = [{ name: 'min.compaction.lag.ms', value: '10000' }, { name: 'max.compaction.lag.ms', value: '5000' }]
    const failure = await admin.createTopics({ topics: [{ topic: 'lags', configEntries: conflicting }] }).catch((error) => error)
    expect(failure.errors).toEqual([expect.objectContaining({ type: 'INVALID_CONFIG', topic: 'lags' })])
    expect(await admin.listTopics()).not.toContain('lags')
    await admin.createTopics({ topics: [{ topic: 'lags', configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'max.compaction.lag.ms', value: '5000' }] }] })
    const altered = await admin
      .alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'lags', configEntries: [{ name: 'cleanup.policy', value: 'compact' }, ...conflicting] }] })
      .catch((error) => error)
    expect(altered).toMatchObject({ type: 'INVALID_CONFIG' })
    expect((await describeTopic('lags')).get('min.compaction.lag.ms')).toMatchObject({ value: '0' })
  })

  it('@platformatic/kafka incrementalAlterConfigs: an unknown config name is INVALID_CONFIG with a message naming it', async () => {
    const platformatic = new PlatformaticAdmin({ clientId: 'topic-configs-plt', bootstrapBrokers: [broker.address], retries: 0 })
    try {
      const failure: AggregateError = await platformatic
        .incrementalAlterConfigs({
          // Removed in Kafka 4.0 (KIP-724), so unknown there too.
          resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'altered', configs: [{ name: 'message.downconversion.enable', configOperation: 0, value: 'true' }] }],
        })
        .then(
          () => {
            throw new Error('an unknown config was accepted')
          },
          (error: AggregateError) => error,
        )
      // platformatic wraps the answer's error in a ResponseError, itself in an AggregateError.
      expect(failure.errors[0].errors).toEqual([expect.objectContaining({ apiId: 'INVALID_CONFIG', serverErrorMessage: "unknown topic config 'message.downconversion.enable'" })])
    } finally {
      await platformatic.close()
    }
    expect((await describeTopic('altered')).get('retention.ms')).toMatchObject({ value: '60000' })
  })

  it('changes asked for at once each apply on top of the one before: eight IncrementalAlterConfigs pipelined on one connection set all eight configs; APPEND adds an item once; SUBTRACT may leave cleanup.policy empty', async () => {
    await admin.createTopics({ topics: [{ topic: 'altered-at-once' }] })
    const wanted: Record<string, string> = {
      'retention.ms': '1111',
      'retention.bytes': '2222',
      'max.message.bytes': '3333',
      'delete.retention.ms': '4444',
      'min.compaction.lag.ms': '5',
      'segment.ms': '6666',
      'flush.ms': '7777',
      'message.timestamp.after.max.ms': '8888',
    }
    const answers = await withClient(broker, (client) =>
      Promise.all(
        Object.entries(wanted).map(([name, value]) =>
          client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
            resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'altered-at-once', configs: [{ name, configOperation: 0, value }] }],
            validateOnly: false,
          }),
        ),
      ),
    )
    expect(answers.map((answer) => answer.responses[0]!.errorCode)).toEqual(Object.keys(wanted).map(() => ErrorCode.NONE))
    const described = await describeTopic('altered-at-once')
    expect(Object.fromEntries(Object.keys(wanted).map((name) => [name, described.get(name)?.value]))).toEqual(wanted)
    // An item named twice in one APPEND, or already in the list, is not added again.
    const appended = await withClient(broker, (client) =>
      client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'altered-at-once', configs: [{ name: 'cleanup.policy', configOperation: 2, value: 'compact,compact,delete' }] }],
        validateOnly: false,
      }),
    )
    expect(appended.responses[0]!.errorCode).toBe(ErrorCode.NONE)
    expect((await describeTopic('altered-at-once')).get('cleanup.policy')).toMatchObject({ value: 'delete,compact' })
    // SUBTRACT of every item leaves the empty list, which Kafka takes too.
    const subtracted = await withClient(broker, (client) =>
      client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'altered-at-once', configs: [{ name: 'cleanup.policy', configOperation: 3, value: 'delete,compact' }] }],
        validateOnly: false,
      }),
    )
    expect(subtracted.responses[0]!.errorCode).toBe(ErrorCode.NONE)
    expect((await describeTopic('altered-at-once')).get('cleanup.policy')).toMatchObject({ value: '', source: TOPIC_CONFIG })
  })

  it('a resource named twice in one AlterConfigs or IncrementalAlterConfigs is INVALID_REQUEST at each mention and neither is applied (ConfigAdminManager.preprocess)', async () => {
    await admin.createTopics({ topics: [{ topic: 'named-twice', configEntries: [{ name: 'retention.ms', value: '60000' }] }] })
    const TOPIC = 2
    const twice = (value: string) => [
      { resourceType: TOPIC, resourceName: 'named-twice', configs: [{ name: 'retention.ms', value }] },
      { resourceType: TOPIC, resourceName: 'named-twice', configs: [{ name: 'retention.ms', value: `${value}0` }] },
    ]
    const refused = ['named-twice', ErrorCode.INVALID_REQUEST, 'Each resource must appear at most once.']
    await withClient(broker, async (client) => {
      const legacy = await client.request<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, 2, { resources: twice('1000'), validateOnly: false })
      expect(legacy.responses.map((r) => [r.resourceName, r.errorCode, r.errorMessage])).toEqual([refused, refused])
      const incremental = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: twice('2000').map((r) => ({ ...r, configs: r.configs.map((c) => ({ ...c, configOperation: 0 })) })),
        validateOnly: false,
      })
      expect(incremental.responses.map((r) => [r.resourceName, r.errorCode, r.errorMessage])).toEqual([refused, refused])
    })
    expect((await describeTopic('named-twice')).get('retention.ms')).toMatchObject({ value: '60000' })
  })

  it('DescribeConfigs answers with Kafka\'s names, sources and defaults, the node\'s own defaults included', async () => {
    const configs = await describeTopic('altered')
    expect([...configs.keys()].sort()).toEqual(TOPIC_CONFIGS.map((def) => def.name).sort())
    expect(configs.get('retention.ms')).toMatchObject({ value: '60000', source: TOPIC_CONFIG, isDefault: false })
    expect(configs.get('max.message.bytes')).toMatchObject({ value: '500000', source: STATIC_BROKER_CONFIG })
    expect(configs.get('segment.bytes')).toMatchObject({ value: '1073741824', source: DEFAULT_CONFIG_SOURCE, isDefault: true })
  })

  it('DescribeConfigs with an empty key list answers every config, as a null list does (ConfigHelper.describeConfigs): @platformatic/kafka sends []', async () => {
    const platformatic = new PlatformaticAdmin({ clientId: 'topic-configs-empty-keys', bootstrapBrokers: [broker.address], retries: 0 })
    try {
      const described = await platformatic.describeConfigs({
        resources: [
          { resourceType: ConfigResourceTypes.TOPIC, resourceName: 'altered', configurationKeys: [] },
          { resourceType: ConfigResourceTypes.BROKER, resourceName: '1', configurationKeys: [] },
        ],
      })
      const [topic, node] = described.map((resource) => resource.configs.map((config) => config.name))
      expect(topic!.sort()).toEqual(TOPIC_CONFIGS.map((def) => def.name).sort())
      expect(node).toContain('log.retention.ms')
      expect(node!.length).toBeGreaterThan(30)
    } finally {
      await platformatic.close()
    }
  })

  it('DescribeConfigs of the cluster-wide default broker resource (the empty name) answers the dynamic defaults set for every broker, none here, not this node\'s own settings (ConfigHelper.describeConfigs)', async () => {
    const answer = await withClient(broker, (client) =>
      client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [
          { resourceType: ConfigResourceTypes.BROKER, resourceName: '', configurationKeys: null },
          { resourceType: ConfigResourceTypes.BROKER, resourceName: '1', configurationKeys: null },
        ],
        includeSynonyms: false,
        includeDocumentation: false,
      }),
    )
    const [clusterDefault, node] = answer.results
    expect(clusterDefault).toMatchObject({ errorCode: ErrorCode.NONE, resourceName: '', configs: [] })
    expect(node!.configs.map((config) => config.name)).toContain('log.retention.ms')
  })

  it('DescribeConfigs synonyms name the broker config each default comes from, as Kafka does: the topic setting, then the node\'s, then Kafka\'s', async () => {
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered' }], includeSynonyms: true })
    const synonyms = new Map(resources[0]!.configEntries.map((e) => [e.configName, e.configSynonyms.map(({ configName, configValue, configSource }) => ({ configName, configValue, configSource }))]))
    expect(synonyms.get('retention.ms')).toEqual([
      { configName: 'retention.ms', configValue: '60000', configSource: TOPIC_CONFIG },
      { configName: 'log.retention.ms', configValue: '604800000', configSource: DEFAULT_CONFIG_SOURCE },
    ])
    expect(synonyms.get('max.message.bytes')).toEqual([
      { configName: 'message.max.bytes', configValue: '500000', configSource: STATIC_BROKER_CONFIG },
      { configName: 'message.max.bytes', configValue: '1048588', configSource: DEFAULT_CONFIG_SOURCE },
    ])
    expect(synonyms.get('min.cleanable.dirty.ratio')).toEqual([{ configName: 'log.cleaner.min.cleanable.ratio', configValue: '0.5', configSource: DEFAULT_CONFIG_SOURCE }])
    expect(synonyms.get('segment.ms')).toEqual([{ configName: 'log.roll.ms', configValue: '604800000', configSource: DEFAULT_CONFIG_SOURCE }])
    // The configs Kafka gives no broker default (LogConfig.CONFIGS_WITH_NO_SERVER_DEFAULTS) have no synonym unset.
    const withoutBrokerDefault = ['remote.storage.enable', 'remote.log.copy.disable', 'remote.log.delete.on.disable', 'leader.replication.throttled.replicas', 'follower.replication.throttled.replicas']
    for (const name of withoutBrokerDefault) expect(synonyms.get(name), name).toEqual([])

    // The broker describes the configs those synonyms name, each with its value on this node, and writes "no limit"
    // as Kafka does (Long.MAX_VALUE).
    const node = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }], includeSynonyms: false })
    const brokerConfigs = new Map(node.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))
    for (const entries of synonyms.values()) {
      for (const { configName, configSource } of entries) if (configSource !== TOPIC_CONFIG) expect(brokerConfigs.has(configName), configName).toBe(true)
    }
    expect(brokerConfigs.get('message.max.bytes')).toBe('500000')
    expect(brokerConfigs.get('log.retention.ms')).toBe('604800000')
    expect(brokerConfigs.get('log.cleanup.policy')).toBe('delete')
    expect(brokerConfigs.get('log.message.timestamp.before.max.ms')).toBe('9223372036854775807')
    // Nor does a Kafka broker have a config of their names.
    for (const name of withoutBrokerDefault) expect(brokerConfigs.has(name), name).toBe(false)
  })

  it('a changed max.message.bytes governs the next produce at once, and every config survives a restart', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
    await producer.connect()
    const record = { value: 'x'.repeat(3000) }
    try {
      await producer.send({ topic: 'altered', messages: [record] })
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered', configEntries: [{ name: 'retention.ms', value: '60000' }, { name: 'max.message.bytes', value: '1000' }] }],
      })
      await expect(producer.send({ topic: 'altered', messages: [record] })).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' })
    } finally {
      await producer.disconnect()
    }
    await admin.disconnect()
    await broker.stop()
    broker = await broker.restart()
    kafka = new Kafka({ brokers: [broker.address], clientId: 'topic-configs', logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    admin = kafka.admin()
    await admin.connect()
    const configs = await describeTopic('altered')
    expect(configs.get('max.message.bytes')).toMatchObject({ value: '1000', source: TOPIC_CONFIG })
    expect(configs.get('retention.ms')).toMatchObject({ value: '60000', source: TOPIC_CONFIG })
    const again = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
    await again.connect()
    try {
      await expect(again.send({ topic: 'altered', messages: [record] })).rejects.toMatchObject({ type: 'MESSAGE_TOO_LARGE' })
      await again.send({ topic: 'altered', messages: [{ value: 'small' }] })
    } finally {
      await again.disconnect()
    }
  })
})
