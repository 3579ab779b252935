/**
 * ElectLeaders: v0-2 (KIP-460; Kafka's KafkaApis.handleElectLeaders, run by the controller as ReplicationControlManager.electLeaders).
 *
 * Behaviour
 * - On a cluster node the request goes to the active controller (cluster/leader-elections.ts). PREFERRED (0; all
 *   that v0 asks) makes each partition's first replica its leader where it is live and in the ISR, with a bumped
 *   leader epoch: ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE when it is not live or
 *   not in the ISR. UNCLEAN (1) elects a leader for each partition without one, from its live ISR members or else
 *   from any live replica, whatever the topic's `unclean.leader.election.enable`: ELECTION_NOT_NEEDED when it has a
 *   leader, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live. An unknown partition is
 *   UNKNOWN_TOPIC_OR_PARTITION; a null list of partitions means every partition of the cluster, and then those that
 *   needed no election are left out of the answer (as Kafka's controller does).
 * - A request no controller took within 60 s (none known, reached or answering: Kafka's forwarding timeout) is
 *   REQUEST_TIMED_OUT for the request and each partition it names.
 * - On a single node each partition has one replica, which leads it: every existing partition is
 *   ELECTION_NOT_NEEDED.
 * - Any other election type is INVALID_REQUEST, for the request and each partition it names.
 *
 * Version notes
 * - v1 adds electionType and the top-level errorCode (v0 elects preferred replicas and has errors per partition
 *   only); v2 is flexible.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { ElectionType } from '../../protocol/constants.js'
import { electLeaders, type ElectLeadersRequest, type ElectLeadersResponse } from '../../protocol/messages/elect-leaders.js'
import type { ElectionResult } from '../cluster/controller/controller.js'
import { electionsFailed, electLeadersAtController, isElectionType, type ElectLeadersAnswer } from '../cluster/leader-elections.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { quote } from '../quote.js'
import { groupBy } from '../group-by.js'

/** ElectLeaders on a node's client listener. */
export const electLeadersHandler = defineHandler<ElectLeadersRequest, ElectLeadersResponse>(electLeaders, '0-2', async (request, { services }) =>
  respond(await elect(request, services, { forward: true })),
)

/** ElectLeaders on a cluster node's controller listener: run by this node's controller, never forwarded again. */
export const controllerElectLeadersHandler = defineHandler<ElectLeadersRequest, ElectLeadersResponse>(electLeaders, '0-2', async (request, { services }) =>
  respond(await elect(request, services, { forward: false })),
)

async function elect(request: ElectLeadersRequest, services: BrokerServices, options: { forward: boolean }): Promise<ElectLeadersAnswer> {
  const { electionType, topicPartitions } = request
  if (!isElectionType(electionType)) return electionsFailed(request, ErrorCode.INVALID_REQUEST, `election type ${electionType} is neither PREFERRED (0) nor UNCLEAN (1)`)
  if (services.quorum) return electLeadersAtController(services.quorum, { electionType, topicPartitions }, options)
  const results: ElectionResult[] = []
  for (const { topic, partitions } of topicPartitions ?? []) {
    const count = services.topics.get(topic)?.partitions.length ?? 0
    for (const partitionId of new Set(partitions)) {
      const known = partitionId >= 0 && partitionId < count
      const why = electionType === ElectionType.PREFERRED ? 'its only replica leads it' : 'it has a leader'
      results.push({
        topic,
        partitionId,
        errorCode: known ? ErrorCode.ELECTION_NOT_NEEDED : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        errorMessage: known ? `partition ${partitionId} of ${quote(topic)} needs no election: ${why}` : `${quote(topic)} has no partition ${partitionId}`,
      })
    }
  }
  return { errorCode: ErrorCode.NONE, results }
}

function respond(answer: ElectLeadersAnswer): ElectLeadersResponse {
  const replicaElectionResults = [...groupBy(answer.results, (result) => result.topic)].map(([topic, results]) => ({
    topic,
    partitionResult: results.map(({ partitionId, errorCode, errorMessage }) => ({ partitionId, errorCode, errorMessage })),
  }))
  return { throttleTimeMs: 0, errorCode: answer.errorCode, replicaElectionResults }
}
