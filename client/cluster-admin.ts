/**
 * A replicated cluster's state as `brook cluster status` shows it (Kafka's kafka-metadata-quorum.sh describe
 * --status and --replication, and the live brokers of DescribeCluster): the controller quorum from DescribeQuorum
 * (KIP-595), which any node forwards to the quorum's leader, and the registered, unfenced brokers and the active
 * controller from DescribeCluster; and from Metadata of every topic, the partitions whose ISR is smaller than their
 * replicas (kafka-topics.sh --under-replicated-partitions) and those without a live leader (--unavailable-partitions,
 * Kafka's OfflinePartitionsCount). And what kafka-cluster.sh unregister does: UnregisterBroker at the active controller;
 * and a node's log level, read and set as kafka-configs.sh does for the broker-loggers entity type.
 */
import { describeQuorum, type DescribeQuorumRequest, type DescribeQuorumResponse } from '../protocol/messages/describe-quorum.js'
import { describeCluster, type DescribeClusterRequest, type DescribeClusterResponse } from '../protocol/messages/describe-cluster.js'
import { CONTROLLER_REQUEST_TIMEOUT_MS, type ClusterClient } from './cluster-client.js'
import { BrokerError, checkError, CONTROLLER_LISTENER, type KafkaClient } from './kafka-client.js'
import { unregisterBroker as unregisterBrokerApi, type UnregisterBrokerRequest, type UnregisterBrokerResponse } from '../protocol/messages/unregister-broker.js'
import { ErrorCode } from '../protocol/errors.js'
import { ConfigOperation, ConfigSource, METADATA_TOPIC, ResourceType } from '../protocol/constants.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../protocol/messages/describe-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../protocol/messages/incremental-alter-configs.js'
import { toldIfResent } from './retry.js'
import { alterResourceConfigs, type TopicConfigChanges } from './admin.js'

/** DescribeCluster's endpointType for brokers (KIP-919). */
const BROKER_ENDPOINTS = 1

export interface QuorumReplica {
  readonly replicaId: number
  /** -1 while the leader has not heard from it in its epoch. */
  readonly logEndOffset: bigint
  /** The leader's log end offset minus this replica's; null when its end offset is not known. */
  readonly lag: bigint | null
  /** When it last fetched from the leader (ms since the epoch), null if unknown. */
  readonly lastFetchTimestamp: number | null
}

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

export interface ClusterStatus {
  readonly clusterId: string
  /**
   * The active controller: the controller quorum's leader, as DescribeQuorum names it (-1: none known). DescribeCluster's
   * controllerId is a live broker that forwards to it, as a KRaft broker's is (KIP-590), not the controller itself.
   */
  readonly controllerId: number
  readonly leaderId: number
  readonly leaderEpoch: number
  readonly highWatermark: bigint
  readonly voters: readonly QuorumReplica[]
  readonly observers: readonly QuorumReplica[]
  /** The registered brokers that are not fenced, with their client listener. */
  readonly liveBrokers: readonly { readonly brokerId: number; readonly host: string; readonly port: number }[]
  /** Every partition of the cluster, internal topics included. */
  readonly partitionCount: number
  /** Each partition whose ISR is smaller than its replica set, by topic name, then partition. */
  readonly underReplicatedPartitions: readonly TopicPartition[]
  /** Each partition without a live leader, by topic name, then partition. */
  readonly offlinePartitions: readonly TopicPartition[]
}

/**
 * Asks the bootstrap node for the quorum and the live brokers. Errors: the node is a controller listener; the node
 * is not part of a replicated cluster (it does not support DescribeQuorum); the quorum has no leader (a BrokerError
 * with NOT_LEADER_OR_FOLLOWER, in words: a majority of voters lost, or an election under way); or another Kafka error
 * by name.
 */
export async function clusterStatus(cluster: ClusterClient): Promise<ClusterStatus> {
  const client = cluster.any
  // A follower's controller listener answers DescribeQuorum NOT_LEADER_OR_FOLLOWER, which would read as a quorum
  // without a leader.
  if (client.isControllerListener) throw new Error(`the node at ${client.address} cannot say: ${CONTROLLER_LISTENER}`)
  let quorumVersion: number
  try {
    quorumVersion = client.version(describeQuorum)
  } catch {
    throw new Error(`the node at ${client.address} is not part of a replicated cluster (it does not answer DescribeQuorum)`)
  }
  const quorum = await client.request<DescribeQuorumRequest, DescribeQuorumResponse>(describeQuorum, quorumVersion, {
    topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0 }] }],
  })
  const partition = quorum.topics[0]?.partitions[0]
  for (const errorCode of [quorum.errorCode, partition?.errorCode ?? ErrorCode.NONE]) {
    if (errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER) {
      throw new BrokerError(`the controller quorum has no leader (the node at ${client.address} answered DescribeQuorum with NOT_LEADER_OR_FOLLOWER): a majority of its voters is down or cut off, or an election is under way`, errorCode)
    }
  }
  checkError(quorum.errorCode, 'DescribeQuorum', quorum.errorMessage)
  if (!partition) throw new Error(`the node at ${client.address} did not describe ${METADATA_TOPIC}`)
  checkError(partition.errorCode, 'DescribeQuorum', partition.errorMessage)
  const described = await client.request<DescribeClusterRequest, DescribeClusterResponse>(describeCluster, client.version(describeCluster, '1'), {
    includeClusterAuthorizedOperations: false,
    endpointType: BROKER_ENDPOINTS,
  })
  checkError(described.errorCode, 'DescribeCluster', described.errorMessage)
  const partitions = (await cluster.metadata(null, { allowAutoTopicCreation: false })).topics
    .filter((topic) => topic.name !== null)
    .sort((a, b) => a.name!.localeCompare(b.name!))
    .flatMap((topic) => [...topic.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex).map((p) => ({ topic: topic.name!, partition: p.partitionIndex, ...p })))
  const leaderEnd = partition.currentVoters.find((voter) => voter.replicaId === partition.leaderId)?.logEndOffset ?? -1n
  const replica = (state: (typeof partition.currentVoters)[number]): QuorumReplica => ({
    replicaId: state.replicaId,
    logEndOffset: state.logEndOffset,
    lag: state.logEndOffset < 0n || leaderEnd < 0n ? null : leaderEnd - state.logEndOffset,
    lastFetchTimestamp: (state.lastFetchTimestamp ?? -1n) >= 0n ? Number(state.lastFetchTimestamp) : null,
  })
  return {
    clusterId: described.clusterId,
    controllerId: partition.leaderId,
    leaderId: partition.leaderId,
    leaderEpoch: partition.leaderEpoch,
    highWatermark: partition.highWatermark,
    voters: partition.currentVoters.map(replica).sort((a, b) => a.replicaId - b.replicaId),
    observers: partition.observers.map(replica).sort((a, b) => a.replicaId - b.replicaId),
    liveBrokers: described.brokers.map((b) => ({ brokerId: b.brokerId, host: b.host, port: b.port })).sort((a, b) => a.brokerId - b.brokerId),
    partitionCount: partitions.length,
    underReplicatedPartitions: partitions.filter((p) => p.isrNodes.length < p.replicaNodes.length).map(({ topic, partition }) => ({ topic, partition })),
    offlinePartitions: partitions.filter((p) => p.leaderId < 0).map(({ topic, partition }) => ({ topic, partition })),
  }
}

/**
 * Unregisters broker `brokerId` (UnregisterBroker v0 at the active controller through `ClusterClient.atController`,
 * what kafka-cluster.sh unregister --id sends through Admin.unregisterBroker): the cluster forgets its registration,
 * takes it out of every ISR and moves its leaderships, and Metadata and DescribeCluster no longer list it; partition
 * assignments stay. Errors: BROKER_ID_NOT_REGISTERED for an id the cluster has no registration of (taken as done when
 * an earlier attempt, whose answer was lost, may have unregistered it); a cluster that does not answer UnregisterBroker
 * (a single node, whose one broker is itself), in words as kafka-cluster.sh says it.
 */
export function unregisterBroker(cluster: ClusterClient, brokerId: number): Promise<void> {
  const context = `cannot unregister broker ${brokerId}`
  return cluster.atController(context, toldIfResent(async (resent, client) => {
    if (!client.supports(unregisterBrokerApi)) {
      throw new Error(`${context}: the target cluster does not support the broker unregistration API (the node at ${client.address} does not answer UnregisterBroker; a single node has no other broker)`)
    }
    const response = await client.request<UnregisterBrokerRequest, UnregisterBrokerResponse>(unregisterBrokerApi, client.version(unregisterBrokerApi), { brokerId }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    if (response.errorCode === ErrorCode.BROKER_ID_NOT_REGISTERED && resent) return
    checkError(response.errorCode, context, response.errorMessage)
  }))
}

/** Kafka's name of a broker's root logger, the one logger a Brook node has (broker/handlers/broker-loggers.ts). */
const ROOT_LOGGER = 'root'

/** The connection to node `nodeId`, found in fresh Metadata. Errors: an Error naming the nodes there are, for another id. */
async function nodeClient(cluster: ClusterClient, nodeId: number, context: string): Promise<KafkaClient> {
  const { brokers } = await cluster.metadata([], { allowAutoTopicCreation: false })
  if (!brokers.some((broker) => broker.nodeId === nodeId)) {
    throw new Error(`${context}: there is no node ${nodeId} (the cluster's nodes: ${brokers.map((broker) => broker.nodeId).sort((a, b) => a - b).join(', ')})`)
  }
  return cluster.node(nodeId)
}

/**
 * A node's log level, as `kafka-configs.sh --entity-type broker-loggers --entity-name <id> --describe` reads it:
 * DescribeConfigs of the node's BROKER_LOGGER resource (KIP-412), asked of that node. Returns the level in Kafka's
 * spelling (`INFO`). Errors: an Error for a node id the cluster's Metadata does not list, a ConnectionError for a
 * node that cannot be reached; the node's error by name (a node that does not answer the resource: INVALID_REQUEST).
 */
export async function brokerLogLevel(cluster: ClusterClient, nodeId: number): Promise<string> {
  const context = `cannot read the log level of node ${nodeId}`
  const client = await nodeClient(cluster, nodeId, context)
  const response = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, client.version(describeConfigs), {
    resources: [{ resourceType: ResourceType.BROKER_LOGGER, resourceName: String(nodeId), configurationKeys: [ROOT_LOGGER] }],
    includeSynonyms: false,
    includeDocumentation: false,
  })
  const result = response.results[0]
  if (!result) throw new Error(`${context}: the node answered no resource`)
  checkError(result.errorCode, context, result.errorMessage)
  const level = result.configs.find((c) => c.name === ROOT_LOGGER)?.value
  if (level === undefined || level === null) throw new Error(`${context}: the node has no ${ROOT_LOGGER} logger`)
  return level
}

/**
 * Sets a node's log level while it runs, as `kafka-configs.sh --entity-type broker-loggers --entity-name <id> --alter
 * --add-config root=<level>` does: IncrementalAlterConfigs SET of the node's BROKER_LOGGER resource, sent to that
 * node (KIP-412). The change lasts until the node restarts. Errors: as `brokerLogLevel`; a level the node does not
 * have is INVALID_CONFIG with the node's message naming the valid ones.
 */
export async function setBrokerLogLevel(cluster: ClusterClient, nodeId: number, level: string): Promise<void> {
  const context = `cannot set the log level of node ${nodeId}`
  const client = await nodeClient(cluster, nodeId, context)
  const response = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, client.version(incrementalAlterConfigs), {
    resources: [{ resourceType: ResourceType.BROKER_LOGGER, resourceName: String(nodeId), configs: [{ name: ROOT_LOGGER, configOperation: ConfigOperation.SET, value: level }] }],
    validateOnly: false,
  })
  const result = response.responses[0]
  if (!result) throw new Error(`${context}: the node answered no resource`)
  checkError(result.errorCode, context, result.errorMessage)
}

/** A dynamic broker config as DescribeConfigs describes it: its value in force and where it comes from. */
export interface DynamicBrokerConfig {
  name: string
  value: string
  /** ConfigSource's name: DYNAMIC_BROKER_CONFIG (set for the node) or DYNAMIC_DEFAULT_BROKER_CONFIG (for every node). */
  source: string
}

const SOURCE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(ConfigSource).map(([name, code]) => [code, name]))
const DYNAMIC_SOURCES: ReadonlySet<number> = new Set([ConfigSource.DYNAMIC_BROKER_CONFIG, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG])

/**
 * The dynamic broker configs in force, as `kafka-configs.sh --entity-type brokers --describe` lists them: for
 * `nodeId` null, those set for every node (DescribeConfigs of the BROKER resource "", asked of the node clients send admin requests to); for a node,
 * those that node uses, its own and every node's (DescribeConfigs of its BROKER resource, asked of that node), sorted
 * by name. Errors: as `brokerLogLevel`.
 */
export async function dynamicBrokerConfigs(cluster: ClusterClient, nodeId: number | null): Promise<DynamicBrokerConfig[]> {
  const context = nodeId === null ? 'cannot read the default broker configs' : `cannot read the broker configs of node ${nodeId}`
  const describe = (client: KafkaClient) =>
    client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, client.version(describeConfigs), {
      resources: [{ resourceType: ResourceType.BROKER, resourceName: nodeId === null ? '' : String(nodeId), configurationKeys: null }],
      includeSynonyms: false,
      includeDocumentation: false,
    })
  const response = nodeId === null ? await cluster.atController(context, describe) : await describe(await nodeClient(cluster, nodeId, context))
  const result = response.results[0]
  if (!result) throw new Error(`${context}: the node answered no resource`)
  checkError(result.errorCode, context, result.errorMessage)
  return result.configs
    .filter((c) => DYNAMIC_SOURCES.has(c.configSource ?? ConfigSource.UNKNOWN))
    .map((c) => ({ name: c.name, value: c.value ?? '', source: SOURCE_NAMES.get(c.configSource ?? ConfigSource.UNKNOWN)! }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * Sets and removes dynamic broker configs while the nodes run, as `kafka-configs.sh --entity-type brokers
 * (--entity-default | --entity-name <id>) --alter --add-config/--delete-config` does: IncrementalAlterConfigs SET and
 * DELETE of the BROKER resource "" (`nodeId` null: every node) or of a node, sent to the controller (a cluster node
 * forwards it). Only the broker defaults of topic configs change this way. Errors: the node's, by name:
 * INVALID_CONFIG (an unknown name or bad value), INVALID_REQUEST (a config read at start only).
 */
export function alterDynamicBrokerConfigs(cluster: ClusterClient, nodeId: number | null, changes: TopicConfigChanges): Promise<void> {
  const context = nodeId === null ? 'cannot alter the default broker configs' : `cannot alter the broker configs of node ${nodeId}`
  return alterResourceConfigs(cluster, { resourceType: ResourceType.BROKER, resourceName: nodeId === null ? '' : String(nodeId) }, changes, context)
}
