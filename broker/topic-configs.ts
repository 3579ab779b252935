/**
 * Topic configs: Kafka's names, defaults and validation rules (TopicConfig.java / LogConfig), and whether Brook acts
 * on each one. Configs Brook accepts but that have no effect here (there are no segment files, for instance) say so
 * in their documentation, which DescribeConfigs returns when asked.
 */
import { DEFAULT_CONFIG, type BrokerConfig } from './config.js'
import { quote } from './quote.js'
import { ConfigSource, ConfigType } from '../protocol/constants.js'

export interface ConfigDef {
  readonly name: string
  readonly type: ConfigType
  readonly default: string
  /** Returns an error message, or null when the value is valid. */
  readonly validate: (value: string) => string | null
  readonly documentation: string
}

const LONG_MAX = '9223372036854775807'

function long(min: bigint) {
  return (value: string): string | null => {
    if (!/^-?\d+$/.test(value)) return 'must be a whole number'
    const n = BigInt(value)
    if (n < min) return `must be at least ${min}`
    if (n > BigInt(LONG_MAX)) return 'must fit in a 64-bit integer'
    return null
  }
}

function int(min: number) {
  return (value: string): string | null => {
    if (!/^-?\d+$/.test(value)) return 'must be a whole number'
    const n = Number(value)
    if (n < min) return `must be at least ${min}`
    if (n > 2147483647) return 'must fit in a 32-bit integer'
    return null
  }
}

function oneOf(...allowed: string[]) {
  return (value: string): string | null => (allowed.includes(value) ? null : `must be one of ${allowed.join(', ')}`)
}

function listOf(...allowed: string[]) {
  return (value: string): string | null => {
    const items = value.split(',').map((s) => s.trim())
    if (items.length === 0 || items.some((item) => !allowed.includes(item))) {
      return `must be a comma-separated list of ${allowed.join(', ')}`
    }
    return null
  }
}

function ratio(value: string): string | null {
  const n = Number(value)
  return value.trim() !== '' && Number.isFinite(n) && n >= 0 && n <= 1 ? null : 'must be a number from 0 to 1'
}

function bool(value: string): string | null {
  return value === 'true' || value === 'false' ? null : 'must be true or false'
}

const NO_EFFECT = ' Accepted for compatibility; Brook has no segment files, so it has no effect.'

export const TOPIC_CONFIGS: readonly ConfigDef[] = [
  {
    name: 'cleanup.policy',
    type: ConfigType.LIST,
    default: 'delete',
    validate: listOf('delete', 'compact'),
    documentation: 'delete: drop old batches by retention.ms/retention.bytes; compact: keep the latest record per key.',
  },
  {
    name: 'compression.type',
    type: ConfigType.STRING,
    default: 'producer',
    validate: (value) => (value === 'producer' ? null : 'Brook stores batches as the producer compressed them; only producer is supported'),
    documentation: 'Batches are stored with the compression the producer chose.',
  },
  {
    name: 'delete.retention.ms',
    type: ConfigType.LONG,
    default: '86400000',
    validate: long(0n),
    documentation: 'How long tombstones are kept in a compacted topic.',
  },
  {
    name: 'max.compaction.lag.ms',
    type: ConfigType.LONG,
    default: LONG_MAX,
    validate: long(1n),
    documentation: 'The longest a record stays uncompacted.',
  },
  {
    name: 'max.message.bytes',
    type: ConfigType.INT,
    default: '1048588',
    validate: int(0),
    documentation: 'The largest record batch the topic accepts.',
  },
  {
    name: 'message.timestamp.after.max.ms',
    type: ConfigType.LONG,
    default: '3600000',
    validate: long(0n),
    documentation: 'CreateTime topics refuse records timestamped more than this ahead of the broker clock (INVALID_TIMESTAMP).',
  },
  {
    name: 'message.timestamp.before.max.ms',
    type: ConfigType.LONG,
    default: LONG_MAX,
    validate: long(0n),
    documentation: 'CreateTime topics refuse records timestamped more than this behind the broker clock (INVALID_TIMESTAMP).',
  },
  {
    name: 'message.timestamp.type',
    type: ConfigType.STRING,
    default: 'CreateTime',
    validate: oneOf('CreateTime', 'LogAppendTime'),
    documentation: 'CreateTime keeps the producer timestamp; LogAppendTime stamps batches with the broker clock.',
  },
  {
    name: 'min.cleanable.dirty.ratio',
    type: ConfigType.DOUBLE,
    default: '0.5',
    validate: ratio,
    documentation: 'The share of uncompacted log that triggers compaction.',
  },
  {
    name: 'min.compaction.lag.ms',
    type: ConfigType.LONG,
    default: '0',
    validate: long(0n),
    documentation: 'The shortest a record stays uncompacted.',
  },
  {
    name: 'min.insync.replicas',
    type: ConfigType.INT,
    default: '1',
    validate: int(1),
    documentation: 'With acks=all, the fewest in-sync replicas a write needs.',
  },
  {
    name: 'retention.bytes',
    type: ConfigType.LONG,
    default: '-1',
    validate: long(-1n),
    documentation: 'The most bytes a partition keeps before old batches are deleted; -1 for no limit.',
  },
  {
    name: 'retention.ms',
    type: ConfigType.LONG,
    default: '604800000',
    validate: long(-1n),
    documentation: 'How long batches are kept; -1 for no limit.',
  },
  {
    name: 'segment.bytes',
    type: ConfigType.INT,
    default: '1073741824',
    validate: int(14),
    documentation: `The segment file size in Kafka.${NO_EFFECT}`,
  },
  {
    name: 'segment.ms',
    type: ConfigType.LONG,
    default: '604800000',
    validate: long(1n),
    documentation: `The time after which Kafka rolls a segment.${NO_EFFECT}`,
  },
  {
    name: 'unclean.leader.election.enable',
    type: ConfigType.BOOLEAN,
    default: 'false',
    validate: bool,
    documentation: 'Whether a replica outside the ISR may become leader (losing data).',
  },
]

const byName = new Map(TOPIC_CONFIGS.map((def) => [def.name, def]))

export function topicConfigDef(name: string): ConfigDef | undefined {
  return byName.get(name)
}

/** Checks a set of topic configs; returns the first problem as a message, or null. */
export function validateTopicConfigs(configs: Record<string, string | null>): string | null {
  for (const [name, value] of Object.entries(configs)) {
    const def = byName.get(name)
    if (!def) return `unknown topic config ${quote(name)}`
    if (value === null) return `config '${name}' needs a value`
    const problem = def.validate(value)
    if (problem) return `invalid value ${quote(value)} for ${name}: ${problem}`
  }
  return null
}

export interface ResolvedConfig {
  name: string
  value: string
  source: number
  def: ConfigDef
}

/**
 * Topic configs whose default is a broker setting (Kafka's `message.max.bytes` for max.message.bytes, and so on):
 * the setting's value when the node was started with one other than its own default, else null (the topic config's
 * default applies).
 */
function brokerDefault(name: string, broker: BrokerConfig): string | null {
  const key = BROKER_DEFAULTS[name]
  return key === undefined || broker[key] === DEFAULT_CONFIG[key] ? null : String(broker[key])
}

const BROKER_DEFAULTS: Readonly<Record<string, 'messageMaxBytes' | 'logMessageTimestampBeforeMaxMs' | 'logMessageTimestampAfterMaxMs'>> = {
  'max.message.bytes': 'messageMaxBytes',
  'message.timestamp.before.max.ms': 'logMessageTimestampBeforeMaxMs',
  'message.timestamp.after.max.ms': 'logMessageTimestampAfterMaxMs',
}

/** Every topic config with its effective value and where it comes from. */
export function resolveTopicConfigs(set: Record<string, string>, broker: BrokerConfig): ResolvedConfig[] {
  return TOPIC_CONFIGS.map((def) => {
    if (set[def.name] !== undefined) return { name: def.name, value: set[def.name]!, source: ConfigSource.TOPIC_CONFIG, def }
    const fromBroker = brokerDefault(def.name, broker)
    if (fromBroker !== null) return { name: def.name, value: fromBroker, source: ConfigSource.STATIC_BROKER_CONFIG, def }
    return { name: def.name, value: def.default, source: ConfigSource.DEFAULT_CONFIG, def }
  })
}

/** The effective value of one topic config. */
export function topicConfig(set: Record<string, string>, name: string, broker: BrokerConfig): string {
  if (set[name] !== undefined) return set[name]!
  return brokerDefault(name, broker) ?? byName.get(name)?.default ?? ''
}
