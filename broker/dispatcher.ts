/**
 * The one lookup from API key to handler. The table below is also what ApiVersions advertises, so the advertised
 * ranges cannot drift from what is implemented. To add an API: generate its definition (protocol/README.md), write a
 * handler module in handlers/, and add its entry here.
 */
import { parseRange } from '../protocol/versions.js'
import { ErrorCode } from '../protocol/errors.js'
import { apiVersions, type ApiVersionsResponse } from '../protocol/messages/api-versions.js'
import type { ApiRange, HandlerEntry } from './handler.js'
import { apiVersionsHandler } from './handlers/api-versions.js'
import { metadataHandler } from './handlers/metadata.js'
import { produceHandler } from './handlers/produce.js'
import { fetchHandler } from './handlers/fetch.js'
import { listOffsetsHandler } from './handlers/list-offsets.js'
import {
  controllerCreatePartitionsHandler,
  controllerCreateTopicsHandler,
  controllerDeleteTopicsHandler,
  createPartitionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
} from './handlers/topics.js'
import { describeConfigsHandler } from './handlers/configs.js'
import { describeClusterHandler } from './handlers/describe-cluster.js'
import {
  findCoordinatorHandler,
  joinGroupHandler,
  syncGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  describeGroupsHandler,
  listGroupsHandler,
  deleteGroupsHandler,
} from './handlers/groups.js'
import { offsetCommitHandler, offsetFetchHandler, offsetDeleteHandler } from './handlers/offsets.js'
import {
  alterConfigsHandler,
  controllerAlterConfigsHandler,
  controllerIncrementalAlterConfigsHandler,
  incrementalAlterConfigsHandler,
} from './handlers/alter-configs.js'
import { deleteRecordsHandler } from './handlers/delete-records.js'
import {
  addOffsetsToTxnHandler,
  addPartitionsToTxnHandler,
  endTxnHandler,
  initProducerIdHandler,
  txnOffsetCommitHandler,
  writeTxnMarkersHandler,
} from './handlers/transactions.js'
import { offsetForLeaderEpochHandler } from './handlers/offset-for-leader-epoch.js'
import {
  allocateProducerIdsHandler,
  alterPartitionHandler,
  beginQuorumEpochHandler,
  brokerHeartbeatHandler,
  brokerRegistrationHandler,
  controllerDescribeQuorumHandler,
  describeQuorumHandler,
  endQuorumEpochHandler,
  fetchSnapshotHandler,
  quorumFetchHandler,
  voteHandler,
} from './handlers/quorum.js'
import { controllerElectLeadersHandler, electLeadersHandler } from './handlers/elect-leaders.js'
import { alterPartitionReassignmentsHandler, controllerAlterPartitionReassignmentsHandler, listPartitionReassignmentsHandler } from './handlers/reassignments.js'
import { describeProducersHandler, describeTransactionsHandler, listTransactionsHandler } from './handlers/transactions-admin.js'
import { controllerUnregisterBrokerHandler, unregisterBrokerHandler } from './handlers/unregister-broker.js'
import { describeLogDirsHandler } from './handlers/describe-log-dirs.js'
import { createAclsHandler, deleteAclsHandler, describeAclsHandler } from './handlers/acls.js'
import { describeTopicPartitionsHandler } from './handlers/describe-topic-partitions.js'
import { saslAuthenticateHandler, saslHandshakeHandler } from './handlers/sasl.js'

export const HANDLERS: readonly HandlerEntry[] = [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  offsetCommitHandler,
  offsetFetchHandler,
  findCoordinatorHandler,
  joinGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  syncGroupHandler,
  describeGroupsHandler,
  listGroupsHandler,
  apiVersionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  initProducerIdHandler,
  addPartitionsToTxnHandler,
  addOffsetsToTxnHandler,
  endTxnHandler,
  writeTxnMarkersHandler,
  txnOffsetCommitHandler,
  describeProducersHandler,
  describeTransactionsHandler,
  listTransactionsHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  createPartitionsHandler,
  deleteGroupsHandler,
  incrementalAlterConfigsHandler,
  offsetDeleteHandler,
  describeClusterHandler,
  electLeadersHandler,
  alterPartitionReassignmentsHandler,
  listPartitionReassignmentsHandler,
  describeLogDirsHandler,
  describeAclsHandler,
  createAclsHandler,
  deleteAclsHandler,
  describeTopicPartitionsHandler,
  saslHandshakeHandler,
  saslAuthenticateHandler,
]

/**
 * A cluster node's client listener: every API of a node, DescribeQuorum (forwarded to the quorum's leader),
 * OffsetForLeaderEpoch and UnregisterBroker (forwarded to the active controller).
 */
export const CLUSTER_NODE_HANDLERS: readonly HandlerEntry[] = [...HANDLERS, describeQuorumHandler, offsetForLeaderEpochHandler, unregisterBrokerHandler]

/**
 * A cluster node's controller listener (Kafka's controller listener): the quorum's own APIs, the controller's
 * broker lifecycle APIs, AllocateProducerIds, AlterPartition, the topic changes forwarded by the other nodes (CreateTopics,
 * DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs), ElectLeaders, AlterPartitionReassignments and
 * UnregisterBroker forwarded likewise, and ApiVersions. Fetch here reads the metadata log only.
 */
export const CONTROLLER_HANDLERS: readonly HandlerEntry[] = [
  apiVersionsHandler,
  voteHandler,
  beginQuorumEpochHandler,
  endQuorumEpochHandler,
  quorumFetchHandler,
  fetchSnapshotHandler,
  controllerDescribeQuorumHandler,
  brokerRegistrationHandler,
  brokerHeartbeatHandler,
  allocateProducerIdsHandler,
  alterPartitionHandler,
  controllerCreateTopicsHandler,
  controllerDeleteTopicsHandler,
  controllerCreatePartitionsHandler,
  controllerAlterConfigsHandler,
  controllerIncrementalAlterConfigsHandler,
  controllerElectLeadersHandler,
  controllerAlterPartitionReassignmentsHandler,
  controllerUnregisterBrokerHandler,
]

export class Dispatcher {
  private readonly byKey = new Map<number, HandlerEntry>()
  readonly advertised: readonly ApiRange[]

  constructor(entries: readonly HandlerEntry[] = HANDLERS) {
    for (const entry of entries) {
      if (this.byKey.has(entry.api.apiKey)) throw new Error(`two handlers for API key ${entry.api.apiKey}`)
      this.byKey.set(entry.api.apiKey, entry)
    }
    this.advertised = [...this.byKey.values()]
      .map((entry) => {
        const { min, max } = parseRange(entry.versions)
        return { apiKey: entry.api.apiKey, minVersion: min, maxVersion: max }
      })
      .sort((a, b) => a.apiKey - b.apiKey)
  }

  lookup(apiKey: number): HandlerEntry | undefined {
    return this.byKey.get(apiKey)
  }

  /**
   * The KIP-511 answer to an ApiVersions request of a version we do not have: UNSUPPORTED_VERSION with ApiVersions'
   * own range alone, as Kafka's ApiVersionsRequest.getErrorResponse answers, which is all a client reads from it
   * before it asks again at a version in that range (librdkafka, Kafka's NetworkClient).
   */
  unsupportedApiVersions(): ApiVersionsResponse {
    return { errorCode: ErrorCode.UNSUPPORTED_VERSION, apiKeys: this.advertised.filter((range) => range.apiKey === apiVersions.apiKey) }
  }
}
