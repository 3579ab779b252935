/**
 * DescribeConfigs: v0-4.
 *
 * Behaviour
 * - Topic resources (type 2): every topic config with its effective value and source (TOPIC_CONFIG when set on the
 *   topic, otherwise the broker's or Kafka's default), as Kafka does (Tansu's librdkafka sweep found brokers that
 *   returned no entries). `configurationKeys` narrows the list (null or empty: every config); unknown keys are ignored, as in Kafka. Synonyms, when
 *   asked, are the topic's setting, then the node's and Kafka's default under the broker config's name
 *   (`log.retention.ms` for `retention.ms`), as Kafka's ServerTopicConfigSynonyms names them.
 * - Broker resources (type 4): this node's settings under Kafka's names, for the resource name of this node's id.
 *   Another broker id is INVALID_REQUEST. A
 *   setting at its default is DEFAULT_CONFIG with isDefault, as Kafka describes a broker config nothing sets; one set
 *   by a flag or the config file STATIC_BROKER_CONFIG (its synonyms: that, then the default). They are read-only,
 *   except the broker configs that are topic configs' defaults (`log.retention.ms`, `log.cleanup.policy`), listed
 *   with their values on this node: those are dynamic (alter-configs.ts), DYNAMIC_BROKER_CONFIG when set for this node,
 *   DYNAMIC_DEFAULT_BROKER_CONFIG when set for every node, with every level below as synonyms. The name "" describes
 *   the dynamic configs set for every node, and only those, as Kafka's ConfigHelper does. Long.MAX_VALUE ("no limit")
 *   is written as Kafka writes it.
 * - BROKER_LOGGER resources (type 8, KIP-412): this node's log level as its `root` logger (broker-loggers.ts).
 * - Other resource types are INVALID_REQUEST.
 * - A topic name Kafka's rule refuses ('', 'bad name!', longer than 249 characters) is INVALID_TOPIC_EXCEPTION with
 *   a message saying why, as ConfigHelper.describeConfigs answers (its Topic.validate comes before the lookup); an
 *   unknown topic is UNKNOWN_TOPIC_OR_PARTITION with a message.
 * - On a cluster node a topic and its configs are the metadata image's (the overrides the controller committed, over
 *   this node's defaults); broker resources are this node's own.
 *
 * Version notes
 * - v0 has isDefault instead of configSource; v1+ return synonyms when asked; v3+ configType and (when asked)
 *   documentation.
 */
import {
  describeConfigs,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseDescribeConfigsResult,
  type DescribeConfigsResponseDescribeConfigsResourceResult,
} from '../../protocol/messages/describe-configs.js'
import { ErrorCode } from '../../protocol/errors.js'
import { ConfigSource, ConfigType, ResourceType } from '../../protocol/constants.js'
import { describeBrokerLoggers } from './broker-loggers.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { quote } from '../quote.js'
import { dynamicBrokerConfigDef, kafkaLong, LONG_MAX, type ConfigSynonym, type TopicConfig } from '../topic-configs.js'
import { topicConfigs } from '../cluster/metadata/image.js'
import { DEFAULT_CONFIG, type BrokerConfig } from '../config.js'
import { topicNameProblem } from '../topics.js'
import { hostPort } from '../../client/address.js'

type Entry = DescribeConfigsResponseDescribeConfigsResourceResult

/** One of this node's settings as DescribeConfigs describes it. */
export interface BrokerConfigEntry {
  /** Kafka's name for it (`message.max.bytes`). */
  name: string
  value: string
  /** ConfigType (DescribeConfigsResponse.json). */
  type: number
  documentation: string
  /**
   * The value when nothing sets it (flags or config file), when it has one: a setting at it is described as Kafka
   * describes an unset broker config, DEFAULT_CONFIG with isDefault; any other as STATIC_BROKER_CONFIG. Absent for
   * the node's identity and addresses, which a node is always given.
   */
  default?: string
  /**
   * For the broker defaults of topic configs, which can change while the node runs (dynamic broker configs): where the
   * value comes from (ConfigSource) and the chain of values it was chosen from, the one in force first.
   */
  dynamic?: { readonly source: number; readonly synonyms: readonly ConfigSynonym[] }
}

/** This node's settings, under Kafka's broker config names. */
export function brokerConfigEntries(services: BrokerServices): BrokerConfigEntry[] {
  const c = services.config
  const written = (value: unknown, type: number): string => (type === ConfigType.LONG && typeof value === 'number' ? kafkaLong(value) : String(value))
  const setting = (name: string, key: keyof BrokerConfig, type: number, documentation: string): BrokerConfigEntry => ({
    name,
    value: written(c[key], type),
    type,
    documentation,
    default: written(DEFAULT_CONFIG[key], type),
  })
  const own: BrokerConfigEntry[] = [
    { name: 'node.id', value: String(c.nodeId), type: ConfigType.INT, documentation: 'This node\'s id.' },
    { name: 'broker.id', value: String(c.nodeId), type: ConfigType.INT, documentation: 'This node\'s id.' },
    { name: 'listeners', value: `PLAINTEXT://${hostPort(services.listener.host, services.listener.port)}`, type: ConfigType.LIST, documentation: 'Where the node listens.' },
    { name: 'advertised.listeners', value: `PLAINTEXT://${hostPort(services.endpoint.host, services.endpoint.port)}`, type: ConfigType.LIST, documentation: 'What clients are told to connect to.' },
    { name: 'log.dirs', value: c.dataDir, type: ConfigType.STRING, documentation: 'The data directory (one LevelDB database).' },
    setting('auto.create.topics.enable', 'autoCreateTopics', ConfigType.BOOLEAN, 'Create unknown topics on Metadata requests.'),
    setting('num.partitions', 'defaultPartitions', ConfigType.INT, 'Partitions of auto-created topics.'),
    setting('default.replication.factor', 'defaultReplicationFactor', ConfigType.INT, 'Replication factor of auto-created topics and of topics created with -1.'),
    setting('message.max.bytes', 'messageMaxBytes', ConfigType.INT, 'Default max.message.bytes of topics.'),
    setting('log.message.timestamp.before.max.ms', 'logMessageTimestampBeforeMaxMs', ConfigType.LONG, 'Default message.timestamp.before.max.ms of topics.'),
    setting('log.message.timestamp.after.max.ms', 'logMessageTimestampAfterMaxMs', ConfigType.LONG, 'Default message.timestamp.after.max.ms of topics.'),
    setting('log.record.validation.enable', 'recordValidation', ConfigType.BOOLEAN, 'Whether produce walks the records of a batch (false: headers only).'),
    setting('socket.request.max.bytes', 'socketRequestMaxBytes', ConfigType.INT, 'Largest request frame accepted.'),
    setting('queued.max.requests', 'queuedMaxRequests', ConfigType.INT, 'Requests the node holds at once before it stops reading more.'),
    setting('queued.max.request.bytes', 'queuedMaxRequestBytes', ConfigType.LONG, 'Request bytes the node holds at once before it stops reading more.'),
    setting('queued.max.response.bytes', 'queuedMaxResponseBytes', ConfigType.LONG, 'Bytes of Fetch answers the node holds at once, read and not yet sent (Brook\'s own).'),
    setting('log.flush.offset.checkpoint.interval.ms', 'logFlushOffsetCheckpointIntervalMs', ConfigType.INT, 'How often producer states are checkpointed, so a restart after a crash replays only what came after.'),
    setting('fetch.max.bytes', 'fetchMaxBytes', ConfigType.INT, 'Most record bytes in one Fetch answer (one larger first batch excepted).'),
    setting('connections.max.idle.ms', 'connectionsMaxIdleMs', ConfigType.LONG, 'Idle connections are closed after this long.'),
    setting('max.connections', 'maxConnections', ConfigType.INT, 'Connections served at once; more wait until one closes.'),
    setting('max.connections.per.ip', 'maxConnectionsPerIp', ConfigType.INT, 'Connections from one address; more are closed.'),
    setting('log.retention.check.interval.ms', 'logRetentionCheckIntervalMs', ConfigType.LONG, 'How often retention runs.'),
    { name: 'log.flush.interval.messages', value: c.fsync ? '1' : LONG_MAX, type: ConfigType.LONG, documentation: 'Whether each write is synced to disk (--fsync).', default: LONG_MAX },
  ]
  // The broker configs that are topic configs' defaults (log.retention.ms for retention.ms), as topic synonyms name
  // them, with this node's value, dynamic configs included: Kafka describes every broker config. Topic configs without
  // one (remote.storage.enable) are no broker config.
  const described = new Map(services.topics.parseConfig({}, { stored: true }).described.flatMap((d) => (d.def.serverName === null ? [] : [[d.def.serverName, d] as const])))
  const withDynamic = (entry: BrokerConfigEntry): BrokerConfigEntry => {
    const d = described.get(entry.name)
    return d === undefined ? entry : { ...entry, value: d.value, dynamic: { source: d.source, synonyms: d.synonyms } }
  }
  const listed = new Set(own.map((entry) => entry.name))
  const topicDefaults = [...described].flatMap(([name, d]): BrokerConfigEntry[] =>
    listed.has(name) ? [] : [{ name, value: d.value, type: d.def.type, documentation: `Default ${d.name} of topics.`, default: d.def.default }],
  )
  return [...own, ...topicDefaults].map(withDynamic)
}

/**
 * A topic's configs: on a cluster node the metadata image's overrides (what the controller committed, which the node's
 * local topic follows a moment later) over this node's defaults, as a KRaft broker answers from its metadata cache;
 * else the topic's own. Undefined for a topic that does not exist.
 */
function topicConfig(services: BrokerServices, name: string): TopicConfig | undefined {
  const image = services.quorum?.controller.image
  if (!image) return services.topics.get(name)?.config
  return image.topic(name) ? services.topics.parseConfig(topicConfigs(image, name), { stored: true }) : undefined
}

function describeTopic(services: BrokerServices, name: string, keys: string[] | null, request: DescribeConfigsRequest, version: number): DescribeConfigsResponseDescribeConfigsResult {
  const nameProblem = topicNameProblem(name)
  if (nameProblem) return { errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: nameProblem, resourceType: ResourceType.TOPIC, resourceName: name, configs: [] }
  const config = topicConfig(services, name)
  if (!config) {
    return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${quote(name)} does not exist`, resourceType: ResourceType.TOPIC, resourceName: name, configs: [] }
  }
  const configs: Entry[] = config.described
    .filter((c) => keys === null || keys.includes(c.name))
    .map((c) => ({
      name: c.name,
      value: c.value,
      readOnly: false,
      isDefault: c.source !== ConfigSource.TOPIC_CONFIG,
      configSource: c.source,
      isSensitive: false,
      synonyms: request.includeSynonyms && version >= 1 ? [...c.synonyms] : [],
      configType: c.def.type,
      documentation: request.includeDocumentation ? c.def.documentation : null,
    }))
  return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ResourceType.TOPIC, resourceName: name, configs }
}

function describeBroker(services: BrokerServices, name: string, keys: string[] | null, request: DescribeConfigsRequest): DescribeConfigsResponseDescribeConfigsResult {
  // The empty name is the cluster-wide default: Kafka's ConfigHelper.describeConfigs answers the dynamic defaults set
  // for every broker, and only those.
  if (name === '') {
    const configs: Entry[] = Object.entries(services.topics.dynamicConfigs.cluster)
      .filter(([config]) => keys === null || keys.includes(config))
      .map(([config, value]) => {
        const def = dynamicBrokerConfigDef(config)
        return {
          name: config,
          value,
          readOnly: false,
          isDefault: false,
          configSource: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
          isSensitive: false,
          synonyms: request.includeSynonyms ? [{ name: config, value, source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG }] : [],
          configType: def?.type ?? ConfigType.STRING,
          documentation: request.includeDocumentation ? `Default ${def?.name ?? config} of topics on every node.` : null,
        }
      })
    return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ResourceType.BROKER, resourceName: name, configs }
  }
  if (name !== String(services.endpoint.nodeId)) {
    return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `this is broker ${services.endpoint.nodeId}, not ${quote(name)}`, resourceType: ResourceType.BROKER, resourceName: name, configs: [] }
  }
  const configs: Entry[] = brokerConfigEntries(services)
    .filter((c) => keys === null || keys.includes(c.name))
    .map((c): Entry => {
      if (c.dynamic !== undefined) {
        return {
          name: c.name,
          value: c.value,
          readOnly: false,
          isDefault: c.dynamic.source === ConfigSource.DEFAULT_CONFIG,
          configSource: c.dynamic.source,
          isSensitive: false,
          synonyms: request.includeSynonyms ? [...c.dynamic.synonyms] : [],
          configType: c.type,
          documentation: request.includeDocumentation ? c.documentation : null,
        }
      }
      const isDefault = c.default === c.value
      return {
        name: c.name,
        value: c.value,
        readOnly: true,
        isDefault,
        configSource: isDefault ? ConfigSource.DEFAULT_CONFIG : ConfigSource.STATIC_BROKER_CONFIG,
        isSensitive: false,
        synonyms: request.includeSynonyms
          ? [
              ...(isDefault ? [] : [{ name: c.name, value: c.value, source: ConfigSource.STATIC_BROKER_CONFIG }]),
              ...(c.default === undefined ? [] : [{ name: c.name, value: c.default, source: ConfigSource.DEFAULT_CONFIG }]),
            ]
          : [],
        configType: c.type,
        documentation: request.includeDocumentation ? c.documentation : null,
      }
    })
  return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ResourceType.BROKER, resourceName: name, configs }
}

export const describeConfigsHandler = defineHandler<DescribeConfigsRequest, DescribeConfigsResponse>(
  describeConfigs,
  '0-4',
  (request, { services, apiVersion }) => ({
    throttleTimeMs: 0,
    results: request.resources.map(({ resourceType, resourceName, configurationKeys }) => {
      // An empty list asks for every config, as null does (ConfigHelper.describeConfigs); @platformatic/kafka sends [].
      const keys = configurationKeys?.length === 0 ? null : configurationKeys
      if (resourceType === ResourceType.TOPIC) return describeTopic(services, resourceName, keys, request, apiVersion)
      if (resourceType === ResourceType.BROKER) return describeBroker(services, resourceName, keys, request)
      if (resourceType === ResourceType.BROKER_LOGGER) return describeBrokerLoggers(services, resourceName, keys)
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `resource type ${resourceType} is not supported`, resourceType, resourceName, configs: [] }
    }),
  }),
)
