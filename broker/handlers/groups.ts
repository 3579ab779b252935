/**
 * The classic consumer-group protocol: FindCoordinator v0-4, JoinGroup v0-9, SyncGroup v0-5, Heartbeat v0-4,
 * LeaveGroup v0-5, DescribeGroups v0-5, ListGroups v0-5, DeleteGroups v0-2. The rules live in group/coordinator.ts;
 * this module maps requests and responses per version.
 *
 * Behaviour
 * - FindCoordinator: groups (key type 0) and transactional ids (key type 1); other key types INVALID_REQUEST.
 *   __consumer_offsets and __transaction_state are created on first use (on a cluster node through the active
 *   controller). A single node coordinates every key; on a cluster node a key's coordinator is the leader of its
 *   partition of the internal topic (coordinator-partitions.ts), COORDINATOR_NOT_AVAILABLE while it has no live leader.
 * - Every group request sent to a node that does not coordinate the group (on a cluster node) is NOT_COORDINATOR, and
 *   COORDINATOR_LOAD_IN_PROGRESS while the group's partition loads (DescribeGroups and DeleteGroups per group);
 *   ListGroups lists the groups this node coordinates, COORDINATOR_LOAD_IN_PROGRESS while a partition loads.
 * - JoinGroup: MEMBER_ID_REQUIRED only from v4 (kafka-go's v1 joins hung on brokers that sent it earlier); session
 *   timeouts outside group.min/max.session.timeout.ms are INVALID_SESSION_TIMEOUT.
 * - LeaveGroup v0-2 name one member; v3+ a batch, each answered on its own (static members by instance id).
 * - JoinGroup, SyncGroup, Heartbeat and LeaveGroup refuse the empty group id with INVALID_GROUP_ID, as Kafka's
 *   GroupCoordinatorService does (isGroupIdNotEmpty), even once standalone commits have made it a group
 *   (offsets.ts); DescribeGroups and DeleteGroups take it as any other id, as Kafka does.
 * - DescribeGroups: an unknown group is described as Dead with no error, as Kafka does before v6. With
 *   includeAuthorizedOperations (v3+) each group answered without an error carries every operation a group supports,
 *   as Kafka answers without an authorizer (KafkaApis.handleDescribeGroupsRequest, AuthHelper.authorizedOperations):
 *   Brook has no ACLs. Otherwise the JSON's default, -2147483648 ("not requested").
 * - ListGroups v4+: states filter (case-insensitive, like Kafka). v5+ (KIP-848): the types filter, case-insensitive as
 *   Kafka's GroupType.parse reads it, and each group's type. Brook's groups are all of Kafka's `classic` type (the
 *   JoinGroup protocol; no KIP-848 `consumer` groups), so a filter without `classic` lists none.
 * - DeleteGroups: only empty groups (NON_EMPTY_GROUP), unknown ones GROUP_ID_NOT_FOUND.
 * - Storage failures (the node refuses writes, see broker.ts): FindCoordinator and JoinGroup answer
 *   COORDINATOR_NOT_AVAILABLE when __consumer_offsets cannot be created (Kafka's answer while the coordinator's
 *   partition has no leader); a write to it that fails is NOT_COORDINATOR, as Kafka's coordinator translates
 *   KAFKA_STORAGE_ERROR (SyncGroup, DeleteGroups; metadata-manager.ts appendErrorCode). Reads (DescribeGroups,
 *   ListGroups, OffsetFetch) go on.
 *
 * Version notes
 * - FindCoordinator v4+ batch keys (`coordinatorKeys`) and answer per key.
 * - JoinGroup v7+ answer protocolType and a nullable protocolName; v5+ carry group.instance.id.
 * - SyncGroup v5 checks protocolType/protocolName against the group (INCONSISTENT_GROUP_PROTOCOL).
 */
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../protocol/messages/find-coordinator.js'
import { joinGroup, type JoinGroupRequest, type JoinGroupResponse } from '../../protocol/messages/join-group.js'
import { syncGroup, type SyncGroupRequest, type SyncGroupResponse } from '../../protocol/messages/sync-group.js'
import { heartbeat, type HeartbeatRequest, type HeartbeatResponse } from '../../protocol/messages/heartbeat.js'
import { leaveGroup, type LeaveGroupRequest, type LeaveGroupResponse } from '../../protocol/messages/leave-group.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../../protocol/messages/describe-groups.js'
import { listGroups, type ListGroupsRequest, type ListGroupsResponse } from '../../protocol/messages/list-groups.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../protocol/messages/delete-groups.js'
import { ErrorCode, KafkaError, errorInfo } from '../../protocol/errors.js'
import { AuthorizedOperations, CoordinatorType } from '../../protocol/constants.js'
import { defineHandler, liveBrokerEndpoints, type BrokerServices } from '../handler.js'
import type { CoordinatorPartitions } from '../coordinator-partitions.js'
import { quote } from '../quote.js'
import { GroupState } from '../group/group.js'
import { appendErrorCode } from '../group/metadata-manager.js'
import { StorageError } from '../../storage/log-store.js'

type Coordinator = { key: string; errorCode: number; errorMessage: string | null; nodeId: number; host: string; port: number }

function notFound(key: string, errorCode: number, errorMessage: string | null): Coordinator {
  return { key, errorCode, errorMessage, nodeId: -1, host: '', port: -1 }
}

/**
 * The coordinator of `key`: this node on a single node; on a cluster node the leader of the key's partition of the
 * internal topic, from the metadata image (Kafka's KafkaApis.getCoordinator), COORDINATOR_NOT_AVAILABLE while that
 * partition has no live leader. `topicProblem`: why the internal topic is not there to name a coordinator from (it
 * could not be created, or this request had it created).
 */
function coordinatorFor(services: BrokerServices, key: string, keyType: number, topicProblem: string | null): Coordinator {
  const partitions = coordinatorPartitionsOf(services, keyType)
  if (!partitions) return notFound(key, ErrorCode.INVALID_REQUEST, `unknown key type ${keyType}`)
  if (topicProblem !== null) return notFound(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, topicProblem)
  if (!services.quorum) return { key, errorCode: ErrorCode.NONE, errorMessage: null, ...services.endpoint }
  const leader = partitions.leaderFor(key)
  const endpoint = liveBrokerEndpoints(services).find((broker) => broker.nodeId === leader)
  if (!endpoint) return notFound(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, `${partitions.topicName}-${partitions.partitionFor(key)} has no live leader`)
  return { key, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: endpoint.nodeId, host: endpoint.host, port: endpoint.port }
}

function coordinatorPartitionsOf(services: BrokerServices, keyType: number): CoordinatorPartitions | null {
  if (keyType === CoordinatorType.GROUP) return services.coordinatorPartitions.groups
  if (keyType === CoordinatorType.TRANSACTION) return services.coordinatorPartitions.transactions
  return null
}

export const findCoordinatorHandler = defineHandler<FindCoordinatorRequest, FindCoordinatorResponse>(
  findCoordinator,
  '0-4',
  async (request, { services, apiVersion }) => {
    let problem: string | null = null
    const partitions = coordinatorPartitionsOf(services, request.keyType)
    // As Kafka's KafkaApis.getCoordinator: a cluster's internal topic missing from the metadata is created, and the
    // request answered COORDINATOR_NOT_AVAILABLE, so the client asks again after its backoff, by when the leaders have
    // opened the new partitions (naming one at once sent clients to a node still opening them, which answered
    // NOT_COORDINATOR, and sarama's commit gave up after five lookups in 20 ms).
    const creating = partitions !== null && services.quorum !== undefined && !services.quorum.controller.image.topic(partitions.topicName)
    try {
      await partitions?.ensureTopic()
      if (creating) problem = `${partitions.topicName} was being created: ask again`
    } catch (error) {
      if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
      // A KafkaError from the controller's refusal names the topic already; a StorageError is this node's own.
      problem = error instanceof KafkaError ? error.message : `${partitions!.topicName} cannot be created: ${error.message}`
    }
    if (apiVersion >= 4) {
      return { throttleTimeMs: 0, coordinators: request.coordinatorKeys.map((key) => coordinatorFor(services, key, request.keyType, problem)) }
    }
    const { errorCode, errorMessage, nodeId, host, port } = coordinatorFor(services, request.key, request.keyType, problem)
    return { throttleTimeMs: 0, errorCode, errorMessage, nodeId, host, port }
  },
)

export const joinGroupHandler = defineHandler<JoinGroupRequest, JoinGroupResponse>(
  joinGroup,
  '0-9',
  async (request, { services, apiVersion, clientId, remoteHost, parked }) => {
    // A join waits for the rebalance, which needs the other members' joins read: it must not hold a queue place.
    parked()
    let response: JoinGroupResponse
    try {
      response = await services.groups.join(request, { apiVersion, clientId: clientId ?? '', clientHost: `/${remoteHost}` })
    } catch (error) {
      // The join itself writes nothing; only creating __consumer_offsets can fail.
      if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
      response = { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, generationId: -1, protocolName: null, leader: '', memberId: request.memberId, members: [] }
    }
    // Before v7 the protocol name is not nullable: an error answer carries "".
    if (apiVersion < 7 && response.protocolName === null) response.protocolName = ''
    return { throttleTimeMs: 0, ...response }
  },
)

export const syncGroupHandler = defineHandler<SyncGroupRequest, SyncGroupResponse>(
  syncGroup,
  '0-5',
  async (request, { services, parked }) => {
    // A follower's sync waits for the leader's.
    parked()
    return { throttleTimeMs: 0, ...(await services.groups.sync(request)) }
  },
)

export const heartbeatHandler = defineHandler<HeartbeatRequest, HeartbeatResponse>(heartbeat, '0-4', (request, { services }) => ({
  throttleTimeMs: 0,
  errorCode: services.groups.heartbeat(request.groupId, request.generationId, request),
}))

export const leaveGroupHandler = defineHandler<LeaveGroupRequest, LeaveGroupResponse>(
  leaveGroup,
  '0-5',
  (request, { services, apiVersion }) => {
    if (apiVersion < 3) {
      const result = services.groups.leave(request.groupId, [{ memberId: request.memberId, groupInstanceId: null }])
      // A group-level refusal (the empty group id) answers no member.
      return { throttleTimeMs: 0, errorCode: result.members[0]?.errorCode ?? result.errorCode, members: [] }
    }
    const result = services.groups.leave(request.groupId, request.members)
    return {
      throttleTimeMs: 0,
      errorCode: result.errorCode,
      members: result.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: m.errorCode })),
    }
  },
)

export const describeGroupsHandler = defineHandler<DescribeGroupsRequest, DescribeGroupsResponse>(
  describeGroups,
  '0-5',
  (request, { services, apiVersion }) => ({
    throttleTimeMs: 0,
    groups: request.groups.map((groupId) => {
      const described = describeGroup(services, groupId)
      return apiVersion >= 3 && request.includeAuthorizedOperations && described.errorCode === ErrorCode.NONE
        ? { ...described, authorizedOperations: AuthorizedOperations.GROUP }
        : described
    }),
  }),
)

/** One group as DescribeGroups answers it, authorized operations aside. */
function describeGroup(services: BrokerServices, groupId: string): DescribeGroupsResponse['groups'][number] {
  const notHere = services.groups.coordinatorError(groupId)
  if (notHere !== ErrorCode.NONE) return { errorCode: notHere, groupId, groupState: '', protocolType: '', protocolData: '', members: [] }
  const group = services.groups.describe(groupId)
  if (!group) {
    return { errorCode: ErrorCode.NONE, groupId, groupState: GroupState.Dead, protocolType: '', protocolData: '', members: [] }
  }
  // Kafka's GroupMetadata.summary: only a Stable group names its protocol and shows its members' metadata and
  // assignments; in any other state, CompletingRebalance included (the leader has yet to sync), the protocol is ""
  // and the members come without either, so admin tools describe the group as rebalancing.
  const stable = group.state === GroupState.Stable
  return {
    errorCode: ErrorCode.NONE,
    groupId,
    groupState: group.state,
    protocolType: group.protocolType ?? '',
    protocolData: stable ? (group.protocolName ?? '') : '',
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      memberMetadata: stable ? m.metadataFor(group.protocolName ?? '') : Buffer.alloc(0),
      memberAssignment: stable ? m.assignment : Buffer.alloc(0),
    })),
  }
}

/** Kafka's name for the type of every group Brook coordinates (Group.GroupType.CLASSIC). */
const CLASSIC_GROUP = 'classic'

export const listGroupsHandler = defineHandler<ListGroupsRequest, ListGroupsResponse>(listGroups, '0-5', (request, { services }) => {
  const states = new Set(request.statesFilter.map((s) => s.toLowerCase()))
  const types = new Set(request.typesFilter.map((t) => t.toLowerCase()))
  const typed = types.size === 0 || types.has(CLASSIC_GROUP)
  return {
    throttleTimeMs: 0,
    // Kafka's handleListGroups: the groups of the loaded partitions, and COORDINATOR_LOAD_IN_PROGRESS while any loads.
    errorCode: services.groups.loading ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS : ErrorCode.NONE,
    groups: services.groups
      .list()
      .filter((g) => typed && (states.size === 0 || states.has(g.state.toLowerCase())))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', groupState: g.state, groupType: CLASSIC_GROUP })),
  }
})

export const deleteGroupsHandler = defineHandler<DeleteGroupsRequest, DeleteGroupsResponse>(
  deleteGroups,
  '0-2',
  async (request, { services }) => ({
    throttleTimeMs: 0,
    results: await Promise.all(
      request.groupsNames.map(async (groupId) => {
        let errorCode: number
        try {
          errorCode = await services.groups.deleteGroup(groupId)
        } catch (error) {
          if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
          errorCode = appendErrorCode(error)
        }
        if (errorCode === ErrorCode.NONE) services.log.info(`deleted group ${quote(groupId)}`)
        else services.log.debug(`delete group ${quote(groupId)}: ${errorInfo(errorCode).name}`)
        return { groupId, errorCode }
      }),
    ),
  }),
)
