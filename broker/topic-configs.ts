/**
 * Topic configs: Kafka's names, defaults and validation rules (TopicConfig.java / LogConfig), whether Brook acts on
 * each one, and the typed value each is parsed into. Configs Brook accepts but that have no effect here (there are no
 * segment files, for instance) say so in their documentation, which DescribeConfigs returns when asked.
 *
 * A topic's configs are parsed once, when they are set (CreateTopics, AlterConfigs, IncrementalAlterConfigs, and
 * when the node loads its topics), into a TopicConfig: every config's effective value, typed (`maxMessageBytes`,
 * `cleanupPolicy.compact`...), beside the overrides as set and what DescribeConfigs shows. Produce, fetch, ListOffsets
 * and the cleaner read the typed values; nothing looks a config up by name on the way. A name that is not in the
 * table below, a missing value or a value its rule refuses is INVALID_CONFIG, with a message naming the config.
 */
import { DEFAULT_CONFIG, type BrokerConfig } from './config.js'
import { quote } from './quote.js'
import { ConfigSource, ConfigType } from '../protocol/constants.js'
import { ErrorCode, KafkaError } from '../protocol/errors.js'
import { Compression } from '../protocol/compression.js'
import { ZSTD_LEVELS } from '../protocol/zstd.js'

/**
 * The dynamic broker configs that are topic configs' defaults, by Kafka's broker name (`log.retention.ms`), as
 * AlterConfigs and IncrementalAlterConfigs set them on a BROKER resource (Kafka's DynamicLogConfig: every broker name
 * of ServerTopicConfigSynonyms can be changed while brokers run): `cluster` for the resource named "" (every node,
 * DYNAMIC_DEFAULT_BROKER_CONFIG), `broker` for the one named by this node's id (DYNAMIC_BROKER_CONFIG), which wins.
 */
export interface DynamicBrokerConfigs {
  readonly cluster: Readonly<Record<string, string>>
  readonly broker: Readonly<Record<string, string>>
}

export const NO_DYNAMIC_CONFIGS: DynamicBrokerConfigs = { cluster: {}, broker: {} }

/**
 * Broker settings that are the defaults of topic configs (message.max.bytes for max.message.bytes, and so on): the
 * node's flags or config file, and the dynamic configs over them.
 */
export type TopicDefaults = Pick<
  BrokerConfig,
  'messageMaxBytes' | 'logMessageTimestampBeforeMaxMs' | 'logMessageTimestampAfterMaxMs' | 'logRetentionMs' | 'logRetentionBytes' | 'topicConfigDefaults'
> & { readonly dynamic?: DynamicBrokerConfigs }

export interface ConfigDef<Key extends string = string, Value = unknown> {
  /** Kafka's name. */
  readonly name: string
  /**
   * The broker config that sets its default in Kafka (ServerTopicConfigSynonyms: `log.retention.ms` for
   * `retention.ms`, `message.max.bytes` for `max.message.bytes`): the name of its STATIC_BROKER_CONFIG and
   * DEFAULT_CONFIG synonyms in DescribeConfigs. Null for the configs Kafka gives no broker default
   * (LogConfig.CONFIGS_WITH_NO_SERVER_DEFAULTS: remote.storage.enable, KIP-950's remote.log.copy.disable and
   * remote.log.delete.on.disable, and the replication throttles): a broker describes no config of that name, and the
   * topic's synonyms are its own setting alone.
   */
  readonly serverName: string | null
  /** The property of TopicConfig that holds the parsed value. */
  readonly key: Key
  readonly type: ConfigType
  /** Kafka's default, as a string. */
  readonly default: string
  /** The broker setting that overrides the default, when the node was started with a value other than its own. */
  readonly brokerDefault?: Exclude<keyof TopicDefaults, 'topicConfigDefaults' | 'dynamic'>
  /** The typed value; throws InvalidValue saying what is wrong. */
  readonly parse: (value: string) => Value
  /**
   * A rule a value must also meet when it is set (CreateTopics, AlterConfigs), but not when it is loaded: one Kafka 4.0
   * tightened, which a topic may hold from an earlier Brook (a node must still open it). Throws InvalidValue.
   */
  checkWhenSet?(value: Value): void
  readonly documentation: string
}

/** A value a config's rule refuses; the message says what the value must be. */
class InvalidValue extends Error {}

function config<Key extends string, Value>(def: ConfigDef<Key, Value>): ConfigDef<Key, Value> {
  return def
}

/** Java's Long.MAX_VALUE as Kafka writes it in configs: no limit. */
export const LONG_MAX = '9223372036854775807'

/**
 * A long config's value as Kafka writes it: Long.MAX_VALUE ("no limit") for anything from 2^53 - 1 up, which is how
 * Brook holds it in a number (a node's "no limit" is Number.MAX_SAFE_INTEGER).
 */
export function kafkaLong(value: number): string {
  return value >= Number.MAX_SAFE_INTEGER ? LONG_MAX : String(value)
}

/**
 * A Java long within [min, Long.MAX_VALUE], as a number of ms or bytes: above 2^53 it loses precision but not its
 * meaning (Long.MAX_VALUE is "no limit", and stays larger than any time or size).
 */
function long(min: bigint) {
  return (value: string): number => {
    if (!/^[-+]?\d+$/.test(value)) throw new InvalidValue('must be a whole number')
    const n = BigInt(value)
    if (n < min) throw new InvalidValue(`must be at least ${min}`)
    if (n > BigInt(LONG_MAX)) throw new InvalidValue('must fit in a 64-bit integer')
    return Number(n)
  }
}

function int(min: number) {
  return (value: string): number => {
    if (!/^[-+]?\d+$/.test(value)) throw new InvalidValue('must be a whole number')
    const n = Number(value)
    if (n < min) throw new InvalidValue(`must be at least ${min}`)
    if (n > 2147483647) throw new InvalidValue('must fit in a 32-bit integer')
    return n
  }
}

function oneOf<const T extends string>(...allowed: T[]) {
  return (value: string): T => {
    const found = allowed.find((item) => item === value)
    if (found === undefined) throw new InvalidValue(`must be one of ${allowed.join(', ')}`)
    return found
  }
}

function ratio(value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidValue('must be a number from 0 to 1')
  return n
}

/** true or false in any case, as Kafka's ConfigDef reads a BOOLEAN. */
function bool(value: string): boolean {
  const lower = value.toLowerCase()
  if (lower !== 'true' && lower !== 'false') throw new InvalidValue('must be true or false')
  return lower === 'true'
}

/** cleanup.policy: which of deletion (retention) and compaction apply; both may. */
export interface CleanupPolicy {
  readonly delete: boolean
  readonly compact: boolean
}

const CLEANUP_POLICIES = ['delete', 'compact']

/**
 * cleanup.policy: a comma-separated list of delete and compact. Empty is neither, as in Kafka (a LIST config reads an
 * empty value as the empty list, which ValidList.in accepts): batches are kept for ever, never removed by retention
 * nor compacted, and DeleteRecords is refused as for a compact-only topic. Errors: InvalidValue for any other item.
 */
function cleanupPolicy(value: string): CleanupPolicy {
  if (value.trim() === '') return { delete: false, compact: false }
  const items = value.split(',').map((s) => s.trim())
  if (items.some((item) => !CLEANUP_POLICIES.includes(item))) throw new InvalidValue(`must be a comma-separated list of ${CLEANUP_POLICIES.join(', ')}`)
  return { delete: items.includes('delete'), compact: items.includes('compact') }
}

const NO_EFFECT = ' Accepted for compatibility; Brook has no segment files, so it has no effect.'
/** Why a config of Kafka's that Brook has no use for is accepted all the same: tools that set it keep working. */
const ACCEPTED = ' Accepted for compatibility; it has no effect in Brook'

/**
 * compression.type (Kafka's BrokerCompressionType): null for `producer` (batches stored as sent), else the codec the
 * broker stores every batch with. Errors: InvalidValue for a name Kafka does not know.
 */
function compressionCodec(value: string): number | null {
  switch (value) {
    case 'producer':
      return null
    case 'uncompressed':
      return Compression.none
    case 'gzip':
    case 'snappy':
    case 'lz4':
    case 'zstd':
      return Compression[value]
    default:
      throw new InvalidValue('must be one of: uncompressed, zstd, lz4, snappy, gzip, producer')
  }
}

/** An int in [min, max] (or `also`, a sentinel such as gzip's -1 for the codec's default). */
function intIn(min: number, max: number, also?: number) {
  const whole = int(-2147483648)
  return (value: string): number => {
    const n = whole(value)
    if (n !== also && (n < min || n > max)) throw new InvalidValue(`must be ${also === undefined ? '' : `${also} or `}from ${min} to ${max}`)
    return n
  }
}

/**
 * leader/follower.replication.throttled.replicas (Kafka's ThrottledReplicaListValidator): empty, `*`, or
 * `partition:broker` pairs separated by commas.
 */
function throttledReplicas(value: string): string {
  const trimmed = value.trim()
  if (trimmed === '' || trimmed === '*') return trimmed
  if (!trimmed.split(',').every((item) => /^\s*\d+\s*:\s*\d+\s*$/.test(item))) throw new InvalidValue("must be empty, * or partition:broker pairs separated by ',' (0:101,0:102)")
  return trimmed
}

export const TOPIC_CONFIGS = [
  config({
    name: 'cleanup.policy',
    serverName: 'log.cleanup.policy',
    key: 'cleanupPolicy',
    type: ConfigType.LIST,
    default: 'delete',
    parse: cleanupPolicy,
    documentation: 'delete: drop old batches by retention.ms/retention.bytes; compact: keep the latest record per key; empty: keep every batch for ever.',
  }),
  config({
    name: 'compression.type',
    serverName: 'compression.type',
    key: 'compressionType',
    type: ConfigType.STRING,
    default: 'producer',
    parse: compressionCodec,
    documentation:
      'producer: batches are stored as the producer compressed them; uncompressed, gzip, snappy, lz4 or zstd: the broker stores every batch compressed so (recompressing what the producer sent otherwise). Consumers of a zstd topic need Fetch v10 or later (UNSUPPORTED_COMPRESSION_TYPE otherwise, as in Kafka).',
  }),
  config({
    name: 'compression.gzip.level',
    serverName: 'compression.gzip.level',
    key: 'compressionGzipLevel',
    type: ConfigType.INT,
    default: '-1',
    parse: intIn(1, 9, -1),
    documentation: 'The level of gzip compression when the broker compresses (KIP-390, compression.type=gzip): 1-9, or -1 for zlib\'s default.',
  }),
  config({
    name: 'compression.lz4.level',
    serverName: 'compression.lz4.level',
    key: 'compressionLz4Level',
    type: ConfigType.INT,
    default: '9',
    parse: intIn(1, 17),
    documentation: `The level of lz4 compression when the broker compresses (KIP-390).${ACCEPTED}: Brook's lz4 compressor has one level.`,
  }),
  config({
    name: 'compression.zstd.level',
    serverName: 'compression.zstd.level',
    key: 'compressionZstdLevel',
    type: ConfigType.INT,
    default: '3',
    parse: intIn(ZSTD_LEVELS.min, ZSTD_LEVELS.max),
    documentation: 'The level of zstd compression when the broker compresses (KIP-390, compression.type=zstd): -131072 to 22, 3 by default; 0 is zstd\'s default too.',
  }),
  config({
    name: 'delete.retention.ms',
    serverName: 'log.cleaner.delete.retention.ms',
    key: 'deleteRetentionMs',
    type: ConfigType.LONG,
    default: '86400000',
    parse: long(0n),
    documentation: 'How long tombstones are kept in a compacted topic.',
  }),
  config({
    name: 'file.delete.delay.ms',
    serverName: 'log.segment.delete.delay.ms',
    key: 'fileDeleteDelayMs',
    type: ConfigType.LONG,
    default: '60000',
    parse: long(0n),
    documentation: `How long Kafka waits before deleting a segment file.${NO_EFFECT}`,
  }),
  config({
    name: 'flush.messages',
    serverName: 'log.flush.interval.messages',
    key: 'flushMessages',
    type: ConfigType.LONG,
    default: LONG_MAX,
    parse: long(1n),
    documentation: `Records between forced fsyncs in Kafka.${ACCEPTED}: a node syncs every write with --fsync, else none, and relies on replication, as Kafka does by default.`,
  }),
  config({
    name: 'flush.ms',
    serverName: 'log.flush.interval.ms',
    key: 'flushMs',
    type: ConfigType.LONG,
    default: LONG_MAX,
    parse: long(0n),
    documentation: `Time between forced fsyncs in Kafka.${ACCEPTED}: a node syncs every write with --fsync, else none, and relies on replication, as Kafka does by default.`,
  }),
  config({
    name: 'follower.replication.throttled.replicas',
    serverName: null,
    key: 'followerReplicationThrottledReplicas',
    type: ConfigType.LIST,
    default: '',
    parse: throttledReplicas,
    documentation: `The replicas whose fetching a follower throttles.${ACCEPTED}: Brook has no replication throttle.`,
  }),
  config({
    name: 'index.interval.bytes',
    serverName: 'log.index.interval.bytes',
    key: 'indexIntervalBytes',
    type: ConfigType.INT,
    default: '4096',
    parse: int(0),
    documentation: `Bytes between entries of Kafka's offset index.${NO_EFFECT}`,
  }),
  config({
    name: 'leader.replication.throttled.replicas',
    serverName: null,
    key: 'leaderReplicationThrottledReplicas',
    type: ConfigType.LIST,
    default: '',
    parse: throttledReplicas,
    documentation: `The replicas whose fetches a leader throttles.${ACCEPTED}: Brook has no replication throttle.`,
  }),
  config({
    name: 'local.retention.bytes',
    serverName: 'log.local.retention.bytes',
    key: 'localRetentionBytes',
    type: ConfigType.LONG,
    default: '-2',
    parse: long(-2n),
    documentation: `Bytes kept locally when tiered storage is on (KIP-405; -2: retention.bytes).${ACCEPTED}: Brook has no tiered storage.`,
  }),
  config({
    name: 'local.retention.ms',
    serverName: 'log.local.retention.ms',
    key: 'localRetentionMs',
    type: ConfigType.LONG,
    default: '-2',
    parse: long(-2n),
    documentation: `Time kept locally when tiered storage is on (KIP-405; -2: retention.ms).${ACCEPTED}: Brook has no tiered storage.`,
  }),
  config({
    name: 'max.compaction.lag.ms',
    serverName: 'log.cleaner.max.compaction.lag.ms',
    key: 'maxCompactionLagMs',
    type: ConfigType.LONG,
    default: LONG_MAX,
    parse: long(1n),
    documentation: 'The longest a record stays uncompacted.',
  }),
  config({
    name: 'max.message.bytes',
    serverName: 'message.max.bytes',
    key: 'maxMessageBytes',
    type: ConfigType.INT,
    default: '1048588',
    brokerDefault: 'messageMaxBytes',
    parse: int(0),
    documentation: 'The largest record batch the topic accepts.',
  }),
  config({
    name: 'message.timestamp.after.max.ms',
    serverName: 'log.message.timestamp.after.max.ms',
    key: 'messageTimestampAfterMaxMs',
    type: ConfigType.LONG,
    default: '3600000',
    brokerDefault: 'logMessageTimestampAfterMaxMs',
    parse: long(0n),
    documentation: 'CreateTime topics refuse records timestamped more than this ahead of the broker clock (INVALID_TIMESTAMP).',
  }),
  config({
    name: 'message.timestamp.before.max.ms',
    serverName: 'log.message.timestamp.before.max.ms',
    key: 'messageTimestampBeforeMaxMs',
    type: ConfigType.LONG,
    default: LONG_MAX,
    brokerDefault: 'logMessageTimestampBeforeMaxMs',
    parse: long(0n),
    documentation: 'CreateTime topics refuse records timestamped more than this behind the broker clock (INVALID_TIMESTAMP).',
  }),
  config({
    name: 'message.timestamp.type',
    serverName: 'log.message.timestamp.type',
    key: 'messageTimestampType',
    type: ConfigType.STRING,
    default: 'CreateTime',
    parse: oneOf('CreateTime', 'LogAppendTime'),
    documentation: 'CreateTime keeps the producer timestamp; LogAppendTime stamps batches with the broker clock.',
  }),
  config({
    name: 'min.cleanable.dirty.ratio',
    serverName: 'log.cleaner.min.cleanable.ratio',
    key: 'minCleanableDirtyRatio',
    type: ConfigType.DOUBLE,
    default: '0.5',
    parse: ratio,
    documentation: 'The share of uncompacted log that triggers compaction.',
  }),
  config({
    name: 'min.compaction.lag.ms',
    serverName: 'log.cleaner.min.compaction.lag.ms',
    key: 'minCompactionLagMs',
    type: ConfigType.LONG,
    default: '0',
    parse: long(0n),
    documentation: 'The shortest a record stays uncompacted.',
  }),
  config({
    name: 'min.insync.replicas',
    serverName: 'min.insync.replicas',
    key: 'minInsyncReplicas',
    type: ConfigType.INT,
    default: '1',
    parse: int(1),
    documentation: 'With acks=all, the fewest in-sync replicas a write needs.',
  }),
  config({
    name: 'preallocate',
    serverName: 'log.preallocate',
    key: 'preallocate',
    type: ConfigType.BOOLEAN,
    default: 'false',
    parse: bool,
    documentation: `Whether Kafka preallocates segment files.${NO_EFFECT}`,
  }),
  config({
    name: 'remote.log.copy.disable',
    serverName: null,
    key: 'remoteLogCopyDisable',
    type: ConfigType.BOOLEAN,
    default: 'false',
    parse: bool,
    documentation: `Stops copying to tiered storage (KIP-950).${ACCEPTED}: Brook has no tiered storage.`,
  }),
  config({
    name: 'remote.log.delete.on.disable',
    serverName: null,
    key: 'remoteLogDeleteOnDisable',
    type: ConfigType.BOOLEAN,
    default: 'false',
    parse: bool,
    documentation: `Deletes tiered data when tiered storage is turned off (KIP-950).${ACCEPTED}: Brook has no tiered storage.`,
  }),
  config({
    name: 'remote.storage.enable',
    serverName: null,
    key: 'remoteStorageEnable',
    type: ConfigType.BOOLEAN,
    default: 'false',
    parse: (value) => {
      if (bool(value)) throw new InvalidValue('Brook has no tiered storage (KIP-405); only false is supported')
      return false
    },
    documentation: 'Whether the topic uses tiered storage (KIP-405). Brook has none: only false is accepted.',
  }),
  config({
    name: 'retention.bytes',
    serverName: 'log.retention.bytes',
    key: 'retentionBytes',
    type: ConfigType.LONG,
    default: '-1',
    brokerDefault: 'logRetentionBytes',
    parse: long(-1n),
    documentation: 'The most bytes a partition keeps before old batches are deleted; -1 for no limit.',
  }),
  config({
    name: 'retention.ms',
    serverName: 'log.retention.ms',
    key: 'retentionMs',
    type: ConfigType.LONG,
    default: '604800000',
    brokerDefault: 'logRetentionMs',
    parse: long(-1n),
    documentation: 'How long batches are kept; -1 for no limit.',
  }),
  config({
    name: 'segment.bytes',
    serverName: 'log.segment.bytes',
    key: 'segmentBytes',
    type: ConfigType.INT,
    default: '1073741824',
    parse: int(14),
    // Kafka 4.0's minimum (KIP-1030; 14 before).
    checkWhenSet(value) {
      if (value < 1048576) throw new InvalidValue('must be at least 1048576')
    },
    documentation: `The segment file size in Kafka.${NO_EFFECT}`,
  }),
  config({
    name: 'segment.index.bytes',
    serverName: 'log.index.size.max.bytes',
    key: 'segmentIndexBytes',
    type: ConfigType.INT,
    default: '10485760',
    parse: int(4),
    documentation: `The size of Kafka's offset index file per segment.${NO_EFFECT}`,
  }),
  config({
    name: 'segment.jitter.ms',
    serverName: 'log.roll.jitter.ms',
    key: 'segmentJitterMs',
    type: ConfigType.LONG,
    default: '0',
    parse: long(0n),
    documentation: `The most jitter Kafka adds to segment.ms.${NO_EFFECT}`,
  }),
  config({
    name: 'segment.ms',
    serverName: 'log.roll.ms',
    key: 'segmentMs',
    type: ConfigType.LONG,
    default: '604800000',
    parse: long(1n),
    documentation: `The time after which Kafka rolls a segment.${NO_EFFECT}`,
  }),
  config({
    name: 'unclean.leader.election.enable',
    serverName: 'unclean.leader.election.enable',
    key: 'uncleanLeaderElectionEnable',
    type: ConfigType.BOOLEAN,
    default: 'false',
    parse: bool,
    documentation: 'Whether a replica outside the ISR may become leader (losing data).',
  }),
] as const

type TopicConfigDef = (typeof TOPIC_CONFIGS)[number]

/** Every topic config's effective value, typed, under the camelCase form of its Kafka name. */
export type TopicConfigValues = { readonly [Def in TopicConfigDef as Def['key']]: ReturnType<Def['parse']> }

/** One config as DescribeConfigs (and CreateTopics v5+) shows it: its effective value and where that comes from. */
export interface DescribedConfig {
  readonly name: string
  readonly value: string
  /** ConfigSource: TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG or DEFAULT_CONFIG. */
  readonly source: number
  readonly def: ConfigDef
  /**
   * Where the value could come from, first wins, as DescribeConfigs v1+ lists them (KIP-226): the topic's own
   * setting (TOPIC_CONFIG, under the topic config's name) when set, the node's setting (STATIC_BROKER_CONFIG, under
   * the broker config's name, `message.max.bytes`) when it differs from Kafka's default, then Kafka's default
   * (DEFAULT_CONFIG, under the broker config's name).
   */
  readonly synonyms: readonly ConfigSynonym[]
}

/** One entry of DescribedConfig.synonyms. */
export interface ConfigSynonym {
  readonly name: string
  readonly value: string
  /** ConfigSource. */
  readonly source: number
}

/** A topic's configs, parsed once when they are set. */
export type TopicConfig = TopicConfigValues & {
  /** The configs set on the topic, under Kafka's names: what is stored, and what AlterConfigs replaces. */
  readonly overrides: Readonly<Record<string, string>>
  /** Every config, in the table's order, as DescribeConfigs answers. */
  readonly described: readonly DescribedConfig[]
}

const byName: ReadonlyMap<string, ConfigDef> = new Map(TOPIC_CONFIGS.map((def) => [def.name, def]))

export function topicConfigDef(name: string): ConfigDef | undefined {
  return byName.get(name)
}

/**
 * The defaults of `def` on this node, the one in force first, as DescribeConfigs lists a topic config's synonyms
 * after the topic's own setting (Kafka's order): the dynamic config set for this node (DYNAMIC_BROKER_CONFIG), the
 * one set for every node (DYNAMIC_DEFAULT_BROKER_CONFIG), the broker setting when the node was started with a value
 * other than the setting's own default (STATIC_BROKER_CONFIG), and Kafka's default (DEFAULT_CONFIG). Empty for a
 * config without a broker setting.
 */
function defaultsOf(def: ConfigDef, defaults: TopicDefaults): ConfigSynonym[] {
  const name = def.serverName
  if (name === null) return []
  const chain: ConfigSynonym[] = []
  const dynamic = defaults.dynamic ?? NO_DYNAMIC_CONFIGS
  if (Object.hasOwn(dynamic.broker, name)) chain.push({ name, value: dynamic.broker[name]!, source: ConfigSource.DYNAMIC_BROKER_CONFIG })
  if (Object.hasOwn(dynamic.cluster, name)) chain.push({ name, value: dynamic.cluster[name]!, source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG })
  const key = def.brokerDefault
  if (Object.hasOwn(defaults.topicConfigDefaults, name)) chain.push({ name, value: defaults.topicConfigDefaults[name]!, source: ConfigSource.STATIC_BROKER_CONFIG })
  else if (key !== undefined && defaults[key] !== DEFAULT_CONFIG[key]) chain.push({ name, value: kafkaLong(defaults[key]), source: ConfigSource.STATIC_BROKER_CONFIG })
  chain.push({ name, value: def.default, source: ConfigSource.DEFAULT_CONFIG })
  return chain
}

/** Every topic config with a broker default, by that broker name: the broker configs AlterConfigs may change (DynamicBrokerConfigs). */
const byDynamicName: ReadonlyMap<string, ConfigDef> = new Map(TOPIC_CONFIGS.flatMap((def): [string, ConfigDef][] => (def.serverName === null ? [] : [[def.serverName, def]])))

/** The topic config whose default the broker config `name` is (`retention.ms` for `log.retention.ms`), if any: one of DynamicBrokerConfigs. */
export function dynamicBrokerConfigDef(name: string): ConfigDef | undefined {
  return byDynamicName.get(name)
}

/** The refusal of broker configs that are read at start only, Kafka's words first (ConfigAdminManager). */
function notDynamic(names: readonly string[]): KafkaError {
  return new KafkaError(
    ErrorCode.INVALID_REQUEST,
    `Cannot update these configs dynamically: ${names.join(', ')} (only the broker defaults of topic configs change while nodes run; the others come from each node's flags or config file)`,
  )
}

/**
 * The refusal of a broker config `name` that is no dynamic broker config: INVALID_REQUEST for one of the node's
 * other settings (`staticNames`, read at start only), INVALID_CONFIG for a name the node does not know.
 */
export function notDynamicBrokerConfig(name: string, staticNames: ReadonlySet<string>): KafkaError {
  return staticNames.has(name) ? notDynamic([name]) : new KafkaError(ErrorCode.INVALID_CONFIG, `unknown broker config ${quote(name)}`)
}

/**
 * Checks the dynamic configs of one BROKER resource (broker name -> value) as they would be set: every name the
 * broker default of a topic config, every value valid by that config's rule (the rule for setting it). Throws
 * KafkaError: INVALID_CONFIG for a bad value or an unknown name, INVALID_REQUEST for a broker config that is no topic
 * config's default (`num.partitions`: read from the node's flags or config file at start). `staticNames`: the node's
 * other broker configs, which get the second answer. (TopicManager.checkDynamicConfigs checks them together.)
 */
export function checkDynamicBrokerConfigs(configs: Readonly<Record<string, string>>, staticNames: ReadonlySet<string>): void {
  const fixed = Object.keys(configs).filter((name) => !byDynamicName.has(name) && staticNames.has(name))
  if (fixed.length > 0) throw notDynamic(fixed)
  for (const [name, value] of Object.entries(configs)) {
    const def = byDynamicName.get(name)
    if (def === undefined) throw notDynamicBrokerConfig(name, staticNames)
    parseValue(def, value, true, name)
  }
}

/**
 * The topic configs whose default a node's settings give under Kafka's broker name (`log.cleanup.policy` for
 * `cleanup.policy`, `log.message.timestamp.type` for `message.timestamp.type`), as BrokerConfig.topicConfigDefaults,
 * keyed by that name. Those with a numeric setting of their own (`message.max.bytes`, `log.retention.ms`: brokerDefault)
 * are not among them.
 */
const byServerName: ReadonlyMap<string, ConfigDef> = new Map([...byDynamicName].filter(([, def]) => def.brokerDefault === undefined))

/** The broker names BrokerConfig.topicConfigDefaults takes. */
export function topicDefaultNames(): string[] {
  return [...byServerName.keys()]
}

/** Whether `name` is the broker name of a topic config's default that BrokerConfig.topicConfigDefaults may give. */
export function isTopicDefaultName(name: string): boolean {
  return byServerName.has(name)
}

/**
 * Checks the topic config defaults a node is given (BrokerConfig.topicConfigDefaults: broker name -> value, as Kafka's
 * server.properties writes it) against each config's rule and the rule across configs (min.compaction.lag.ms at most
 * max.compaction.lag.ms); returns the first problem as `<broker name> <what is wrong>` (`log.cleanup.policy must be a
 * comma-separated list of delete, compact, not 'shred'`), or null. Unknown names are a problem too.
 */
export function topicDefaultsProblem(defaults: Readonly<Record<string, string>>): string | null {
  for (const [name, value] of Object.entries(defaults)) {
    const def = byServerName.get(name)
    if (def === undefined) return `${name} is no topic config's default`
    try {
      checkedValue(def, value, true)
    } catch (error) {
      if (error instanceof InvalidValue) return `${name} ${error.message}, not ${quote(value)}`
      throw error
    }
  }
  const lag = (name: string, def: string): number => Number(defaults[name] ?? def)
  const [min, max] = [lag('log.cleaner.min.compaction.lag.ms', '0'), lag('log.cleaner.max.compaction.lag.ms', LONG_MAX)]
  if (min > max) return `log.cleaner.min.compaction.lag.ms (${defaults['log.cleaner.min.compaction.lag.ms']}) must not be greater than log.cleaner.max.compaction.lag.ms (${defaults['log.cleaner.max.compaction.lag.ms'] ?? LONG_MAX})`
  return null
}

/** Config types whose values Kafka's ConfigDef.parseType trims before parsing (a STRING is taken as it is). */
const TRIMMED_TYPES: ReadonlySet<number> = new Set([ConfigType.BOOLEAN, ConfigType.INT, ConfigType.SHORT, ConfigType.LONG, ConfigType.DOUBLE])

/** `value` parsed by `def`'s rule, and checked by its `checkWhenSet` too when `settingIt`; throws InvalidValue. */
function checkedValue(def: ConfigDef, value: string, settingIt: boolean): unknown {
  const parsed = def.parse(TRIMMED_TYPES.has(def.type) ? value.trim() : value)
  if (settingIt) def.checkWhenSet?.(parsed)
  return parsed
}

/** checkedValue, with a refused value thrown as KafkaError(INVALID_CONFIG) naming the config as `name` (the broker name of a default). */
function parseValue(def: ConfigDef, value: string, settingIt: boolean, name = def.name): unknown {
  try {
    return checkedValue(def, value, settingIt)
  } catch (error) {
    if (error instanceof InvalidValue) throw new KafkaError(ErrorCode.INVALID_CONFIG, `invalid value ${quote(value)} for ${name}: ${error.message}`)
    throw error
  }
}

/**
 * Parses the configs set on a topic (Kafka's names -> values) into its TopicConfig, the unset ones taking their
 * defaults (`defaults`: the node's settings). Throws KafkaError(INVALID_CONFIG) for the first unknown name, missing
 * (null) value or invalid value, with a message naming the config. Configs being set (`stored` false, the default)
 * must also meet each config's `checkWhenSet` and Kafka's rules across configs (LogConfig.validateValues:
 * min.compaction.lag.ms at most max.compaction.lag.ms); `stored` is for configs loaded from the node's data or the
 * metadata log, which were checked when they were set.
 */
export function parseTopicConfig(overrides: Readonly<Record<string, string | null>>, defaults: TopicDefaults, options: { stored?: boolean } = {}): TopicConfig {
  const set: Record<string, string> = {}
  for (const [name, value] of Object.entries(overrides)) {
    const def = byName.get(name)
    if (!def) throw new KafkaError(ErrorCode.INVALID_CONFIG, `unknown topic config ${quote(name)}`)
    if (value === null) throw new KafkaError(ErrorCode.INVALID_CONFIG, `config '${name}' needs a value`)
    set[name] = value
  }
  const values: Record<string, unknown> = {}
  const described: DescribedConfig[] = []
  for (const def of TOPIC_CONFIGS) {
    const own = set[def.name]
    const synonyms: ConfigSynonym[] = [...(own === undefined ? [] : [{ name: def.name, value: own, source: ConfigSource.TOPIC_CONFIG }]), ...defaultsOf(def, defaults)]
    // Not set on the topic and without a broker default: Kafka's default, with no synonym (ConfigHelper).
    const { value, source } = synonyms[0] ?? { value: def.default, source: ConfigSource.DEFAULT_CONFIG }
    values[def.key] = parseValue(def, value, own !== undefined && !options.stored)
    described.push({ name: def.name, value, source, def, synonyms })
  }
  const parsed = values as TopicConfigValues
  if (!options.stored && parsed.minCompactionLagMs > parsed.maxCompactionLagMs) {
    const shown = (name: string) => described.find((d) => d.name === name)!.value
    throw new KafkaError(ErrorCode.INVALID_CONFIG, `conflict topic config setting min.compaction.lag.ms (${shown('min.compaction.lag.ms')}) > max.compaction.lag.ms (${shown('max.compaction.lag.ms')})`)
  }
  return { ...parsed, overrides: set, described }
}
