/**
 * Metadata: v0-12.
 *
 * Behaviour
 * - Brokers: on a single node this node, and it is the controller (kafkajs sends CreateTopics and InitProducerId to
 *   the controller, so it must be a live broker). On a cluster node everything comes from the node's metadata image,
 *   as a KRaft broker answers from its MetadataCache: the registered, unfenced brokers with the client listener each
 *   registered, as controller a live broker that forwards to the active controller, as a KRaft broker names a random
 *   one (KIP-590): this node when it is one, else a random one, -1 while none is (handler.ts `controllerIdOf`), and
 *   each topic's partitions with the image's leader, leaderEpoch, replicas and isr
 *   (offlineReplicas: the replicas on fenced brokers). A partition whose leader is not among the brokers answered is
 *   answered with leader -1, as KRaftMetadataCache.partitionMetadata does: LEADER_NOT_AVAILABLE when it has no leader
 *   or its leader is not a live broker, and LISTENER_NOT_FOUND (v6+; LEADER_NOT_AVAILABLE before) when its leader is
 *   live but registered no client listener, so a client never gets a leader it cannot find an address for. An
 *   unknown topic is auto-created through the active controller (cluster/topic-changes.ts), and the request that
 *   creates it is answered LEADER_NOT_AVAILABLE, as Kafka's DefaultAutoTopicCreationManager answers the topics it
 *   creates: the next Metadata, after the client's backoff, names the leader. A creation the
 *   controller refuses (too few live brokers for `default.replication.factor`, no controller quorum) is answered the
 *   same, so clients ask again as they do against Kafka; the node logs the reason at info, once per topic and reason.
 * - Topics: all of them when the request's list is null (v1+) or empty (v0, MetadataRequest.json: "An empty array
 *   indicates 'request metadata for all topics'" only in v0); otherwise the ones named, or (v10+) given by id.
 * - Unknown topics are created when `allowAutoTopicCreation` (always true before v4) and the broker's
 *   `autoCreateTopics` both allow it, with `num.partitions` partitions; otherwise UNKNOWN_TOPIC_OR_PARTITION.
 *   Invalid names, and names that differ from an existing topic's only in '.' versus '_' (Kafka refuses those
 *   collisions, ReplicationControlManager.validateNewTopicNames), get INVALID_TOPIC_EXCEPTION. Internal topics are
 *   never auto-created. An auto-creation the node's storage refuses is LEADER_NOT_AVAILABLE, Kafka's answer while a
 *   topic's creation has not completed, so clients ask again.
 * - Leader epoch (v7+) is the partition's real epoch, never a made-up 0 (Redpanda #27629).
 *
 * Version notes
 * - v10+ carries topic ids; v12 lets the request name a topic by id alone (name null) and answers with its name.
 *   Before v12 a null name is an invalid request (KafkaApis.handleTopicMetadataRequest): that topic is answered with
 *   INVALID_REQUEST and an empty name, since the response's name cannot be null before v12 either.
 * - Authorized operations (v8+): when the request asks (includeTopicAuthorizedOperations, and
 *   includeClusterAuthorizedOperations in v8-10), every operation a topic (or the cluster) supports, as Kafka answers
 *   without an authorizer (KafkaApis.handleTopicMetadataRequest, AuthHelper.authorizedOperations): Brook has no ACLs.
 *   Otherwise the JSON's default, -2147483648 ("not requested"), as is a topic asked for by an id that is unknown.
 */
import {
  metadata,
  type MetadataRequest,
  type MetadataResponse,
  type MetadataResponseTopic,
} from '../../protocol/messages/metadata.js'
import { ErrorCode, errorInfo, KafkaError } from '../../protocol/errors.js'
import { AuthorizedOperations, ZERO_UUID } from '../../protocol/constants.js'
import { controllerIdOf, defineHandler, liveBrokerEndpoints, type BrokerServices } from '../handler.js'
import type { QuorumRunner } from '../cluster/quorum-runner.js'
import { createTopicAtController } from '../cluster/topic-changes.js'
import { clientEndpoint, NO_LEADER, type MetadataImage, type PartitionRegistration, type TopicImage } from '../cluster/metadata/image.js'
import type { Topic } from '../partition.js'
import { INTERNAL_TOPICS, topicNameProblem } from '../topics.js'
import { StorageError } from '../../storage/log-store.js'
import { counted } from '../../client/wording.js'

export function describeTopic(topic: Topic): MetadataResponseTopic {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: topic.isInternal,
    partitions: topic.partitions.map((partition) => ({
      errorCode: ErrorCode.NONE,
      partitionIndex: partition.index,
      leaderId: partition.leaderId,
      leaderEpoch: partition.leaderEpoch,
      replicaNodes: [...partition.replicas],
      isrNodes: [...partition.isr],
      offlineReplicas: [],
    })),
  }
}

function missing(name: string | null, errorCode: number, topicId = ZERO_UUID): MetadataResponseTopic {
  return { errorCode, name, topicId, isInternal: false, partitions: [] }
}

async function lookupOrCreate(services: BrokerServices, name: string, autoCreate: boolean): Promise<MetadataResponseTopic> {
  const topic = services.topics.get(name)
  if (topic) return describeTopic(topic)
  if (topicNameProblem(name)) return missing(name, ErrorCode.INVALID_TOPIC_EXCEPTION)
  if (!autoCreate || !services.config.autoCreateTopics || INTERNAL_TOPICS.has(name)) {
    return missing(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
  }
  try {
    const { topic: created, created: isNew } = await services.topics.getOrCreate({
      name,
      partitions: services.config.defaultPartitions,
      replicationFactor: services.config.defaultReplicationFactor,
      config: services.topics.parseConfig({}),
    })
    if (isNew) services.log.info(`auto-created topic '${name}' with ${counted(created.partitions.length, 'partition')}`)
    return describeTopic(created)
  } catch (error) {
    if (error instanceof StorageError) return missing(name, ErrorCode.LEADER_NOT_AVAILABLE)
    if (!(error instanceof KafkaError)) throw error
    // The Metadata answer has no room for a message: the log says why (a name that collides, for one).
    services.log.debug(`not auto-creating topic '${name}': ${error.message}`)
    return missing(name, error.code)
  }
}

/**
 * A partition's leader as Metadata answers it (KRaftMetadataCache): the leader, or -1 with LEADER_NOT_AVAILABLE when
 * there is none or it is not a live (registered, unfenced) broker, or -1 with LISTENER_NOT_FOUND (LEADER_NOT_AVAILABLE
 * before v6, KafkaApis' errorUnavailableListeners) when it registered no client listener.
 */
function leaderOf(image: MetadataImage, partition: PartitionRegistration, apiVersion: number): { errorCode: number; leaderId: number } {
  const broker = partition.leader === NO_LEADER ? undefined : image.brokers.get(partition.leader)
  if (broker === undefined || broker.fenced) return { errorCode: ErrorCode.LEADER_NOT_AVAILABLE, leaderId: NO_LEADER }
  if (clientEndpoint(broker) === undefined) return { errorCode: apiVersion >= 6 ? ErrorCode.LISTENER_NOT_FOUND : ErrorCode.LEADER_NOT_AVAILABLE, leaderId: NO_LEADER }
  return { errorCode: ErrorCode.NONE, leaderId: partition.leader }
}

function describeImageTopic(image: MetadataImage, topic: TopicImage, apiVersion: number): MetadataResponseTopic {
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: INTERNAL_TOPICS.has(topic.name),
    partitions: [...topic.partitions].map(([partitionIndex, partition]) => ({
      ...leaderOf(image, partition, apiVersion),
      partitionIndex,
      leaderEpoch: partition.leaderEpoch,
      replicaNodes: [...partition.replicas],
      isrNodes: [...partition.isr],
      offlineReplicas: partition.replicas.filter((id) => image.brokers.get(id)?.fenced !== false),
    })),
  }
}

/**
 * The names of the topics this node's metadata holds (a single node's topics, a cluster node's image), in no order:
 * for requests that answer from the metadata without creating anything (DescribeTopicPartitions).
 */
export function knownTopicNames(services: BrokerServices): string[] {
  return services.quorum ? [...services.quorum.controller.image.topicsById.values()].map((t) => t.name) : services.topics.list().map((t) => t.name)
}

/** Topic `name` as Metadata v12 describes it, from this node's metadata; undefined for a name it does not hold. */
export function describeKnownTopic(services: BrokerServices, name: string): MetadataResponseTopic | undefined {
  if (!services.quorum) {
    const topic = services.topics.get(name)
    return topic && describeTopic(topic)
  }
  const image = services.quorum.controller.image
  const topic = image.topic(name)
  return topic && describeImageTopic(image, topic, 12)
}

/** Topics whose auto-creation failed, remembered with the reason last logged: at most this many per node. */
const MAX_REMEMBERED_FAILURES = 1000
const failuresByNode = new WeakMap<QuorumRunner, Map<string, string>>()

/** The auto-creation failures last logged by the node of `quorum`: topic name -> reason. */
function autoCreateFailures(quorum: QuorumRunner): Map<string, string> {
  let failures = failuresByNode.get(quorum)
  if (failures === undefined) failuresByNode.set(quorum, (failures = new Map()))
  return failures
}

async function lookupOrCreateInCluster(services: BrokerServices, quorum: QuorumRunner, name: string, autoCreate: boolean, apiVersion: number): Promise<MetadataResponseTopic> {
  const topic = quorum.controller.image.topic(name)
  if (topic) return describeImageTopic(quorum.controller.image, topic, apiVersion)
  if (topicNameProblem(name)) return missing(name, ErrorCode.INVALID_TOPIC_EXCEPTION)
  if (!autoCreate || !services.config.autoCreateTopics || INTERNAL_TOPICS.has(name)) return missing(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
  // The client waits on this Metadata answer: the 'internal' channel's short window (CONTROLLER_CHANNELS), then
  // LEADER_NOT_AVAILABLE, and the client asks again.
  const created = await createTopicAtController(
    quorum,
    { name, numPartitions: services.config.defaultPartitions, replicationFactor: services.config.defaultReplicationFactor },
    { forward: true, channel: 'internal' },
  )
  const failures = autoCreateFailures(quorum)
  if (created.errorCode === ErrorCode.NONE || created.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) failures.delete(name)
  if (created.errorCode === ErrorCode.NONE) services.log.info(`auto-created topic '${name}' with ${counted(services.config.defaultPartitions, 'partition')} through the controller`)
  else if (created.errorCode !== ErrorCode.TOPIC_ALREADY_EXISTS) {
    // A name that collides with an existing topic's ('.' versus '_') stays refused until that topic goes: the client
    // is told so, as a single node (and Kafka with ZooKeeper, whose brokers created topics themselves) tells it,
    // rather than asked to wait. Anything else (too few live brokers, the controller moving) may pass: the client sees
    // LEADER_NOT_AVAILABLE and asks again (a producer for up to max.block.ms). The log says why, once per topic and
    // reason, not at every retry.
    const refused = created.errorCode === ErrorCode.INVALID_TOPIC_EXCEPTION
    const why = `${errorInfo(created.errorCode).name}${created.errorMessage ? ` (${created.errorMessage})` : ''}`
    if (failures.get(name) !== why) {
      if (failures.size >= MAX_REMEMBERED_FAILURES) failures.clear()
      failures.set(name, why)
      services.log.info(refused ? `not auto-creating topic '${name}': ${why}; clients are answered INVALID_TOPIC_EXCEPTION` : `cannot auto-create topic '${name}' yet: ${why}; clients are answered LEADER_NOT_AVAILABLE and ask again`)
    }
    if (refused) return missing(name, ErrorCode.INVALID_TOPIC_EXCEPTION)
  }
  // The request that creates the topic is answered LEADER_NOT_AVAILABLE even once the image holds it, as Kafka's
  // DefaultAutoTopicCreationManager.createTopics answers every topic it creates: the leader opens its log only after
  // it applies the image, so a leader named now could refuse a produce sent at once (kafka-python, whose default is
  // retries=0, failed its first send to a new topic with UNKNOWN_TOPIC_OR_PARTITION). The client asks again after
  // its backoff and finds the leader serving.
  return missing(name, ErrorCode.LEADER_NOT_AVAILABLE)
}

/** Metadata on a cluster node: everything from its metadata image. */
async function clusterMetadata(request: MetadataRequest, services: BrokerServices, quorum: QuorumRunner, apiVersion: number): Promise<MetadataResponse> {
  const all = request.topics === null || (apiVersion === 0 && request.topics.length === 0)
  const autoCreate = apiVersion < 4 || request.allowAutoTopicCreation
  const image = quorum.controller.image
  const topics = all
    ? [...image.topicsById.values()].map((topic) => describeImageTopic(image, topic, apiVersion))
    : await Promise.all(
        request.topics!.map((wanted) => {
          if (wanted.name !== null) return lookupOrCreateInCluster(services, quorum, wanted.name, autoCreate, apiVersion)
          if (apiVersion < 12) return missing('', ErrorCode.INVALID_REQUEST, wanted.topicId)
          const topic = image.topicsById.get(wanted.topicId)
          return topic ? describeImageTopic(image, topic, apiVersion) : missing(null, ErrorCode.UNKNOWN_TOPIC_ID, wanted.topicId)
        }),
      )
  // The controller named is one of the brokers listed (kafkajs must find it among them), which forwards topic changes.
  const brokers = liveBrokerEndpoints(services)
  return { throttleTimeMs: 0, brokers, clusterId: services.clusterId, controllerId: controllerIdOf(services, brokers), topics }
}

export const metadataHandler = defineHandler<MetadataRequest, MetadataResponse>(
  metadata,
  '0-12',
  async (request, { services, apiVersion }) =>
    withAuthorizedOperations(request, apiVersion, services.quorum ? await clusterMetadata(request, services, services.quorum, apiVersion) : await nodeMetadata(request, services, apiVersion)),
)

/**
 * The answer's authorized operations, when the request asks for them: every operation (Kafka without an authorizer),
 * for each topic answered by name (KafkaApis sets them on those, not on the topics whose id is unknown).
 */
function withAuthorizedOperations(request: MetadataRequest, apiVersion: number, response: MetadataResponse): MetadataResponse {
  if (apiVersion < 8) return response
  const unknownId = (topic: MetadataResponseTopic) => topic.errorCode === ErrorCode.UNKNOWN_TOPIC_ID
  return {
    ...response,
    clusterAuthorizedOperations: apiVersion <= 10 && request.includeClusterAuthorizedOperations ? AuthorizedOperations.CLUSTER : AuthorizedOperations.NOT_REQUESTED,
    topics: request.includeTopicAuthorizedOperations
      ? response.topics.map((topic) => (unknownId(topic) ? topic : { ...topic, topicAuthorizedOperations: AuthorizedOperations.TOPIC }))
      : response.topics,
  }
}

/** Metadata on a single node: its own topics. */
async function nodeMetadata(request: MetadataRequest, services: BrokerServices, apiVersion: number): Promise<MetadataResponse> {
  const all = request.topics === null || (apiVersion === 0 && request.topics.length === 0)
  const autoCreate = apiVersion < 4 || request.allowAutoTopicCreation
  const topics = all
    ? services.topics.list().map(describeTopic)
    : await Promise.all(
        request.topics!.map((wanted) => {
          if (wanted.name !== null) return lookupOrCreate(services, wanted.name, autoCreate)
          if (apiVersion < 12) return missing('', ErrorCode.INVALID_REQUEST, wanted.topicId)
          const topic = services.topics.getById(wanted.topicId)
          return topic ? describeTopic(topic) : missing(null, ErrorCode.UNKNOWN_TOPIC_ID, wanted.topicId)
        }),
      )
  return {
    throttleTimeMs: 0,
    brokers: liveBrokerEndpoints(services),
    clusterId: services.clusterId,
    controllerId: services.endpoint.nodeId,
    topics,
  }
}
