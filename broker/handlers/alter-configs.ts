/**
 * AlterConfigs v0-2 and IncrementalAlterConfigs v0-1, for topics and the dynamic broker configs of BROKER resources;
 * IncrementalAlterConfigs also for this node's BROKER_LOGGER resource, its log level (broker-loggers.ts), which is
 * never forwarded.
 *
 * Behaviour
 * - AlterConfigs replaces a topic's whole set of configs with the one given (unlisted configs return to their
 *   defaults), as Kafka's legacy API does; IncrementalAlterConfigs applies SET, DELETE (back to the default), APPEND
 *   and SUBTRACT (list-typed configs only, such as cleanup.policy) one config at a time.
 * - Every value is validated against the topic config table before anything changes; a bad name or value is
 *   INVALID_CONFIG with a message naming the config, and nothing of that resource is applied. That holds for a topic
 *   that does not exist too (its change validated against no configs, as Kafka's controller validates before it looks
 *   the resource up); a valid change of one is UNKNOWN_TOPIC_OR_PARTITION. A config named twice
 *   in one resource is INVALID_REQUEST, and so is every mention of a resource named more than once in one request,
 *   none of which is applied (ConfigAdminManager.preprocess: "Each resource must appear at most once."). A
 *   config set to null (in IncrementalAlterConfigs, by a SET, APPEND or SUBTRACT) is INVALID_REQUEST ("Null value not
 *   supported for : retention.ms"), also from ConfigAdminManager.preprocess, before the resource's type or topic is
 *   looked at.
 *   `validateOnly` checks and changes nothing.
 * - Changes take effect at once for produce-time configs (max.message.bytes, message.timestamp.type) and at the next
 *   cleaner pass for retention and compaction.
 * - Broker resources (the name "" for every node, `kafka-configs.sh --entity-default`, or a node id; a single node
 *   takes only its own) change the broker defaults of topic configs while nodes run, as Kafka's DynamicLogConfig:
 *   `message.max.bytes`, `log.retention.ms`, `log.cleanup.policy`... (every broker name of a topic config's synonyms,
 *   topic-configs.ts DynamicBrokerConfigs). Each value is checked by its topic config's rule, and the defaults they make
 *   on the node they are for (each node with dynamic configs of its own, for ""), as the image of the node checking
 *   knows them, together (min.compaction.lag.ms at most max.compaction.lag.ms): INVALID_CONFIG. A broker config read at
 *   start only (`num.partitions`) is INVALID_REQUEST ("Cannot update these configs dynamically", ConfigAdminManager's
 *   words), an unknown name INVALID_CONFIG, a name that is neither "" nor a node id INVALID_REQUEST. A single node
 *   stores them in its data (TopicManager.storeDynamicConfigs); a cluster node sends them to the active controller as
 *   ConfigRecords of the BROKER resource (forwarded as a topic change is), which every node follows
 *   (cluster/local-logs.ts). Topics without their own setting take them at once.
 * - On a cluster node a topic's configs are the metadata image's: the change goes to the active controller
 *   (forwarded to it, KIP-590, as this request with the one resource, when this node is not it; the controller
 *   listener answers both APIs for forwarded changes), which computes the new overrides from its own image, so
 *   concurrent changes apply one after the other, and writes one ConfigRecord per override set, changed or removed
 *   (cluster/topic-changes.ts). Every node applies them from its image to its topic (local-logs.ts); the answer comes
 *   once committed and once this node's image holds them. Unknown topics are those the image does not hold. A
 *   change no controller took within 60 s (none known, reached or answering: Kafka's forwarding timeout) is
 *   REQUEST_TIMED_OUT for that resource, saying why.
 * - The topic's name is checked first, as Kafka's ControllerConfigurationValidator.validateTopicName does before it
 *   looks the topic up: '' is INVALID_REQUEST ("Default topic resources are not allowed."), a name Kafka's rule
 *   refuses ('bad name!') INVALID_TOPIC_EXCEPTION saying why. Then unknown topics: UNKNOWN_TOPIC_OR_PARTITION.
 * - A storage failure is KAFKA_STORAGE_ERROR for that resource, and the topic keeps its configs.
 */
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../protocol/messages/alter-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { ConfigOperation, ConfigType, ResourceType } from '../../protocol/constants.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { alterBrokerConfigsAtController, alterTopicConfigsAtController, forwardsChanges, type ChangeResult, type ForwardedRequest, type TopicChangeOptions } from '../cluster/topic-changes.js'
import { quote } from '../quote.js'
import { repeated } from '../group-by.js'
import { checkDynamicBrokerConfigs, dynamicBrokerConfigDef, notDynamicBrokerConfig, topicConfigDef, type ConfigDef, type DynamicBrokerConfigs, type TopicConfig } from '../topic-configs.js'
import { brokerConfigEntries } from './configs.js'
import { configResourceKey, resourceConfigs } from '../cluster/metadata/image.js'
import { StorageError } from '../../storage/log-store.js'
import { topicNameProblem } from '../topics.js'
import { alterBrokerLoggers } from './broker-loggers.js'

interface Result {
  errorCode: number
  errorMessage: string | null
  resourceType: number
  resourceName: string
}

/**
 * Runs `alter` on each resource the request names once. A resource (type and name) named more than once is
 * INVALID_REQUEST at each mention, and none of its mentions is applied, as Kafka's ConfigAdminManager.preprocess
 * answers both APIs.
 */
function alterEachOnce<R extends { resourceType: number; resourceName: string }>(resources: readonly R[], alter: (resource: R) => Promise<Result>): Promise<Result[]> {
  const key = (resource: R) => `${resource.resourceType}\0${resource.resourceName}`
  const twice = repeated(resources.map(key))
  return Promise.all(
    resources.map(async (resource) => {
      if (!twice.has(key(resource))) return alter(resource)
      const { resourceType, resourceName } = resource
      return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Each resource must appear at most once.', resourceType, resourceName }
    }),
  )
}

/** The controller's answer for the one resource of a forwarded request. */
function answerOf(answer: { errorCode: number; errorMessage?: string | null } | undefined): ChangeResult {
  return answer ? { errorCode: answer.errorCode, errorMessage: answer.errorMessage ?? null } : { errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: 'the controller answered no resource' }
}

/** One config of either API's resource: IncrementalAlterConfigs names an operation, AlterConfigs sets every config. */
interface ConfigChange {
  readonly name: string
  readonly value: string | null
  readonly configOperation?: number
}

/**
 * The refusal of configs a resource sets to null: in AlterConfigs any, in IncrementalAlterConfigs a SET, APPEND or
 * SUBTRACT (a DELETE needs no value). Kafka's broker refuses them before anything else looks at the resource
 * (ConfigAdminManager.preprocess for both APIs).
 */
function nullValues(configs: readonly ConfigChange[]): string | null {
  const nulls = configs.filter((c) => c.configOperation !== ConfigOperation.DELETE && c.value === null).map((c) => c.name)
  return nulls.length > 0 ? `Null value not supported for : ${nulls.join(', ')}` : null
}

/** A config a resource names twice, refused by both APIs with INVALID_REQUEST (ConfigAdminManager.preprocess). */
function repeatedConfig(configs: readonly ConfigChange[]): string | null {
  const names = configs.map((c) => c.name)
  const twice = names.find((name, i) => names.indexOf(name) !== i)
  return twice === undefined ? null : `config ${quote(twice)} appears more than once`
}

/**
 * Checks a resource, computes its new configs with `change`, validates and (unless validateOnly) stores them: on a
 * cluster node through the active controller, where `forwarded` is the request that carries the change there.
 */
async function alterTopic<Res>(
  services: BrokerServices,
  resource: { resourceType: number; resourceName: string; configs: readonly ConfigChange[] },
  validateOnly: boolean,
  change: (current: Readonly<Record<string, string>>) => Record<string, string | null>,
  forwarded: ForwardedRequest<Res>,
  options: TopicChangeOptions,
): Promise<Result> {
  const { resourceType, resourceName } = resource
  const result = (errorCode: number, errorMessage: string | null = null): Result => ({ errorCode, errorMessage, resourceType, resourceName })
  const nulls = nullValues(resource.configs)
  if (nulls !== null) return result(ErrorCode.INVALID_REQUEST, nulls)
  if (resourceType !== ResourceType.TOPIC && resourceType !== ResourceType.BROKER) return result(ErrorCode.INVALID_REQUEST, `resource type ${resourceType} is not supported`)
  const twice = repeatedConfig(resource.configs)
  if (twice !== null) return result(ErrorCode.INVALID_REQUEST, twice)
  if (resourceType === ResourceType.BROKER) return alterBroker(services, resourceName, validateOnly, change, forwarded, options, result)
  if (resourceName === '') return result(ErrorCode.INVALID_REQUEST, 'Default topic resources are not allowed.')
  const nameProblem = topicNameProblem(resourceName)
  if (nameProblem) return result(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem)
  // A topic that does not exist: the change is validated first, against no configs of the topic's, as Kafka's
  // ConfigurationControlManager.validateAlterConfig runs its validator before its existence check.
  const unknownTopic = (): Result => {
    try {
      services.topics.parseConfig(change({}))
    } catch (error) {
      if (error instanceof KafkaError) return result(error.code, error.message)
      throw error
    }
    return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${quote(resourceName)} does not exist`)
  }
  const quorum = services.quorum
  if (quorum) {
    // A node that forwards asks the controller about a topic its own image lacks (it may lag the controller's).
    if (!quorum.controller.image.topic(resourceName) && !forwardsChanges(quorum, options)) return unknownTopic()
    const alter = (current: Readonly<Record<string, string>>) => services.topics.parseConfig(change(current)).overrides
    const altered = await alterTopicConfigsAtController(quorum, { name: resourceName, alter, validateOnly }, forwarded, options)
    if (altered.errorCode === ErrorCode.NONE && !validateOnly) services.log.info(`topic '${resourceName}' configs changed through the controller`)
    return result(altered.errorCode, altered.errorMessage)
  }
  const topic = services.topics.get(resourceName)
  if (!topic) return unknownTopic()
  const altered = (current: TopicConfig): TopicConfig => services.topics.parseConfig(change(current.overrides))
  try {
    if (validateOnly) {
      altered(topic.config)
    } else {
      // Computed in the topic's turn, from the configs it has then: a change asked for beside this one applies first.
      const config = await services.topics.alterConfig(topic, altered)
      if (config !== null) services.log.info(`topic '${topic.name}' configs: ${JSON.stringify(config.overrides)}`)
    }
  } catch (error) {
    if (error instanceof KafkaError) return result(error.code, error.message)
    if (error instanceof StorageError) return result(ErrorCode.KAFKA_STORAGE_ERROR, error.message)
    throw error
  }
  return result(ErrorCode.NONE)
}

/** The names of this node's broker configs (DescribeConfigs of its BROKER resource): those not dynamic are read at start only. */
function brokerConfigNames(services: BrokerServices): ReadonlySet<string> {
  return new Set(brokerConfigEntries(services).map((entry) => entry.name))
}

/**
 * The dynamic broker configs of a BROKER resource: "" for every node, or a node id (on a single node, its own), as
 * `alterTopic` for a topic, which refused null values and a config named twice first. The new configs are checked
 * (checkDynamicBrokerConfigs, then the defaults they make on each node they are for), then stored: on a cluster node
 * through the active controller (ConfigRecords of the BROKER resource in the metadata log, which every node follows),
 * on a single node in its data. The topics' defaults change at once (TopicManager.setDynamicConfigs).
 */
async function alterBroker<Res>(
  services: BrokerServices,
  resourceName: string,
  validateOnly: boolean,
  change: (current: Readonly<Record<string, string>>) => Record<string, string | null>,
  forwarded: ForwardedRequest<Res>,
  options: TopicChangeOptions,
  result: (errorCode: number, errorMessage?: string | null) => Result,
): Promise<Result> {
  const nodeId = services.endpoint.nodeId
  if (resourceName !== '' && !/^\d{1,9}$/.test(resourceName)) return result(ErrorCode.INVALID_REQUEST, `invalid broker name ${quote(resourceName)}: a node id, or "" for every node`)
  const quorum = services.quorum
  if (!quorum && resourceName !== '' && Number(resourceName) !== nodeId) return result(ErrorCode.INVALID_REQUEST, `this is broker ${nodeId}, not ${quote(resourceName)}`)
  const level: keyof DynamicBrokerConfigs = resourceName === '' ? 'cluster' : 'broker'
  // The node whose defaults the change makes (for every node: this one), as far as this node knows them: its own
  // static settings stand for another node's, and the dynamic configs of both levels are this node's image's.
  const dynamicOf = (id: string): DynamicBrokerConfigs =>
    quorum ? { cluster: resourceConfigs(quorum.controller.image, ResourceType.BROKER, ''), broker: resourceConfigs(quorum.controller.image, ResourceType.BROKER, id) } : services.topics.dynamicConfigs
  /** This node's id and those of the nodes with dynamic configs of their own in the image. */
  const brokerResourceNames = (): string[] => {
    const names = new Set([String(nodeId)])
    const every = configResourceKey(ResourceType.BROKER, '')
    for (const key of quorum?.controller.image.configs.keys() ?? []) if (key.startsWith(every) && key !== every) names.add(key.slice(every.length))
    return [...names]
  }
  const checked = (current: Readonly<Record<string, string>>): Record<string, string> => {
    const next = change(current) as Record<string, string>
    checkDynamicBrokerConfigs(next, brokerConfigNames(services))
    // A change for every node meets each node's own dynamic configs.
    for (const id of resourceName === '' ? brokerResourceNames() : [resourceName]) services.topics.checkDynamicConfigs({ ...dynamicOf(id), [level]: next })
    return next
  }
  try {
    if (quorum) {
      const altered = await alterBrokerConfigsAtController(quorum, { name: resourceName, alter: checked, validateOnly }, forwarded, options)
      if (altered.errorCode === ErrorCode.NONE && !validateOnly) services.log.info(`dynamic configs of broker resource ${quote(resourceName)} changed through the controller`)
      return result(altered.errorCode, altered.errorMessage)
    }
    if (validateOnly) {
      checked(services.topics.dynamicConfigs[level])
    } else {
      const stored = await services.topics.storeDynamicConfigs((current) => ({ ...current, [level]: checked(current[level]) }))
      services.log.info(`dynamic configs of broker resource ${quote(resourceName)}: ${JSON.stringify(stored[level])}`)
    }
  } catch (error) {
    if (error instanceof KafkaError) return result(error.code, error.message)
    if (error instanceof StorageError) return result(ErrorCode.KAFKA_STORAGE_ERROR, error.message)
    throw error
  }
  return result(ErrorCode.NONE)
}

function alterConfigsOf(request: AlterConfigsRequest, services: BrokerServices, options: TopicChangeOptions): Promise<AlterConfigsResponse> {
  return alterEachOnce(request.resources, (resource) =>
    alterTopic<AlterConfigsResponse>(
      services,
      resource,
      request.validateOnly,
      () => Object.fromEntries(resource.configs.map((c) => [c.name, c.value])),
      { api: alterConfigs, version: 2, body: { resources: [resource], validateOnly: request.validateOnly }, result: (response) => answerOf(response.responses[0]) },
      options,
    ),
  ).then((responses) => ({ throttleTimeMs: 0, responses }))
}

export const alterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, '0-2', (request, { services }) =>
  alterConfigsOf(request, services, { forward: true }),
)

/** AlterConfigs on a cluster node's controller listener: a change forwarded by another node, run by this controller. */
export const controllerAlterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, '0-2', (request, { services }) =>
  alterConfigsOf(request, services, { forward: false }),
)

function listItems(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/**
 * A topic's overrides after IncrementalAlterConfigs' operations, in order (validated by parseConfig afterwards). A
 * DELETE of a name that is no topic config is no change, as in Kafka; SET, APPEND and SUBTRACT of one is INVALID_CONFIG.
 */
function incrementalChange(
  current: Readonly<Record<string, string>>,
  configs: IncrementalAlterConfigsRequest['resources'][number]['configs'],
  configDef: (name: string) => ConfigDef | undefined,
  unknown: (name: string) => KafkaError,
): Record<string, string | null> {
  const next: Record<string, string | null> = { ...current }
  for (const { name, configOperation, value } of configs) {
    const def = configDef(name)
    // Removing a config that cannot be set changes nothing: Kafka's ConfigurationControlManager writes no record for it
    // and validates only the configs that remain, so it answers NONE.
    if (!def && configOperation === ConfigOperation.DELETE) continue
    if (!def) throw unknown(name)
    switch (configOperation) {
      case ConfigOperation.SET:
        next[name] = value
        break
      case ConfigOperation.DELETE:
        delete next[name]
        break
      case ConfigOperation.APPEND:
      case ConfigOperation.SUBTRACT: {
        if (def.type !== ConfigType.LIST) {
          throw new KafkaError(ErrorCode.INVALID_CONFIG, `'${name}' is not a list, so values cannot be appended or subtracted`)
        }
        const items = listItems(next[name] ?? def.default)
        const change = listItems(value ?? '')
        // An item APPEND names twice, or one already there, is added once (ConfigurationControlManager adds an item
        // only when the list it builds lacks it).
        const result = configOperation === ConfigOperation.APPEND ? [...new Set([...items, ...change])] : items.filter((item) => !change.includes(item))
        next[name] = result.join(',')
        break
      }
      default:
        throw new KafkaError(ErrorCode.INVALID_REQUEST, `unknown config operation ${configOperation} for '${name}'`)
    }
  }
  return next
}

function incrementalAlterConfigsOf(request: IncrementalAlterConfigsRequest, services: BrokerServices, options: TopicChangeOptions): Promise<IncrementalAlterConfigsResponse> {
  return alterEachOnce(request.resources, async (resource) => {
    if (resource.resourceType === ResourceType.BROKER_LOGGER) return alterLoggers(services, resource, request.validateOnly)
    return alterTopic<IncrementalAlterConfigsResponse>(
      services,
      resource,
      request.validateOnly,
      resource.resourceType === ResourceType.BROKER
        ? (current) => incrementalChange(current, resource.configs, dynamicBrokerConfigDef, (name) => notDynamicBrokerConfig(name, brokerConfigNames(services)))
        : (current) => incrementalChange(current, resource.configs, topicConfigDef, (name) => new KafkaError(ErrorCode.INVALID_CONFIG, `unknown topic config ${quote(name)}`)),
      {
        api: incrementalAlterConfigs,
        version: 1,
        body: { resources: [resource], validateOnly: request.validateOnly },
        result: (response) => answerOf(response.responses[0]),
      },
      options,
    )
  }).then((responses) => ({ throttleTimeMs: 0, responses }))
}

/**
 * A BROKER_LOGGER resource (broker-loggers.ts), changed on this node, never forwarded: as Kafka's
 * ConfigAdminManager.preprocess, the null and duplicate checks come first.
 */
function alterLoggers(services: BrokerServices, resource: IncrementalAlterConfigsRequest['resources'][number], validateOnly: boolean): Result {
  const { resourceType, resourceName } = resource
  const refused = repeatedConfig(resource.configs) ?? nullValues(resource.configs)
  if (refused !== null) return { errorCode: ErrorCode.INVALID_REQUEST, errorMessage: refused, resourceType, resourceName }
  return { ...alterBrokerLoggers(services, resourceName, resource.configs, validateOnly), resourceType, resourceName }
}

export const incrementalAlterConfigsHandler = defineHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(
  incrementalAlterConfigs,
  '0-1',
  (request, { services }) => incrementalAlterConfigsOf(request, services, { forward: true }),
)

/** IncrementalAlterConfigs on a cluster node's controller listener, as `controllerAlterConfigsHandler`. */
export const controllerIncrementalAlterConfigsHandler = defineHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(
  incrementalAlterConfigs,
  '0-1',
  (request, { services }) => incrementalAlterConfigsOf(request, services, { forward: false }),
)
