/**
 * The controller quorum's APIs, on a cluster node's controller listener (Kafka's controller listener):
 *
 * - Vote v2, BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v15-17 of `__cluster_metadata` (with ReplicaState's
 *   replica id) and FetchSnapshot v1: handed to the node's quorum member (cluster/quorum-runner.ts), answered with
 *   its response (cluster/raft-wire.ts maps both). A request that does not name the metadata partition, or whose
 *   sender (candidate, leader or replica id) is negative or this node itself, is INVALID_REQUEST; one the member
 *   leaves unanswered within its request timeout is REQUEST_TIMED_OUT.
 * - BrokerRegistration v0-4 and BrokerHeartbeat v0-1 (KIP-631): the active controller's operations, answered once
 *   their records commit; any other member answers NOT_CONTROLLER. A registration naming another cluster is
 *   INCONSISTENT_CLUSTER_ID; one no node of this cluster sends (a broker id that is not a voter, no PLAINTEXT
 *   listener, an implausible host: `QuorumController.registerBroker`) is INVALID_REQUEST. A heartbeat's wantShutDown
 *   starts a controlled shutdown, answered shouldShutDown once the node may stop (`QuorumController.heartbeat`).
 * - AllocateProducerIds v0 (KIP-730): the next block of producer ids for a registered broker at its epoch, from the
 *   active controller once its ProducerIdsRecord commits; any other member answers NOT_CONTROLLER.
 * - AlterPartition v2-3 (KIP-497): a partition leader's new ISR, per partition as `QuorumController.alterPartition`
 *   (the partition's state after the change, or the error), from the active controller once committed; v3 names each
 *   member with its broker epoch (KIP-903), which must be the member's registered epoch (INELIGIBLE_REPLICA
 *   otherwise). v0-1 (topics by name) are not offered: every Brook node sends v2+.
 * - DescribeQuorum v0-2 (KIP-595): on the controller listener the leader answers and others say
 *   NOT_LEADER_OR_FOLLOWER with the leader they know; on the client listener (describeQuorumHandler) a node forwards
 *   the request to the leader, as Kafka's brokers forward it to the controller. A request that does not name exactly
 *   `__cluster_metadata` partition 0 gets UNKNOWN_TOPIC_OR_PARTITION for each partition it names, as KafkaRaftClient's
 *   handleDescribeQuorumRequest answers.
 *
 * Services without a quorum (a single node) never route here: these handlers are only in the cluster's dispatchers.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { METADATA_TOPIC } from '../../protocol/constants.js'
import type { ApiSpec } from '../../protocol/schema.js'
import type { VersionRange } from '../../protocol/versions.js'
import { vote } from '../../protocol/messages/vote.js'
import { beginQuorumEpoch } from '../../protocol/messages/begin-quorum-epoch.js'
import { endQuorumEpoch } from '../../protocol/messages/end-quorum-epoch.js'
import { fetch } from '../../protocol/messages/fetch.js'
import { fetchSnapshot } from '../../protocol/messages/fetch-snapshot.js'
import { describeQuorum, type DescribeQuorumRequest, type DescribeQuorumResponse } from '../../protocol/messages/describe-quorum.js'
import {
  brokerRegistration,
  type BrokerRegistrationRequest,
  type BrokerRegistrationResponse,
} from '../../protocol/messages/broker-registration.js'
import { brokerHeartbeat, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse } from '../../protocol/messages/broker-heartbeat.js'
import {
  allocateProducerIds,
  type AllocateProducerIdsRequest,
  type AllocateProducerIdsResponse,
} from '../../protocol/messages/allocate-producer-ids.js'
import { alterPartition, type AlterPartitionRequest, type AlterPartitionResponse } from '../../protocol/messages/alter-partition.js'
import { defineHandler, type BrokerServices, type HandlerEntry } from '../handler.js'
import { fromWireRequest, RaftWireError, toWireResponse, wireErrorResponse } from '../cluster/raft-wire.js'
import type { QuorumRunner } from '../cluster/quorum-runner.js'

function quorumOf(services: BrokerServices): QuorumRunner {
  if (!services.quorum) throw new Error('a quorum API reached a node without a controller quorum')
  return services.quorum
}

/** A Raft API: the wire request to the member and its response back. */
function raftHandler(api: ApiSpec, versions: VersionRange): HandlerEntry {
  return defineHandler<unknown, unknown>(api, versions, async (request, { services }) => {
    let parsed
    try {
      parsed = fromWireRequest(api.apiKey, request)
    } catch (error) {
      if (error instanceof RaftWireError) return wireErrorResponse(api.apiKey, ErrorCode.INVALID_REQUEST)
      throw error
    }
    const quorum = quorumOf(services)
    // Only another member may speak for itself: a request in this node's name, or in none, would be taken for one.
    if (parsed.source < 0 || parsed.source === quorum.nodeId) return wireErrorResponse(api.apiKey, ErrorCode.INVALID_REQUEST)
    try {
      return toWireResponse(await quorum.receive(parsed.source, parsed.message))
    } catch {
      return wireErrorResponse(api.apiKey, ErrorCode.REQUEST_TIMED_OUT)
    }
  })
}

export const voteHandler = raftHandler(vote, '2')
export const beginQuorumEpochHandler = raftHandler(beginQuorumEpoch, '1')
export const endQuorumEpochHandler = raftHandler(endQuorumEpoch, '1')
export const quorumFetchHandler = raftHandler(fetch, '15-17')
export const fetchSnapshotHandler = raftHandler(fetchSnapshot, '1')

/** DescribeQuorum on the controller listener: the leader's view, or NOT_LEADER_OR_FOLLOWER elsewhere. */
export const controllerDescribeQuorumHandler = defineHandler<DescribeQuorumRequest, DescribeQuorumResponse>(describeQuorum, '0-2', (request, { services }) =>
  namesMetadataPartition(request) ? quorumOf(services).describeQuorum({ forward: false }) : unknownPartitions(request),
)

/** DescribeQuorum on the client listener: forwarded to the leader. */
export const describeQuorumHandler = defineHandler<DescribeQuorumRequest, DescribeQuorumResponse>(describeQuorum, '0-2', (request, { services }) =>
  namesMetadataPartition(request) ? quorumOf(services).describeQuorum({ forward: true }) : unknownPartitions(request),
)

/** Whether a DescribeQuorum names `__cluster_metadata` partition 0 and nothing else (KafkaRaftClient's hasValidTopicPartition). */
function namesMetadataPartition(request: DescribeQuorumRequest): boolean {
  const [topic] = request.topics
  return request.topics.length === 1 && topic!.topicName === METADATA_TOPIC && topic!.partitions.length === 1 && topic!.partitions[0]!.partitionIndex === 0
}

/** UNKNOWN_TOPIC_OR_PARTITION for every partition a DescribeQuorum names (Kafka's getPartitionLevelErrorResponse). */
function unknownPartitions(request: DescribeQuorumRequest): DescribeQuorumResponse {
  return {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topics: request.topics.map((topic) => ({
      topicName: topic.topicName,
      partitions: topic.partitions.map(({ partitionIndex }) => ({
        partitionIndex,
        errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        errorMessage: null,
        leaderId: -1,
        leaderEpoch: -1,
        highWatermark: -1n,
        currentVoters: [],
        observers: [],
      })),
    })),
    nodes: [],
  }
}

export const brokerRegistrationHandler = defineHandler<BrokerRegistrationRequest, BrokerRegistrationResponse>(
  brokerRegistration,
  '0-4',
  async (request, { services }) => {
    const quorum = quorumOf(services)
    if (request.clusterId !== quorum.clusterId) return { throttleTimeMs: 0, errorCode: ErrorCode.INCONSISTENT_CLUSTER_ID, brokerEpoch: -1n }
    const result = await quorum.registerBroker({
      brokerId: request.brokerId,
      incarnationId: request.incarnationId,
      endPoints: request.listeners.map((listener) => ({ name: listener.name, host: listener.host, port: listener.port, securityProtocol: listener.securityProtocol })),
      rack: request.rack,
    })
    return result.ok ? { throttleTimeMs: 0, errorCode: ErrorCode.NONE, brokerEpoch: result.brokerEpoch } : { throttleTimeMs: 0, errorCode: result.errorCode, brokerEpoch: -1n }
  },
)

export const brokerHeartbeatHandler = defineHandler<BrokerHeartbeatRequest, BrokerHeartbeatResponse>(brokerHeartbeat, '0-1', async (request, { services }) => {
  const result = await quorumOf(services).heartbeat({
    brokerId: request.brokerId,
    brokerEpoch: request.brokerEpoch,
    currentMetadataOffset: request.currentMetadataOffset,
    wantFence: request.wantFence,
    wantShutDown: request.wantShutDown,
  })
  return result.ok
    ? { throttleTimeMs: 0, errorCode: ErrorCode.NONE, isCaughtUp: result.isCaughtUp, isFenced: result.isFenced, shouldShutDown: result.shouldShutDown }
    : { throttleTimeMs: 0, errorCode: result.errorCode, isCaughtUp: false, isFenced: true, shouldShutDown: false }
})

export const allocateProducerIdsHandler = defineHandler<AllocateProducerIdsRequest, AllocateProducerIdsResponse>(allocateProducerIds, '0', async (request, { services }) => {
  const result = await quorumOf(services).allocateProducerIds({ brokerId: request.brokerId, brokerEpoch: request.brokerEpoch })
  return result.ok
    ? { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerIdStart: result.producerIdStart, producerIdLen: result.producerIdLen }
    : { throttleTimeMs: 0, errorCode: result.errorCode, producerIdStart: -1n, producerIdLen: 0 }
})

export const alterPartitionHandler = defineHandler<AlterPartitionRequest, AlterPartitionResponse>(alterPartition, '2-3', async (request, { services, apiVersion }) => {
  const quorum = quorumOf(services)
  const topics = await Promise.all(
    request.topics.map(async (topic) => ({
      topicId: topic.topicId,
      partitions: await Promise.all(
        topic.partitions.map(async (partition) => {
          const failed = (errorCode: number) => ({ partitionIndex: partition.partitionIndex, errorCode, leaderId: -1, leaderEpoch: -1, isr: [], leaderRecoveryState: 0, partitionEpoch: -1 })
          const newIsr = apiVersion >= 3 ? partition.newIsrWithEpochs.map((member) => member.brokerId) : partition.newIsr
          if (apiVersion >= 3) {
            const brokers = quorum.controller.image.brokers
            const stale = partition.newIsrWithEpochs.some((member) => member.brokerEpoch !== -1n && brokers.get(member.brokerId)?.brokerEpoch !== member.brokerEpoch)
            if (stale) return failed(ErrorCode.INELIGIBLE_REPLICA)
          }
          const result = await quorum.alterPartition({
            brokerId: request.brokerId,
            brokerEpoch: request.brokerEpoch,
            topicId: topic.topicId,
            partitionIndex: partition.partitionIndex,
            leaderEpoch: partition.leaderEpoch,
            partitionEpoch: partition.partitionEpoch,
            newIsr,
          })
          if (!result.ok) return failed(result.errorCode)
          return { partitionIndex: partition.partitionIndex, errorCode: ErrorCode.NONE, leaderId: result.leaderId, leaderEpoch: result.leaderEpoch, isr: [...result.isr], leaderRecoveryState: 0, partitionEpoch: result.partitionEpoch }
        }),
      ),
    })),
  )
  // BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH and NOT_CONTROLLER concern the whole request (Kafka answers them at the top).
  const partitionErrors = topics.flatMap((topic) => topic.partitions.map((partition) => partition.errorCode))
  const topLevel = [ErrorCode.NOT_CONTROLLER, ErrorCode.STALE_BROKER_EPOCH, ErrorCode.BROKER_ID_NOT_REGISTERED].find((code) => partitionErrors.includes(code))
  return { throttleTimeMs: 0, errorCode: topLevel ?? ErrorCode.NONE, topics: topLevel === undefined ? topics : [] }
})
