/**
 * Metadata: v0-12.
 *
 * Behaviour
 * - Brokers: this node. Controller: this node (kafkajs sends CreateTopics and InitProducerId to the controller, so
 *   it must be a live broker), also on a cluster node: its topics are still its own, so its own Metadata names it
 *   (DescribeCluster names the controller quorum's leader).
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
 * - Authorized operations (v8+) are answered with Kafka's "not requested" value, -2147483648, as Brook has no ACLs.
 */
import {
  metadata,
  type MetadataRequest,
  type MetadataResponse,
  type MetadataResponseTopic,
} from '../../protocol/messages/metadata.js'
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { ZERO_UUID } from '../../protocol/constants.js'
import { defineHandler, type BrokerServices } from '../handler.js'
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
      replicaNodes: partition.replicas,
      isrNodes: partition.isr,
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
      replicationFactor: 1,
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

export const metadataHandler = defineHandler<MetadataRequest, MetadataResponse>(
  metadata,
  '0-12',
  async (request, { services, apiVersion }) => {
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
      brokers: [{ nodeId: services.endpoint.nodeId, host: services.endpoint.host, port: services.endpoint.port, rack: null }],
      clusterId: services.clusterId,
      controllerId: services.endpoint.nodeId,
      topics,
    }
  },
)
