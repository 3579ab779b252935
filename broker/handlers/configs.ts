/**
 * DescribeConfigs: v0-4.
 *
 * Behaviour
 * - Topic resources (type 2): every topic config with its effective value and source (TOPIC_CONFIG when set on the
 *   topic, otherwise the broker's or Kafka's default), as Kafka does (Tansu's librdkafka sweep found brokers that
 *   returned no entries). `configurationKeys` narrows the list; unknown keys are ignored, as in Kafka.
 * - Broker resources (type 4): this node's settings under Kafka's names, for the resource name of this node's id
 *   or "" (the cluster default). Another broker id is INVALID_REQUEST; other resource types INVALID_REQUEST.
 * - An unknown topic is UNKNOWN_TOPIC_OR_PARTITION with a message.
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
import { defineHandler, type BrokerServices } from '../handler.js'
import { quote } from '../quote.js'
import type { TopicConfig } from '../topic-configs.js'
import { topicConfigs } from '../cluster/metadata/image.js'

type Entry = DescribeConfigsResponseDescribeConfigsResourceResult

/** This node's settings, under Kafka's broker config names. */
export function brokerConfigEntries(services: BrokerServices): { name: string; value: string; type: number; documentation: string }[] {
  const c = services.config
  return [
    { name: 'node.id', value: String(c.nodeId), type: ConfigType.INT, documentation: 'This node\'s id.' },
    { name: 'broker.id', value: String(c.nodeId), type: ConfigType.INT, documentation: 'This node\'s id.' },
    { name: 'listeners', value: `PLAINTEXT://${c.host}:${services.endpoint.port}`, type: ConfigType.LIST, documentation: 'Where the node listens.' },
    { name: 'advertised.listeners', value: `PLAINTEXT://${services.endpoint.host}:${services.endpoint.port}`, type: ConfigType.LIST, documentation: 'What clients are told to connect to.' },
    { name: 'log.dirs', value: c.dataDir, type: ConfigType.STRING, documentation: 'The data directory (one LevelDB database).' },
    { name: 'auto.create.topics.enable', value: String(c.autoCreateTopics), type: ConfigType.BOOLEAN, documentation: 'Create unknown topics on Metadata requests.' },
    { name: 'num.partitions', value: String(c.defaultPartitions), type: ConfigType.INT, documentation: 'Partitions of auto-created topics.' },
    { name: 'default.replication.factor', value: String(c.defaultReplicationFactor), type: ConfigType.INT, documentation: 'Replication factor of auto-created topics and of topics created with -1.' },
    { name: 'message.max.bytes', value: String(c.messageMaxBytes), type: ConfigType.INT, documentation: 'Default max.message.bytes of topics.' },
    { name: 'log.message.timestamp.before.max.ms', value: String(c.logMessageTimestampBeforeMaxMs), type: ConfigType.LONG, documentation: 'Default message.timestamp.before.max.ms of topics.' },
    { name: 'log.message.timestamp.after.max.ms', value: String(c.logMessageTimestampAfterMaxMs), type: ConfigType.LONG, documentation: 'Default message.timestamp.after.max.ms of topics.' },
    { name: 'log.record.validation.enable', value: String(c.recordValidation), type: ConfigType.BOOLEAN, documentation: 'Whether produce walks the records of a batch (false: headers only).' },
    { name: 'socket.request.max.bytes', value: String(c.socketRequestMaxBytes), type: ConfigType.INT, documentation: 'Largest request frame accepted.' },
    { name: 'queued.max.requests', value: String(c.queuedMaxRequests), type: ConfigType.INT, documentation: 'Requests the node holds at once before it stops reading more.' },
    { name: 'queued.max.request.bytes', value: String(c.queuedMaxRequestBytes), type: ConfigType.LONG, documentation: 'Request bytes the node holds at once before it stops reading more.' },
    { name: 'queued.max.response.bytes', value: String(c.queuedMaxResponseBytes), type: ConfigType.LONG, documentation: 'Bytes of Fetch answers the node holds at once, read and not yet sent (Brook\'s own).' },
    { name: 'log.flush.offset.checkpoint.interval.ms', value: String(c.logFlushOffsetCheckpointIntervalMs), type: ConfigType.INT, documentation: 'How often producer states are checkpointed, so a restart after a crash replays only what came after.' },
    { name: 'fetch.max.bytes', value: String(c.fetchMaxBytes), type: ConfigType.INT, documentation: 'Most record bytes in one Fetch answer (one larger first batch excepted).' },
    { name: 'connections.max.idle.ms', value: String(c.connectionsMaxIdleMs), type: ConfigType.LONG, documentation: 'Idle connections are closed after this long.' },
    { name: 'max.connections', value: String(c.maxConnections), type: ConfigType.INT, documentation: 'Connections served at once; more wait until one closes.' },
    { name: 'max.connections.per.ip', value: String(c.maxConnectionsPerIp), type: ConfigType.INT, documentation: 'Connections from one address; more are closed.' },
    { name: 'log.retention.check.interval.ms', value: String(c.retentionCheckIntervalMs), type: ConfigType.LONG, documentation: 'How often retention runs.' },
    { name: 'log.flush.interval.messages', value: c.fsync ? '1' : '9223372036854775807', type: ConfigType.LONG, documentation: 'Whether each write is synced to disk (--fsync).' },
  ]
}

/**
 * A topic's configs: on a cluster node the metadata image's overrides (what the controller committed, which the node's
 * local topic follows a moment later) over this node's defaults, as a KRaft broker answers from its metadata cache;
 * else the topic's own. Undefined for a topic that does not exist.
 */
function topicConfig(services: BrokerServices, name: string): TopicConfig | undefined {
  const image = services.quorum?.controller.image
  if (!image) return services.topics.get(name)?.config
  return image.topic(name) ? services.topics.parseConfig(topicConfigs(image, name)) : undefined
}

function describeTopic(services: BrokerServices, name: string, keys: string[] | null, request: DescribeConfigsRequest, version: number): DescribeConfigsResponseDescribeConfigsResult {
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
      synonyms: request.includeSynonyms && version >= 1
        ? [
            ...(c.source === ConfigSource.TOPIC_CONFIG ? [{ name: c.name, value: c.value, source: ConfigSource.TOPIC_CONFIG }] : []),
            { name: c.name, value: c.def.default, source: ConfigSource.DEFAULT_CONFIG },
          ]
        : [],
      configType: c.def.type,
      documentation: request.includeDocumentation ? c.def.documentation : null,
    }))
  return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ResourceType.TOPIC, resourceName: name, configs }
}

function describeBroker(services: BrokerServices, name: string, keys: string[] | null, request: DescribeConfigsRequest): DescribeConfigsResponseDescribeConfigsResult {
  if (name !== '' && name !== String(services.endpoint.nodeId)) {
    return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `this is broker ${services.endpoint.nodeId}, not ${quote(name)}`, resourceType: ResourceType.BROKER, resourceName: name, configs: [] }
  }
  const configs: Entry[] = brokerConfigEntries(services)
    .filter((c) => keys === null || keys.includes(c.name))
    .map((c) => ({
      name: c.name,
      value: c.value,
      readOnly: true,
      isDefault: false,
      configSource: ConfigSource.STATIC_BROKER_CONFIG,
      isSensitive: false,
      synonyms: request.includeSynonyms ? [{ name: c.name, value: c.value, source: ConfigSource.STATIC_BROKER_CONFIG }] : [],
      configType: c.type,
      documentation: request.includeDocumentation ? c.documentation : null,
    }))
  return { errorCode: ErrorCode.NONE, errorMessage: null, resourceType: ResourceType.BROKER, resourceName: name, configs }
}

export const describeConfigsHandler = defineHandler<DescribeConfigsRequest, DescribeConfigsResponse>(
  describeConfigs,
  '0-4',
  (request, { services, apiVersion }) => ({
    throttleTimeMs: 0,
    results: request.resources.map(({ resourceType, resourceName, configurationKeys }) => {
      if (resourceType === ResourceType.TOPIC) return describeTopic(services, resourceName, configurationKeys, request, apiVersion)
      if (resourceType === ResourceType.BROKER) return describeBroker(services, resourceName, configurationKeys, request)
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: `resource type ${resourceType} is not supported`, resourceType, resourceName, configs: [] }
    }),
  }),
)
