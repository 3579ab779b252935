/**
 * AlterPartitionReassignments v0 and ListPartitionReassignments v0 (KIP-455; Kafka's KafkaApis hands both to the
 * controller, ReplicationControlManager.alterPartitionReassignments and listPartitionReassignments).
 *
 * Behaviour
 * - On a cluster node a reassignment goes to the active controller (cluster/reassignments.ts), which moves each
 *   partition's replicas to the target list: the added replicas copy the log from the leader, and once every one of
 *   them is in the ISR the replica set becomes the target, the removed replicas stop and empty their logs, and the
 *   leader moves if it was removed (see `QuorumController.alterPartitionReassignments`). A null replica list cancels
 *   the reassignment under way. Per-partition errors: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT,
 *   NO_REASSIGNMENT_IN_PROGRESS; REQUEST_TIMED_OUT for the answer and every partition when no controller could be
 *   asked within 60 s (Kafka's forwarding timeout).
 * - ListPartitionReassignments answers the reassignments under way from this node's metadata image: each partition's
 *   replicas (the target first, then those being removed), adding and removing replicas. Null topics lists every
 *   partition; a topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION for the answer.
 * - On a single node every partition has one replica, the node itself: a target of just that node is accepted and
 *   changes nothing, any other is INVALID_REPLICA_ASSIGNMENT (no other broker is registered), a cancel is
 *   NO_REASSIGNMENT_IN_PROGRESS, and nothing is ever under way.
 */
import { ErrorCode } from '../../protocol/errors.js'
import {
  alterPartitionReassignments,
  type AlterPartitionReassignmentsRequest,
  type AlterPartitionReassignmentsResponse,
} from '../../protocol/messages/alter-partition-reassignments.js'
import {
  listPartitionReassignments,
  type ListPartitionReassignmentsRequest,
  type ListPartitionReassignmentsResponse,
} from '../../protocol/messages/list-partition-reassignments.js'
import type { ReassignmentResult } from '../cluster/controller/controller.js'
import { namedOnce, ongoingReassignments, reassignAtController, type ReassignmentsAnswer } from '../cluster/reassignments.js'
import { groupBy } from '../group-by.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { quote } from '../quote.js'

/** AlterPartitionReassignments on a node's client listener. */
export const alterPartitionReassignmentsHandler = defineHandler<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(
  alterPartitionReassignments,
  '0',
  async (request, { services }) => respond(await reassign(request, services, { forward: true })),
)

/** AlterPartitionReassignments on a cluster node's controller listener: run by this node's controller, never forwarded again. */
export const controllerAlterPartitionReassignmentsHandler = defineHandler<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(
  alterPartitionReassignments,
  '0',
  async (request, { services }) => respond(await reassign(request, services, { forward: false })),
)

/** ListPartitionReassignments: the reassignments under way, from this node's image (none on a single node). */
export const listPartitionReassignmentsHandler = defineHandler<ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse>(
  listPartitionReassignments,
  '0',
  async (request, { services }) => {
    if (services.quorum) return { throttleTimeMs: 0, ...ongoingReassignments(services.quorum.controller.image, request.topics) }
    const missing = request.topics?.find(({ name }) => !services.topics.get(name))
    if (missing) return { throttleTimeMs: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${quote(missing.name)} does not exist`, topics: [] }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, topics: [] }
  },
)

async function reassign(request: AlterPartitionReassignmentsRequest, services: BrokerServices, options: { forward: boolean }): Promise<ReassignmentsAnswer> {
  const partitions = namedOnce(request.topics.flatMap(({ name, partitions: asked }) => asked.map(({ partitionIndex, replicas }) => ({ topic: name, partitionIndex, replicas }))))
  if (services.quorum) return reassignAtController(services.quorum, partitions, options)
  const nodeId = services.endpoint.nodeId
  const results: ReassignmentResult[] = []
  for (const { topic, partitionIndex, replicas } of partitions) {
    const answer = (errorCode: number, errorMessage: string | null): void => void results.push({ topic, partitionIndex, errorCode, errorMessage })
    const count = services.topics.get(topic)?.partitions.length ?? 0
    if (partitionIndex < 0 || partitionIndex >= count) answer(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${quote(topic)} has no partition ${partitionIndex}`)
    else if (replicas === null) answer(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, `partition ${partitionIndex} of ${quote(topic)} has no reassignment under way`)
    else if (replicas.length !== 1 || replicas[0] !== nodeId) {
      answer(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `[${replicas}] for partition ${partitionIndex} of ${quote(topic)}: this single node (broker ${nodeId}) is the only broker`)
    } else answer(ErrorCode.NONE, null)
  }
  return { errorCode: ErrorCode.NONE, errorMessage: null, results }
}

function respond(answer: ReassignmentsAnswer): AlterPartitionReassignmentsResponse {
  const responses = [...groupBy(answer.results, (result) => result.topic)].map(([name, results]) => ({
    name,
    partitions: results.map(({ partitionIndex, errorCode, errorMessage }) => ({ partitionIndex, errorCode, errorMessage })),
  }))
  return { throttleTimeMs: 0, errorCode: answer.errorCode, errorMessage: answer.errorMessage, responses }
}
