/**
 * CreateTopics v0-7, DeleteTopics v0-6, CreatePartitions v0-3.
 *
 * Behaviour
 * - CreateTopics: per topic, the name is checked (Kafka's rules; a name that differs from an existing topic's only in
 *   '.' versus '_' is INVALID_TOPIC_EXCEPTION, "collides with existing topics"), -1 partitions or replication factor
 *   take the broker defaults (v4+), a replication factor above the number of brokers is INVALID_REPLICATION_FACTOR,
 *   a manual assignment must name every partition once with live brokers and cannot come with counts, and configs
 *   are validated against the topic config table (INVALID_CONFIG with a message naming the config). A topic named
 *   twice in one request is created at neither mention and answered once, INVALID_REQUEST "Duplicate topic name."
 *   (see `byName`), and `__cluster_metadata`, the metadata log's name, is INVALID_REQUEST too (Kafka's
 *   ControllerApis.createTopics); a config without a value is INVALID_CONFIG, on a cluster node too.
 *   `validateOnly` checks everything and creates nothing.
 * - DeleteTopics: by name (v0-5) or by name or id (v6); unknown names are UNKNOWN_TOPIC_OR_PARTITION, unknown ids
 *   UNKNOWN_TOPIC_ID, internal topics cannot be deleted. Parked fetches on a deleted topic answer at once. A name or
 *   id given twice (answered once), a v6 topic with both a name and an id, or with neither, is INVALID_REQUEST with
 *   Kafka's message, and nothing is deleted for it (ControllerApis.deleteTopics).
 * - CreatePartitions: only grows a topic; a count at or below the current one is INVALID_PARTITIONS, in Kafka's words
 *   (`partitionCountProblem`, as the controller answers it). `__consumer_offsets` and `__transaction_state` are
 *   POLICY_VIOLATION: their counts place every group and transactional id (`internalPartitionsFixed`). A topic named twice is grown at neither mention and
 *   answered once, INVALID_REQUEST "Duplicate topic name." (ControllerApis.createPartitions).
 * - On a cluster node CreateTopics, DeleteTopics and CreatePartitions go to the active controller (forwarded to it,
 *   KIP-590, when this node is not it; cluster/topic-changes.ts), which places partitions and spreads their leaders;
 *   each node then opens, grows or drops its logs as its metadata image changes. The replication factor (-1: the
 *   node's default.replication.factor, 1 unless set) may be up to the number of live (registered, unfenced) brokers,
 *   which the controller checks (INVALID_REPLICATION_FACTOR above it); CreateTopics' manual assignments are
 *   INVALID_REPLICA_ASSIGNMENT. New partitions get the topic's replication factor (INVALID_REPLICATION_FACTOR with
 *   fewer live brokers), or the replicas CreatePartitions' assignment names (registered brokers, that many each, at
 *   least one live: else INVALID_REPLICA_ASSIGNMENT). `validateOnly` is checked by the controller. The controller
 *   listener answers the same three APIs for forwarded changes. A topic whose change no controller took within 60 s
 *   (none known, reached or answering: Kafka's forwarding timeout) is REQUEST_TIMED_OUT, saying why.
 * - A storage failure is KAFKA_STORAGE_ERROR for that topic, with the cause in errorMessage (v1+ of CreateTopics and
 *   CreatePartitions, v5+ of DeleteTopics), as Kafka answers a KafkaStorageException (ApiError.fromThrowable);
 *   the topic stays as it was.
 *
 * Version notes
 * - CreateTopics v5+ returns the created topic's partitions, replication factor and configs; v7 its topic id.
 */
import {
  createTopics,
  type CreateTopicsRequest,
  type CreateTopicsRequestCreatableTopic,
  type CreateTopicsResponse,
  type CreateTopicsResponseCreatableTopicResult,
} from '../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import {
  createPartitions,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
} from '../../protocol/messages/create-partitions.js'
import { ErrorCode, KafkaError, errorInfo } from '../../protocol/errors.js'
import { METADATA_TOPIC, ZERO_UUID } from '../../protocol/constants.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { quote } from '../quote.js'
import { groupBy } from '../group-by.js'
import { INTERNAL_TOPICS, partitionCountProblem, topicNameProblem } from '../topics.js'
import type { QuorumRunner } from '../cluster/quorum-runner.js'
import { createPartitionsAtController, createTopicAtController, deleteTopicAtController, forwardsChanges, type TopicChangeOptions } from '../cluster/topic-changes.js'
import { assignmentProblem } from '../cluster/controller/controller.js'
import type { TopicConfig } from '../topic-configs.js'
import { StorageError } from '../../storage/log-store.js'
import { counted } from '../../client/wording.js'

/** More partitions than this in one topic is refused: each one is a log with its own state. */
export const MAX_PARTITIONS = 10_000

class Invalid extends KafkaError {}

/** Kafka's answer to a topic named more than once in one request (ControllerApis). */
const DUPLICATE_TOPIC_NAME = 'Duplicate topic name.'

/**
 * A request's topics, one per name in the order names first appear, each saying whether the request names it more
 * than once. Kafka's controller acts on no mention of a repeated name and answers it once, INVALID_REQUEST
 * "Duplicate topic name." (ControllerApis.createTopics, deleteTopics, createPartitions): the answers are keyed by
 * name (`mapKey` in CreateTopicsResponse.json and DeleteTopicsResponse.json), and librdkafka refuses an answer that
 * names a topic twice ("Broker returned topic ... multiple times") as a parse failure of the whole request, which
 * it then reports for every topic, those created included.
 */
function byName<T extends { name: string }>(topics: readonly T[]): { topic: T; repeated: boolean }[] {
  return [...groupBy(topics, (t) => t.name).values()].map((mentions) => ({ topic: mentions[0]!, repeated: mentions.length > 1 }))
}

/** The broker ids the cluster has; on one node, this node. */
function liveBrokers(services: BrokerServices): number[] {
  return [services.endpoint.nodeId]
}

/**
 * A CreateTopics topic's manual assignment as broker ids by partition (0..n-1), or null when it has none. Throws
 * Invalid: INVALID_REQUEST when a partition count or replication factor comes with it, INVALID_REPLICA_ASSIGNMENT
 * when it does not name partitions 0..n-1, each once. The replicas themselves are checked by the caller.
 */
function manualAssignment(topic: CreateTopicsRequestCreatableTopic): number[][] | null {
  if (topic.assignments.length === 0) return null
  if (topic.numPartitions !== -1 || topic.replicationFactor !== -1) {
    throw new Invalid(ErrorCode.INVALID_REQUEST, 'give either numPartitions and replicationFactor, or an assignment, not both')
  }
  const byPartition = [...topic.assignments].sort((a, b) => a.partitionIndex - b.partitionIndex)
  if (byPartition.some((a, i) => a.partitionIndex !== i)) {
    throw new Invalid(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'the assignment must name partitions 0..n-1, each once')
  }
  return byPartition.map((a) => [...a.brokerIds])
}

/**
 * Why no topic may be created under `name`, or null: Kafka's naming rules (INVALID_TOPIC_EXCEPTION), and the name of
 * the metadata log, which Kafka's ControllerApis.createTopics refuses with INVALID_REQUEST in its own words.
 */
function newNameProblem(name: string): Invalid | null {
  const nameProblem = topicNameProblem(name)
  if (nameProblem) return new Invalid(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem)
  if (name === METADATA_TOPIC) return new Invalid(ErrorCode.INVALID_REQUEST, `Creation of internal topic ${METADATA_TOPIC} is prohibited.`)
  return null
}

function planTopic(services: BrokerServices, topic: CreateTopicsRequestCreatableTopic): { partitions: number; replicationFactor: number; config: TopicConfig } {
  const nameProblem = newNameProblem(topic.name)
  if (nameProblem) throw nameProblem
  const taken = services.topics.newNameProblem(topic.name)
  if (taken) throw taken
  const brokers = liveBrokers(services)
  let partitions = topic.numPartitions
  let replicationFactor = topic.replicationFactor
  const assignments = manualAssignment(topic)
  if (assignments !== null) {
    replicationFactor = assignments[0]!.length
    for (const [partition, ids] of assignments.entries()) {
      if (ids.length === 0 || ids.length !== replicationFactor || new Set(ids).size !== ids.length) {
        throw new Invalid(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `partition ${partition} needs ${replicationFactor} distinct brokers`)
      }
      const unknown = ids.find((id) => !brokers.includes(id))
      if (unknown !== undefined) throw new Invalid(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `broker ${unknown} does not exist`)
    }
    partitions = assignments.length
  }
  if (partitions === -1) partitions = services.config.defaultPartitions
  if (replicationFactor === -1) replicationFactor = services.config.defaultReplicationFactor
  if (partitions < 1) throw new Invalid(ErrorCode.INVALID_PARTITIONS, 'the number of partitions must be at least 1')
  if (partitions > MAX_PARTITIONS) throw new Invalid(ErrorCode.INVALID_PARTITIONS, `at most ${MAX_PARTITIONS} partitions per topic`)
  if (replicationFactor < 1) throw new Invalid(ErrorCode.INVALID_REPLICATION_FACTOR, 'the replication factor must be at least 1')
  if (replicationFactor > brokers.length) {
    throw new Invalid(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${replicationFactor} is larger than the ${counted(brokers.length, 'available broker')}`)
  }
  const configs: Record<string, string | null> = {}
  for (const { name, value } of topic.configs) configs[name] = value
  return { partitions, replicationFactor, config: services.topics.parseConfig(configs) }
}

function created(name: string, topicId: string, plan: { partitions: number; replicationFactor: number; config: TopicConfig }): CreateTopicsResponseCreatableTopicResult {
  return {
    name,
    topicId,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    numPartitions: plan.partitions,
    replicationFactor: plan.replicationFactor,
    configs: plan.config.described.map((c) => ({ name: c.name, value: c.value, readOnly: false, configSource: c.source, isSensitive: false })),
  }
}

function creationFailed(name: string, errorCode: number, errorMessage: string | null): CreateTopicsResponseCreatableTopicResult {
  return { name, topicId: ZERO_UUID, errorCode, errorMessage, numPartitions: -1, replicationFactor: -1, configs: null }
}

/**
 * CreateTopics on a cluster node: checked here, created by the active controller (cluster/topic-changes.ts), which
 * places the partitions and checks the replication factor against the live brokers (-1: default.replication.factor),
 * or checks a manual assignment against the registered and live brokers (QuorumController.createTopic). An assignment
 * with a partition count or replication factor is INVALID_REQUEST; one that does not name partitions 0..n-1, each
 * once, INVALID_REPLICA_ASSIGNMENT.
 */
async function createTopicsInCluster(request: CreateTopicsRequest, services: BrokerServices, quorum: QuorumRunner, options: TopicChangeOptions): Promise<CreateTopicsResponse> {
  const topics = await Promise.all(
    byName(request.topics).map(async ({ topic: wanted, repeated }): Promise<CreateTopicsResponseCreatableTopicResult> => {
      const failed = (errorCode: number, errorMessage: string | null) => creationFailed(wanted.name, errorCode, errorMessage)
      if (repeated) return failed(ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC_NAME)
      const nameProblem = newNameProblem(wanted.name)
      if (nameProblem) return failed(nameProblem.code, nameProblem.message)
      if (quorum.controller.image.topic(wanted.name)) return failed(ErrorCode.TOPIC_ALREADY_EXISTS, `topic '${wanted.name}' already exists`)
      let assignments: number[][] | null
      try {
        assignments = manualAssignment(wanted)
      } catch (error) {
        if (error instanceof Invalid) return failed(error.code, error.message)
        throw error
      }
      const manual = assignments !== null
      const replicationFactor = assignments !== null ? assignments[0]!.length : wanted.replicationFactor === -1 ? services.config.defaultReplicationFactor : wanted.replicationFactor
      if (!manual && replicationFactor < 1) return failed(ErrorCode.INVALID_REPLICATION_FACTOR, 'the replication factor must be at least 1')
      const partitions = assignments !== null ? assignments.length : wanted.numPartitions === -1 ? services.config.defaultPartitions : wanted.numPartitions
      if (partitions < 1) return failed(ErrorCode.INVALID_PARTITIONS, 'the number of partitions must be at least 1')
      if (partitions > MAX_PARTITIONS) return failed(ErrorCode.INVALID_PARTITIONS, `at most ${MAX_PARTITIONS} partitions per topic`)
      // A null value is INVALID_CONFIG, as on a single node (Kafka's ReplicationControlManager: "Null value not
      // supported for topic configs").
      const configs: Record<string, string | null> = {}
      for (const { name, value } of wanted.configs) configs[name] = value
      let config: TopicConfig
      try {
        config = services.topics.parseConfig(configs)
      } catch (error) {
        if (error instanceof KafkaError) return failed(error.code, error.message)
        throw error
      }
      const plan = { partitions, replicationFactor, config }
      const live = quorum.controller.image.liveBrokers().length
      if (!manual && replicationFactor > live) return failed(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${replicationFactor} is larger than the ${counted(live, 'live broker')}`)
      // Checked against this node's image too, so that validateOnly answers what the controller would.
      const problem = assignments !== null ? assignmentProblem(quorum.controller.image, assignments, 0, replicationFactor) : null
      if (problem !== null) return failed(ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem)
      if (request.validateOnly) return created(wanted.name, ZERO_UUID, plan)
      const change = assignments !== null ? { numPartitions: -1, replicationFactor: -1, assignments } : { numPartitions: partitions, replicationFactor }
      const result = await createTopicAtController(quorum, { name: wanted.name, ...change, configs: config.overrides }, options)
      if (result.errorCode !== ErrorCode.NONE) return failed(result.errorCode, result.errorMessage)
      services.log.info(`created topic '${wanted.name}' with ${counted(partitions, 'partition')} through the controller`)
      return created(wanted.name, result.topicId, plan)
    }),
  )
  return { throttleTimeMs: 0, topics }
}

type DeletableTopic = { name: string | null; topicId: string }
type DeletableTopicResult = DeleteTopicsResponse['responses'][number]

/**
 * The topics of a DeleteTopics request, split as Kafka's ControllerApis.deleteTopics does: those refused before any
 * lookup (a name or id given more than once: one answer for it; a v6 topic with both a name and an id, or with
 * neither: one answer per mention; all INVALID_REQUEST with Kafka's messages), and the rest, each named once, by its
 * name or by its id.
 */
function deletableTopics(request: DeleteTopicsRequest, apiVersion: number): { refused: DeletableTopicResult[]; wanted: DeletableTopic[] } {
  const given = apiVersion >= 6 ? request.topics : request.topicNames.map((name) => ({ name, topicId: ZERO_UUID }))
  const invalid = (name: string | null, topicId: string, errorMessage: string): DeletableTopicResult => ({ name, topicId, errorCode: ErrorCode.INVALID_REQUEST, errorMessage })
  const refused: DeletableTopicResult[] = []
  const named = given.filter((t) => t.name !== null && t.topicId === ZERO_UUID)
  const byId = given.filter((t) => t.name === null && t.topicId !== ZERO_UUID)
  for (const { name, topicId } of given) {
    if (name === null && topicId === ZERO_UUID) refused.push(invalid(null, ZERO_UUID, 'Neither topic name nor id were specified.'))
    if (name !== null && topicId !== ZERO_UUID) refused.push(invalid(name, topicId, 'You may not specify both topic name and topic id.'))
  }
  const wanted: DeletableTopic[] = []
  for (const [name, mentions] of groupBy(named, (t) => t.name)) {
    if (mentions.length > 1) refused.push(invalid(name, ZERO_UUID, DUPLICATE_TOPIC_NAME))
    else wanted.push(mentions[0]!)
  }
  for (const [topicId, mentions] of groupBy(byId, (t) => t.topicId)) {
    if (mentions.length > 1) refused.push(invalid(null, topicId, 'Duplicate topic id.'))
    else wanted.push(mentions[0]!)
  }
  return { refused, wanted }
}

/** DeleteTopics on a cluster node: the active controller deletes the topic; each node then drops its logs. */
async function deleteTopicsInCluster(request: DeleteTopicsRequest, apiVersion: number, quorum: QuorumRunner, options: TopicChangeOptions): Promise<DeleteTopicsResponse> {
  const { refused, wanted } = deletableTopics(request, apiVersion)
  const deleted = await Promise.all(
    wanted.map(async ({ name, topicId }) => {
      const image = quorum.controller.image
      const topic = name !== null ? image.topic(name) : image.topicsById.get(topicId)
      const result = (errorCode: number, errorMessage: string | null = errorCode ? errorInfo(errorCode).message : null) => ({
        name: topic?.name ?? name,
        topicId: topic?.topicId ?? topicId,
        errorCode,
        errorMessage,
      })
      // Named by its name or by its id (v6), as on a single node (topic.isInternal).
      const internal = name ?? topic?.name
      if (internal !== undefined && INTERNAL_TOPICS.has(internal)) return result(ErrorCode.INVALID_TOPIC_EXCEPTION, `'${internal}' is an internal topic and cannot be deleted`)
      // A node that forwards asks the controller about a topic its own image lacks: its image may lag the controller's
      // (a topic created through another node a moment ago), and Kafka's brokers forward without looking.
      if (!topic && !forwardsChanges(quorum, options)) return name !== null ? result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 'the topic does not exist') : result(ErrorCode.UNKNOWN_TOPIC_ID)
      const deleted = await deleteTopicAtController(quorum, topic ? { name: topic.name } : name !== null ? { name } : { topicId }, options)
      return {
        ...result(deleted.errorCode, deleted.errorMessage),
        // A topic this node's image did not show yet: its name and id as the controller gave them.
        name: topic?.name ?? name ?? deleted.name,
        topicId: topic?.topicId ?? (deleted.errorCode === ErrorCode.NONE ? deleted.topicId : topicId),
      }
    }),
  )
  return { throttleTimeMs: 0, responses: [...refused, ...deleted] }
}

export const createTopicsHandler = defineHandler<CreateTopicsRequest, CreateTopicsResponse>(
  createTopics,
  '0-7',
  async (request, { services }) => {
    if (services.quorum) return createTopicsInCluster(request, services, services.quorum, { forward: true })
    const topics = await Promise.all(
      byName(request.topics).map(async ({ topic: wanted, repeated }): Promise<CreateTopicsResponseCreatableTopicResult> => {
        const failed = (errorCode: number, errorMessage: string) => creationFailed(wanted.name, errorCode, errorMessage)
        if (repeated) return failed(ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC_NAME)
        try {
          const plan = planTopic(services, wanted)
          const topicId = request.validateOnly
            ? ZERO_UUID
            : (await services.topics.create({ name: wanted.name, ...plan })).topicId
          if (!request.validateOnly) services.log.info(`created topic '${wanted.name}' with ${counted(plan.partitions, 'partition')}`)
          return created(wanted.name, topicId, plan)
        } catch (error) {
          if (error instanceof KafkaError) return failed(error.code, error.message)
          if (error instanceof StorageError) return failed(ErrorCode.KAFKA_STORAGE_ERROR, error.message)
          throw error
        }
      }),
    )
    return { throttleTimeMs: 0, topics }
  },
)

export const deleteTopicsHandler = defineHandler<DeleteTopicsRequest, DeleteTopicsResponse>(
  deleteTopics,
  '0-6',
  async (request, { services, apiVersion }) => {
    if (services.quorum) return deleteTopicsInCluster(request, apiVersion, services.quorum, { forward: true })
    const { refused, wanted } = deletableTopics(request, apiVersion)
    const deleted = await Promise.all(
      wanted.map(async ({ name, topicId }) => {
        const topic = name !== null ? services.topics.get(name) : services.topics.getById(topicId)
        const result = (errorCode: number, errorMessage: string | null = errorCode ? errorInfo(errorCode).message : null) => ({
          name: topic?.name ?? name,
          topicId: topic?.topicId ?? topicId,
          errorCode,
          errorMessage,
        })
        if (!topic) return name !== null ? result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 'the topic does not exist') : result(ErrorCode.UNKNOWN_TOPIC_ID)
        if (topic.isInternal) return result(ErrorCode.INVALID_TOPIC_EXCEPTION, `'${topic.name}' is an internal topic and cannot be deleted`)
        try {
          await services.topics.delete(topic)
        } catch (error) {
          if (error instanceof StorageError) return result(ErrorCode.KAFKA_STORAGE_ERROR, error.message)
          throw error
        }
        services.log.info(`deleted topic '${topic.name}'`)
        return result(ErrorCode.NONE)
      }),
    )
    return { throttleTimeMs: 0, responses: [...refused, ...deleted] }
  },
)

/** CreateTopics on a cluster node's controller listener: a change forwarded by another node, run by this controller. */
export const controllerCreateTopicsHandler = defineHandler<CreateTopicsRequest, CreateTopicsResponse>(createTopics, '0-7', (request, { services }) =>
  createTopicsInCluster(request, services, quorumOf(services), { forward: false }),
)

/** DeleteTopics on a cluster node's controller listener, as `controllerCreateTopicsHandler`. */
export const controllerDeleteTopicsHandler = defineHandler<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, '0-6', (request, { services, apiVersion }) =>
  deleteTopicsInCluster(request, apiVersion, quorumOf(services), { forward: false }),
)

/**
 * Why CreatePartitions refuses `__consumer_offsets` and `__transaction_state`: a group or transactional id lives in the
 * partition its hash names among the topic's partitions, so more partitions would move it away from its offsets or
 * state. Kafka's own tool refuses it ("The number of partitions for the offsets topic cannot be changed",
 * TopicCommand); its brokers accept it and lose the groups' offsets at their next start (KAFKA-14418).
 */
function internalPartitionsFixed(name: string): string {
  return `the partition count of the internal topic ${quote(name)} cannot change: each group or transactional id lives in the partition its hash names among them, and more partitions would move it away from its offsets or state`
}

/**
 * CreatePartitions on a cluster node: the active controller adds the partitions (cluster/topic-changes.ts), placing
 * their replicas with the topic's replication factor, or where a manual assignment says; each node then opens the new
 * logs and makes its replicas as its metadata image changes.
 */
async function createPartitionsInCluster(request: CreatePartitionsRequest, services: BrokerServices, quorum: QuorumRunner, options: TopicChangeOptions): Promise<CreatePartitionsResponse> {
  const results = await Promise.all(
    byName(request.topics).map(async ({ topic: { name, count, assignments }, repeated }) => {
      const result = (errorCode: number, errorMessage: string | null = null) => ({ name, errorCode, errorMessage })
      if (repeated) return result(ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC_NAME)
      if (INTERNAL_TOPICS.has(name)) return result(ErrorCode.POLICY_VIOLATION, internalPartitionsFixed(name))
      if (count > MAX_PARTITIONS) return result(ErrorCode.INVALID_PARTITIONS, `at most ${MAX_PARTITIONS} partitions per topic`)
      const change = { name, count, assignments: assignments?.map((a) => a.brokerIds) ?? null, validateOnly: request.validateOnly }
      const added = await createPartitionsAtController(quorum, change, options)
      if (added.errorCode === ErrorCode.NONE && !request.validateOnly) {
        services.log.info(`topic '${name}' now has ${counted(count, 'partition')} through the controller`)
      }
      return result(added.errorCode, added.errorMessage)
    }),
  )
  return { throttleTimeMs: 0, results }
}

/** CreatePartitions on a cluster node's controller listener, as `controllerCreateTopicsHandler`. */
export const controllerCreatePartitionsHandler = defineHandler<CreatePartitionsRequest, CreatePartitionsResponse>(createPartitions, '0-3', (request, { services }) =>
  createPartitionsInCluster(request, services, quorumOf(services), { forward: false }),
)

function quorumOf(services: BrokerServices): QuorumRunner {
  if (!services.quorum) throw new Error('a controller API reached a node without a controller quorum')
  return services.quorum
}

export const createPartitionsHandler = defineHandler<CreatePartitionsRequest, CreatePartitionsResponse>(
  createPartitions,
  '0-3',
  async (request, { services }) => {
    if (services.quorum) return createPartitionsInCluster(request, services, services.quorum, { forward: true })
    const results = await Promise.all(
      byName(request.topics).map(async ({ topic: { name, count, assignments }, repeated }) => {
        const result = (errorCode: number, errorMessage: string | null = null) => ({ name, errorCode, errorMessage })
        if (repeated) return result(ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC_NAME)
        if (INTERNAL_TOPICS.has(name)) return result(ErrorCode.POLICY_VIOLATION, internalPartitionsFixed(name))
        const topic = services.topics.get(name)
        if (!topic) return result(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${quote(name)} does not exist`)
        const current = topic.partitions.length
        const smaller = partitionCountProblem(name, current, count)
        if (smaller !== null) return result(ErrorCode.INVALID_PARTITIONS, smaller)
        if (count > MAX_PARTITIONS) return result(ErrorCode.INVALID_PARTITIONS, `at most ${MAX_PARTITIONS} partitions per topic`)
        if (assignments !== null) {
          if (assignments.length !== count - current) {
            return result(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `the assignment must cover the ${count - current} new partitions`)
          }
          const brokers = liveBrokers(services)
          const unknown = assignments.flatMap((a) => a.brokerIds).find((id) => !brokers.includes(id))
          if (unknown !== undefined) return result(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `broker ${unknown} does not exist`)
          if (assignments.some((a) => a.brokerIds.length !== topic.replicationFactor || new Set(a.brokerIds).size !== a.brokerIds.length)) {
            return result(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `each new partition needs ${topic.replicationFactor} distinct brokers`)
          }
        }
        if (!request.validateOnly) {
          try {
            await services.topics.addPartitions(topic, count)
          } catch (error) {
            if (error instanceof StorageError) return result(ErrorCode.KAFKA_STORAGE_ERROR, error.message)
            throw error
          }
          services.log.info(`topic '${name}' now has ${counted(count, 'partition')}`)
        }
        return result(ErrorCode.NONE)
      }),
    )
    return { throttleTimeMs: 0, results }
  },
)
