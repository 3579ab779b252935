/**
 * What a handler is: a function from a decoded request to a response object. Handlers never see bytes or sockets;
 * each declares the versions it implements, and the dispatcher's table of handlers is the one source of the
 * ranges ApiVersions advertises.
 *
 * A handler sees the node through BrokerServices, never the node itself: the services are built once by the
 * composition root (broker.ts) and handed to every request, so a handler can be run in-process over real services
 * (test/broker/handlers/) and nothing under broker/ depends on how the node is put together.
 */
import type { ApiSpec } from '../protocol/schema.js'
import type { VersionRange } from '../protocol/versions.js'
import type { BrokerConfig } from './config.js'
import type { Logger } from './logger.js'
import type { AnswerBudget } from './answer-budget.js'
import type { TopicManager } from './topics.js'
import type { GroupCoordinator } from './group/coordinator.js'
import type { TransactionCoordinator } from './transaction/coordinator.js'
import type { TxnMarkerWriter } from './transaction/markers.js'
import type { QuorumRunner } from './cluster/quorum-runner.js'
import type { ReplicaManager } from './cluster/replica-manager.js'
import type { CoordinatorPartitions } from './coordinator-partitions.js'
import type { Topic } from './partition.js'
import { ErrorCode } from '../protocol/errors.js'
import { clientEndpoint } from './cluster/metadata/image.js'

/** This node as clients reach it: what Metadata, FindCoordinator, DescribeCluster and DescribeConfigs name. */
export interface NodeEndpoint {
  readonly nodeId: number
  /** The advertised host (advertised.listeners), which may differ from the interface listened on. */
  readonly host: string
  /** The advertised port (advertised.listeners) or else the port bound, which differs from the configured one when that was 0. */
  readonly port: number
}

/** One API's versions as ApiVersions advertises them. */
export interface ApiRange {
  readonly apiKey: number
  readonly minVersion: number
  readonly maxVersion: number
}

/** What a handler gets of the node. */
export interface BrokerServices {
  /** The topic registry: topics by name and id, their partitions (log, leader epoch, fetch waiters), changes. */
  readonly topics: TopicManager
  /** The group coordinator: membership and rebalancing, and the committed offsets it keeps. */
  readonly groups: GroupCoordinator
  /** The transaction coordinator: producer ids and epochs, transactions and their markers. */
  readonly transactions: TransactionCoordinator
  /** __consumer_offsets and __transaction_state: which node coordinates a key, and whether this one does now. */
  readonly coordinatorPartitions: { readonly groups: CoordinatorPartitions; readonly transactions: CoordinatorPartitions }
  /** Writes COMMIT/ABORT markers to this node's partitions (WriteTxnMarkers, and the coordinator in-process). */
  readonly markers: TxnMarkerWriter
  /** The node's settings; DescribeConfigs shows them under Kafka's broker config names. */
  readonly config: BrokerConfig
  readonly log: Logger
  /** The cluster id, made when the data directory was (Kafka's base64url form of 16 random bytes). */
  readonly clusterId: string
  readonly endpoint: NodeEndpoint
  /** Where the node listens (listeners): the interface and the port bound, which clients may reach only by `endpoint`. */
  readonly listener: { readonly host: string; readonly port: number }
  /** The dispatcher's table, which ApiVersions answers with. */
  readonly apiVersions: readonly ApiRange[]
  /** `queued.max.response.bytes`: the node's pool for Fetch answers not yet handed to the kernel. */
  readonly answers: AnswerBudget
  /** A cluster node's controller quorum member (`controller.quorum.voters` set); absent on a single node. */
  readonly quorum?: QuorumRunner
  /** A cluster node's partition replicas (leader and follower, ISR, high watermark); absent on a single node. */
  readonly replicas?: ReplicaManager
}

/**
 * The controller that Metadata and DescribeCluster name, where a client sends CreateTopics, DeleteTopics,
 * CreatePartitions, AlterConfigs and (librdkafka) DescribeConfigs: on a single node the node itself. On a cluster node
 * a live broker, never the controller quorum's leader as such: clients do not reach the KRaft controller, any broker
 * forwards those requests to the one it knows (KIP-590), and a KRaft broker names a random live broker of its image
 * (KRaftMetadataCache.getControllerId, used by KafkaApis' Metadata and DescribeCluster). Brook names the answering
 * node itself when it is a live broker of its image, one of Kafka's possible answers and one the client has just
 * reached: naming the quorum's leader sent librdkafka's admin requests to a paused or cut-off controller until its
 * request timeout, while another node was already elected and the answering node forwarded to it. A node that is
 * not a live broker of its image names a random one, as Kafka's; -1 when none is. `brokers`: liveBrokerEndpoints, when
 * the caller has them already.
 */
export function controllerIdOf(services: BrokerServices, brokers = liveBrokerEndpoints(services)): number {
  if (!services.quorum) return services.endpoint.nodeId
  const live = brokers.map((broker) => broker.nodeId)
  if (live.includes(services.endpoint.nodeId)) return services.endpoint.nodeId
  return live.length === 0 ? -1 : live[Math.floor(Math.random() * live.length)]!
}

/**
 * Whether this node may serve `partition` of `topic` (Produce, Fetch, ListOffsets): always on a single node; on a
 * cluster node only when the metadata image names it the partition's leader, else NOT_LEADER_OR_FOLLOWER, so the
 * client refreshes its metadata and goes to the leader (Kafka's ReplicaManager). The internal topics are the cluster's
 * like any other.
 */
export function leadershipError(services: BrokerServices, topic: Topic, partition: number): number {
  if (!services.quorum) return ErrorCode.NONE
  // The replica's state is the image as applied to the local log (leader epoch, HW owner): it leads only once both agree.
  if (services.replicas) return services.replicas.leads(topic.topicId, partition) ? ErrorCode.NONE : ErrorCode.NOT_LEADER_OR_FOLLOWER
  const leader = services.quorum.controller.image.topicsById.get(topic.topicId)?.partitions.get(partition)?.leader
  return leader === services.endpoint.nodeId ? ErrorCode.NONE : ErrorCode.NOT_LEADER_OR_FOLLOWER
}

/**
 * The answer of Produce, Fetch, ListOffsets, DeleteRecords and OffsetForLeaderEpoch for a partition this node holds
 * no local log of, named by `topic` (a name) or `topicId` (Fetch v13+). On a cluster node whose metadata image holds
 * the partition it is NOT_LEADER_OR_FOLLOWER, as Kafka's ReplicaManager.getPartitionOrError answers a partition its
 * metadata cache holds but it does not host (yet: a KRaft broker's BrokerMetadataPublisher sets the cache's image
 * before the ReplicaManager makes the replicas of a new topic; or any more), so the client refreshes its metadata and
 * retries. A partition the image does not hold either is UNKNOWN_TOPIC_OR_PARTITION (KafkaApis checks
 * metadataCache.contains first), or UNKNOWN_TOPIC_ID for a topic id neither the image nor the node's topics know.
 */
export function missingPartitionError(services: BrokerServices, named: { topic: string } | { topicId: string }, partition: number): number {
  const image = services.quorum?.controller.image
  const topic = 'topic' in named ? image?.topic(named.topic) : image?.topicsById.get(named.topicId)
  if (topic?.partitions.has(partition)) return ErrorCode.NOT_LEADER_OR_FOLLOWER
  // A topic id this node knows, from its image or its own topics (a single node has no image), names a topic that
  // exists: only the partition is missing (Kafka's KafkaApis resolves the id, then finds no partition).
  if ('topic' in named || topic || services.topics.getById(named.topicId)) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
  return ErrorCode.UNKNOWN_TOPIC_ID
}

/**
 * The brokers Metadata and DescribeCluster list: on a single node the node itself; on a cluster node the registered,
 * unfenced brokers of the node's metadata image with the client listener each registered (CLIENT_LISTENER_NAME; a
 * broker without one is left out, as a KRaft broker lists the live brokers of its image that have the listener), by id.
 */
export function liveBrokerEndpoints(services: BrokerServices): { nodeId: number; host: string; port: number; rack: string | null }[] {
  if (!services.quorum) return [{ nodeId: services.endpoint.nodeId, host: services.endpoint.host, port: services.endpoint.port, rack: null }]
  return [...services.quorum.controller.image.brokers.values()]
    .flatMap((broker) => {
      const endpoint = clientEndpoint(broker)
      return !broker.fenced && endpoint ? [{ nodeId: broker.brokerId, host: endpoint.host, port: endpoint.port, rack: broker.rack }] : []
    })
    .sort((a, b) => a.nodeId - b.nodeId)
}

/** A live broker's client endpoint, as Metadata and the KIP-951 answers' nodeEndpoints list it. */
export interface BrokerEndpoint {
  nodeId: number
  host: string
  port: number
  rack: string | null
}

/**
 * Where the leader of partition `index` of the topic with id `topicId` is now (KIP-951), as Kafka's
 * KafkaApis.getCurrentLeader finds it for an answer that refuses a request because this node does not lead: the
 * metadata image's leader and leader epoch (-1 and -1 for a partition the image does not hold), and the leader's client
 * endpoint when it is a live broker, else null. On a single node the node itself.
 */
export function currentLeaderOf(services: BrokerServices, topicId: string, index: number): { leaderId: number; leaderEpoch: number; endpoint: BrokerEndpoint | null } {
  if (!services.quorum) {
    const partition = services.topics.getById(topicId)?.partitions[index]
    return { leaderId: services.endpoint.nodeId, leaderEpoch: partition?.leaderEpoch ?? -1, endpoint: liveBrokerEndpoints(services)[0]! }
  }
  const partition = services.quorum.controller.image.topicsById.get(topicId)?.partitions.get(index)
  if (!partition) return { leaderId: -1, leaderEpoch: -1, endpoint: null }
  return { leaderId: partition.leader, leaderEpoch: partition.leaderEpoch, endpoint: liveBrokerEndpoints(services).find((b) => b.nodeId === partition.leader) ?? null }
}

/** One partition of an answer that may carry its current leader (KIP-951): where it is, and its answer. */
export interface LeaderHintSlot {
  /** The topic's id; null for a topic this node does not know (left as it is). */
  topicId: string | null
  index: number
  answer: { errorCode: number; currentLeader?: { leaderId?: number; leaderEpoch?: number } }
}

/**
 * KIP-951's help to a client that asked a node that does not lead: each of `slots` answered with one of `errors`
 * gets `currentLeader` (its leader and leader epoch now, `currentLeaderOf`); returned are the endpoints of those
 * leaders that are live brokers, by node id, for the answer's `nodeEndpoints`, so that the client can go to the leader
 * without a Metadata request (Kafka's KafkaApis: Produce v10+ on NOT_LEADER_OR_FOLLOWER, Fetch v16+ on it and on
 * FENCED_LEADER_EPOCH).
 */
export function fillCurrentLeaders(services: BrokerServices, slots: Iterable<LeaderHintSlot>, errors: readonly number[]): BrokerEndpoint[] {
  const endpoints = new Map<number, BrokerEndpoint>()
  for (const { topicId, index, answer } of slots) {
    if (topicId === null || !errors.includes(answer.errorCode)) continue
    const { leaderId, leaderEpoch, endpoint } = currentLeaderOf(services, topicId, index)
    answer.currentLeader = { leaderId, leaderEpoch }
    if (endpoint) endpoints.set(endpoint.nodeId, endpoint)
  }
  return [...endpoints.values()].sort((a, b) => a.nodeId - b.nodeId)
}

/**
 * A request's topics with each partition named once, as Kafka reads a Produce, Fetch, DeleteRecords or
 * AddPartitionsToTxn (KafkaApis and FetchRequest put the partitions in a map or set keyed by partition): a partition
 * named again takes the later entry's fields, in the place
 * where it was first named, and is answered once; a topic entry left without partitions is dropped. `keyOf` names a
 * partition (its topic, by name or id, and index). Returns `topics` itself when no partition is named twice.
 */
export function partitionsNamedOnce<T, P>(
  topics: readonly T[],
  partitionsOf: (topic: T) => readonly P[],
  keyOf: (topic: T, partition: P) => string,
  withPartitions: (topic: T, partitions: P[]) => T,
): readonly T[] {
  let named = 0
  for (const topic of topics) named += partitionsOf(topic).length
  if (named < 2) return topics
  const last = new Map<string, P>()
  for (const topic of topics) for (const partition of partitionsOf(topic)) last.set(keyOf(topic, partition), partition)
  if (last.size === named) return topics
  const placed = new Set<string>()
  const once: T[] = []
  for (const topic of topics) {
    const partitions: P[] = []
    for (const partition of partitionsOf(topic)) {
      const key = keyOf(topic, partition)
      if (placed.has(key)) continue
      placed.add(key)
      partitions.push(last.get(key)!)
    }
    if (partitions.length > 0) once.push(withPartitions(topic, partitions))
  }
  return once
}

/** Returned by a handler whose request gets no response (Produce with acks=0). */
export const NO_RESPONSE: unique symbol = Symbol('no response')
/** Returned when the connection must close instead of answering (Produce with acks=0 that failed, as Kafka does). */
export const CLOSE_CONNECTION: unique symbol = Symbol('close connection')

export type HandlerResult<Res> = Res | typeof NO_RESPONSE | typeof CLOSE_CONNECTION

/** One request's view: the node's services and what the connection knows of the client. */
export interface RequestContext {
  readonly services: BrokerServices
  readonly apiVersion: number
  readonly clientId: string | null
  /** The client's address, for log lines. */
  readonly remote: string
  /** The client's IP address alone (group members' clientHost). */
  readonly remoteHost: string
  /** Aborted when the connection closes, so parked requests (long-polling fetches) stop waiting. */
  readonly signal: AbortSignal
  /**
   * Says the request now waits on other requests or on time (a long poll, a rebalance), as in Kafka's purgatory: it
   * no longer counts against queued.max.requests, so parked requests cannot keep the node from reading new ones.
   * Its bytes still count until it is answered. Calling it more than once is harmless.
   */
  parked(): void
  /**
   * Runs `callback` once, when the answer to this request has left the socket (handed to the kernel), or when the
   * connection closes without sending it, or the handler failed. The Fetch handler gives its answer's bytes back to
   * the node's pool so, and releases the batch cache's slabs its answer sent views of (storage/batch-cache.ts).
   */
  onAnswerSent(callback: () => void): void
}

export interface HandlerOptions {
  /**
   * The connection reads no further request until this one is answered and its answer has left the socket. Kafka
   * mutes every connection so; Brook does it for requests whose answers can be large (Fetch), so that pipelined
   * requests cannot pile up answers that a client is not reading, and pipelines the others (produce requests from
   * one connection are written together by the group commit).
   */
  readonly mutesConnection?: boolean
}

export interface HandlerEntry {
  readonly api: ApiSpec
  readonly versions: VersionRange
  // The dispatcher holds handlers of every request type in one table, so the request type is erased here.
  readonly handle: (request: any, context: RequestContext) => HandlerResult<unknown> | Promise<HandlerResult<unknown>>
  readonly options: HandlerOptions
}

export function defineHandler<Req, Res>(
  api: ApiSpec,
  versions: VersionRange,
  handle: (request: Req, context: RequestContext) => HandlerResult<Res> | Promise<HandlerResult<Res>>,
  options: HandlerOptions = {},
): HandlerEntry {
  return { api, versions, handle, options }
}
